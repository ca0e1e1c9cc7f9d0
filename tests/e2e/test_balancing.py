"""Per-request load balancing, also for requests multiplexed on one client
connection: round robin (gRPC channel and HTTP/1.1 keep-alive), least
request, random, endpoint weights, ring hash stickiness, weighted splits."""
from __future__ import annotations

import collections
import json
import threading

import pytest

from support import grpc_peer as g
from support.config import cluster, route, single_listener, weighted
from support.util import KeepAliveClient, shares

N = 3000


def assert_shares(counts: dict, expected: dict, tolerance: float, what: str):
    total = sum(counts.values())
    got = shares(counts, total)
    for name, share in expected.items():
        assert abs(got.get(name, 0.0) - share) <= tolerance, (
            f"{what}: {name} got {got.get(name, 0.0):.3f} of {total}, expected {share:.3f} ± {tolerance}: {counts}")


def keepalive_run(p, n: int, path: str = "/lb", headers=None) -> tuple[collections.Counter, list[str]]:
    """n GETs on one HTTP/1.1 connection; returns per-backend counts and the order."""
    counts: collections.Counter = collections.Counter()
    order = []
    with KeepAliveClient(p.host, p.port) as c:
        for _ in range(n):
            status, h, _ = c.get(path, headers=headers)
            assert status == 200
            counts[h["x-backend"]] += 1
            order.append(h["x-backend"])
        assert c.connections_used == 1, "the client must have used one connection"
    return counts, order


def test_round_robin_grpc_one_channel(mesh):
    backends = mesh.grpc_backends("g1", "g2", "g3")
    p = mesh.proxy(single_listener([route("g", match={"grpc": {"service": g.SERVICE}})],
                                   [cluster("g", backends, protocol="http2", loadBalancing="round_robin")]))
    ch = g.channel(f"127.0.0.1:{p.port}")
    try:
        stub = g.unary(ch)
        counts: collections.Counter = collections.Counter()
        batch = 30
        for start in range(0, N, batch):
            futures = [stub.future(b"x", timeout=30) for _ in range(batch)]
            for f in futures:
                counts[json.loads(f.result())["backend"]] += 1
    finally:
        ch.close()
    assert sum(counts.values()) == N
    assert_shares(counts, {"g1": 1 / 3, "g2": 1 / 3, "g3": 1 / 3}, 0.05, "gRPC round robin on one channel")
    assert {b.name: b.calls for b in backends} == dict(counts)


def test_round_robin_http1_one_keepalive_connection(mesh):
    backends = mesh.http_backends("a", "b", "c")
    p = mesh.proxy(single_listener([route("abc")], [cluster("abc", backends)]))
    counts, _ = keepalive_run(p, N)
    assert_shares(counts, {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}, 0.05, "HTTP/1.1 round robin on one connection")


def test_least_request_avoids_slow_endpoint(mesh):
    slow = mesh.http_backend("slow", delay=0.1)
    fast = mesh.http_backends("fast1", "fast2")
    p = mesh.proxy(single_listener([route("lr")], [cluster("lr", [slow, *fast], loadBalancing="least_request")]))
    total, workers = 600, 6
    counts: collections.Counter = collections.Counter()
    errors: list = []
    lock = threading.Lock()
    remaining = [total]

    def worker():
        try:
            with KeepAliveClient(p.host, p.port, timeout=20) as c:
                while True:
                    with lock:
                        if remaining[0] == 0:
                            return
                        remaining[0] -= 1
                    status, h, _ = c.get("/lr")
                    with lock:
                        counts[h.get("x-backend", f"status-{status}")] += 1
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert sum(counts.values()) == total
    # Round robin would send a third to the slow endpoint; least request
    # keeps it to the few it can hold while the fast ones stay at zero.
    assert counts["slow"] / total < 0.12, counts
    assert counts["fast1"] > total * 0.3 and counts["fast2"] > total * 0.3, counts


def test_random_spreads_evenly(mesh):
    backends = mesh.http_backends("a", "b", "c")
    p = mesh.proxy(single_listener([route("r")], [cluster("r", backends, loadBalancing="random")]))
    counts, order = keepalive_run(p, N)
    assert_shares(counts, {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}, 0.05, "random")
    periodic = sum(1 for i in range(len(order) - 3) if order[i] == order[i + 3])
    assert periodic < 0.6 * len(order), "random must not be a fixed rotation"


@pytest.mark.parametrize("policy", ["round_robin", "random"])
def test_endpoint_weights(mesh, policy):
    heavy, light = mesh.http_backends("heavy", "light")
    p = mesh.proxy(single_listener([route("w")], [cluster("w", [weighted(heavy, 2), weighted(light, 1)],
                                                          loadBalancing=policy)]))
    counts, _ = keepalive_run(p, N)
    assert_shares(counts, {"heavy": 2 / 3, "light": 1 / 3}, 0.05, f"weights 2:1 with {policy}")


def test_ring_hash_is_sticky(mesh):
    backends = mesh.http_backends("a", "b", "c")
    p = mesh.proxy(single_listener([route("rh")], [cluster("rh", backends, loadBalancing="ring_hash",
                                                           hashHeader="x-user-id")]))
    users = [f"user-{i}" for i in range(60)]
    placement: dict = {}
    with KeepAliveClient(p.host, p.port) as c:
        for _round in range(5):
            for u in users:
                status, h, _ = c.get("/rh", headers={"x-user-id": u})
                assert status == 200
                placement.setdefault(u, set()).add(h["x-backend"])
        # without the header the request is still served
        status, _, _ = c.get("/rh")
        assert status == 200
    moved = {u: s for u, s in placement.items() if len(s) != 1}
    assert not moved, f"same x-user-id must reach the same endpoint: {moved}"
    used = collections.Counter(next(iter(s)) for s in placement.values())
    assert len(used) >= 2, f"60 keys all hashed to one endpoint: {used}"


def test_ring_hash_is_sticky_for_grpc(mesh):
    backends = mesh.grpc_backends("g1", "g2", "g3")
    p = mesh.proxy(single_listener([route("rh", match={"grpc": {"service": g.SERVICE}})],
                                   [cluster("rh", backends, protocol="http2", loadBalancing="ring_hash",
                                            hashHeader="x-user-id")]))
    ch = g.channel(f"127.0.0.1:{p.port}")
    try:
        placement: dict = {}
        for _round in range(3):
            for i in range(40):
                who = g.call_backend(ch, metadata=[("x-user-id", f"u{i}")])
                placement.setdefault(i, set()).add(who)
    finally:
        ch.close()
    assert all(len(s) == 1 for s in placement.values()), placement
    assert len({next(iter(s)) for s in placement.values()}) >= 2


def test_split_90_10(mesh):
    stable, canary = mesh.http_backends("stable", "canary")
    p = mesh.proxy(single_listener(
        [route(split=[{"cluster": "user", "weight": 90}, {"cluster": "user-canary", "weight": 10}])],
        [cluster("user", [stable]), cluster("user-canary", [canary])]))
    counts, _ = keepalive_run(p, N)
    assert_shares(counts, {"stable": 0.9, "canary": 0.1}, 0.03, "split 90/10")


def test_split_grpc_one_channel(mesh):
    g_stable, g_canary = mesh.grpc_backends("stable", "canary")
    p = mesh.proxy(single_listener(
        [route(match={"grpc": {"service": g.SERVICE}},
               split=[{"cluster": "user", "weight": 90}, {"cluster": "user-canary", "weight": 10}])],
        [cluster("user", [g_stable], protocol="http2"), cluster("user-canary", [g_canary], protocol="http2")]))
    ch = g.channel(f"127.0.0.1:{p.port}")
    try:
        stub = g.unary(ch)
        counts: collections.Counter = collections.Counter()
        for _ in range(N // 30):
            for f in [stub.future(b"x", timeout=30) for _ in range(30)]:
                counts[json.loads(f.result())["backend"]] += 1
    finally:
        ch.close()
    assert_shares(counts, {"stable": 0.9, "canary": 0.1}, 0.03, "gRPC split 90/10")
