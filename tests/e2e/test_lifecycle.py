"""Signals: SIGTERM/SIGINT drain (in-flight requests finish, new connections
are refused, exit 0), SIGHUP reload under load (routing changes, nothing
fails), and an invalid reload that keeps the running config."""
from __future__ import annotations

import http.client
import json
import signal
import threading
import time

import pytest

from support import grpc_peer as g
from support.config import cluster, route, single_listener
from support.util import KeepAliveClient, connect_refused, curl, wait_until


CRASH_SIGNS = ("Fatal error", "Cannot schedule tasks on an EventLoop that has already shut down")


def assert_clean_shutdown(p) -> None:
    log = p.stderr_text()
    signs = [line for line in log.splitlines() if any(s in line for s in CRASH_SIGNS)]
    assert not signs, f"shutdown logged: {signs}"


def slow_get(host: str, port: int, path: str, results: list, index: int) -> None:
    try:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        conn.request("GET", path)
        resp = conn.getresponse()
        results[index] = (resp.status, resp.read())
        conn.close()
    except Exception as exc:  # noqa: BLE001 - reported by the test
        results[index] = exc


def test_sigterm_drains_http1_in_flight_requests(mesh):
    a = mesh.http_backend("a")
    p = mesh.proxy(single_listener([route("a")], [cluster("a", [a])], drainTimeout="10s"))
    results: list = [None] * 3
    threads = [threading.Thread(target=slow_get, args=(p.host, p.port, f"/slow/{i}?sleep=2", results, i))
               for i in range(3)]
    for t in threads:
        t.start()
    wait_until(lambda: a.inflight == 3, 10, message="3 requests in flight at the backend")

    sent = time.monotonic()
    p.signal(signal.SIGTERM)
    wait_until(lambda: connect_refused(p.host, p.port), 3, message="listener to stop accepting after SIGTERM")
    assert a.inflight == 3, "new connections were refused while requests were still in flight"

    for t in threads:
        t.join(30)
    for i, r in enumerate(results):
        assert not isinstance(r, Exception) and r is not None, f"in-flight request {i} failed: {r!r}"
        status, body = r
        assert status == 200 and json.loads(body)["path"] == f"/slow/{i}?sleep=2"
    assert p.wait_exit(15) == 0
    assert time.monotonic() - sent < 10, "exit should follow the last in-flight request, not the drain timeout"
    assert_clean_shutdown(p)


def test_sigterm_drains_grpc_in_flight_calls(mesh):
    g1 = mesh.grpc_backend("g1")
    p = mesh.proxy(single_listener([route("g", match={"grpc": {"service": g.SERVICE}})],
                                   [cluster("g", [g1], protocol="http2")], drainTimeout="10s"))
    ch = g.channel(f"127.0.0.1:{p.port}")
    try:
        stub = g.unary(ch)
        futures = [stub.future(b"x", metadata=[("x-sleep", "2")], timeout=30) for _ in range(3)]
        wait_until(lambda: g1.inflight == 3, 10, message="3 calls in flight at the backend")
        p.signal(signal.SIGTERM)
        wait_until(lambda: connect_refused(p.host, p.port), 3, message="listener to stop accepting")
        for f in futures:
            assert json.loads(f.result(30))["backend"] == "g1"
    finally:
        ch.close()
    assert p.wait_exit(15) == 0
    assert_clean_shutdown(p)


def test_sigint_exits_cleanly(mesh):
    a = mesh.http_backend("a")
    p = mesh.proxy(single_listener([route("a")], [cluster("a", [a])], drainTimeout="5s"))
    with KeepAliveClient(p.host, p.port) as c:
        assert c.get("/x")[0] == 200
        p.signal(signal.SIGINT)
        # an idle keep-alive connection does not hold the exit back
        assert p.wait_exit(10) == 0
    assert_clean_shutdown(p)


def test_drain_timeout_bounds_exit(mesh):
    a = mesh.http_backend("a")
    p = mesh.proxy(single_listener([route("a")], [cluster("a", [a])], drainTimeout="1s"))
    results: list = [None]
    t = threading.Thread(target=slow_get, args=(p.host, p.port, "/forever?sleep=8", results, 0))
    t.start()
    wait_until(lambda: a.inflight == 1, 10, message="request in flight")
    sent = time.monotonic()
    p.signal(signal.SIGTERM)
    p.wait_exit(10)
    took = time.monotonic() - sent
    t.join(15)
    assert took < 4, f"drainTimeout 1s but exit took {took:.1f}s"
    assert_clean_shutdown(p)


def reload_configs(a, b):
    before = single_listener([route("a", match={"pathPrefix": "/"})], [cluster("a", [a])])
    after = single_listener([route("b", match={"pathPrefix": "/b/"}), route("a", match={"pathPrefix": "/"})],
                            [cluster("a", [a]), cluster("b", [b])])
    return before, after


def test_sighup_reload_under_load(mesh):
    a, b = mesh.http_backends("a", "b")
    before, after = reload_configs(a, b)
    p = mesh.proxy(before)
    listen = p.config["listeners"][0]["listen"]
    after["listeners"][0]["listen"] = listen
    after["admin"] = p.config["admin"]

    stop = threading.Event()
    failures: list = []
    done = [0, 0]

    def keepalive_load():
        with KeepAliveClient(p.host, p.port) as c:
            while not stop.is_set() and done[0] < 20000:
                try:
                    status, h, _ = c.get("/a/x")
                    if status != 200 or h.get("x-backend") != "a":
                        failures.append(("keepalive", status, h))
                except Exception as exc:  # noqa: BLE001
                    failures.append(("keepalive", exc))
                    return
                done[0] += 1

    def new_connection_load():
        while not stop.is_set() and done[1] < 5000:
            try:
                conn = http.client.HTTPConnection(p.host, p.port, timeout=10)
                conn.request("GET", "/a/y", headers={"Connection": "close"})
                resp = conn.getresponse()
                resp.read()
                conn.close()
                if resp.status != 200:
                    failures.append(("new-connection", resp.status))
            except Exception as exc:  # noqa: BLE001
                failures.append(("new-connection", exc))
                return
            done[1] += 1

    loaders = [threading.Thread(target=keepalive_load), threading.Thread(target=new_connection_load)]
    for t in loaders:
        t.start()
    try:
        wait_until(lambda: done[0] > 50 and done[1] > 20, 10, message="load to run")
        assert curl(p.url("/b/x"), "--http1.1").header("x-backend") == "a"

        # a slow request that starts under the old config finishes under it
        slow: list = [None]
        st = threading.Thread(target=slow_get, args=(p.host, p.port, "/b/slow?sleep=1", slow, 0))
        st.start()
        wait_until(lambda: a.count_path("/b/slow") == 1, 5, message="slow request at backend a")

        p.write_config(after)
        p.reload()
        wait_until(lambda: curl(p.url("/b/x"), "--http1.1").header("x-backend") == "b", 10,
                   message="the reloaded route /b/ to reach backend b")
        mark = list(done)
        wait_until(lambda: done[0] > mark[0] + 50 and done[1] > mark[1] + 10, 10,
                   message="load to go on after the reload")
        st.join(15)
        assert slow[0] is not None and not isinstance(slow[0], Exception), slow[0]
        assert slow[0][0] == 200 and json.loads(slow[0][1])["backend"] == "a"
    finally:
        stop.set()
        for t in loaders:
            t.join(30)
    assert not failures, f"{len(failures)} failed requests during reload, first: {failures[:5]}"
    assert p.alive
    cfg = p.admin_json("/config")
    assert [r.get("cluster") for r in cfg["listeners"][0]["routes"]] == ["b", "a"]
    assert sorted(c["name"] for c in cfg["clusters"]) == ["a", "b"]


def test_invalid_reload_keeps_running_config(mesh):
    a, b = mesh.http_backends("a", "b")
    before, after = reload_configs(a, b)
    p = mesh.proxy(before)
    config_before = p.admin_json("/config")

    bad = p.config_path.read_text().replace('cluster: "a"', 'cluster: "nosuch"')
    assert "nosuch" in bad
    p.write_config(bad)
    p.reload()
    wait_until(lambda: "nosuch" in p.stderr_text(), 10, message="the reload error to be logged")
    assert "listeners[0].routes[0].cluster" in p.stderr_text()
    assert p.alive
    assert p.admin_json("/config") == config_before
    r = curl(p.url("/x"), "--http1.1")
    assert r.status == 200 and r.header("x-backend") == "a"

    # a later valid reload still applies
    after["listeners"][0]["listen"] = p.config["listeners"][0]["listen"]
    after["admin"] = p.config["admin"]
    p.write_config(after)
    p.reload()
    wait_until(lambda: curl(p.url("/b/x"), "--http1.1").header("x-backend") == "b", 10,
               message="the valid reload to apply")


def test_reload_changes_cluster_endpoints(mesh):
    a, b = mesh.http_backends("a", "b")
    p = mesh.proxy(single_listener([route("c")], [cluster("c", [a])]))
    assert curl(p.url("/"), "--http1.1").header("x-backend") == "a"
    cfg = dict(p.config)
    cfg["clusters"] = [cluster("c", [b])]
    p.write_config(cfg)
    p.reload()
    wait_until(lambda: curl(p.url("/"), "--http1.1").header("x-backend") == "b", 10,
               message="the new endpoint to serve")
    clusters = p.admin_json("/clusters")["clusters"]
    assert [e["address"] for e in clusters[0]["endpoints"]] == [b.address]


@pytest.mark.parametrize("protocol", ["http1", "http2"])
def test_a_reload_that_removes_an_endpoint_closes_its_connections_and_keeps_serving(mesh, protocol):
    """The removed endpoint's pool drains: its open connections close after
    the pool left the cluster, which must not touch the pool's memory."""
    if protocol == "http2":
        a, b = mesh.grpc_backends("a", "b")
    else:
        a, b = mesh.http_backends("a", "b")
    p = mesh.proxy(single_listener([route("c")], [cluster("c", [a, b], protocol=protocol)]), threads=1)

    def call() -> None:
        if protocol == "http2":
            channel = g.channel(f"127.0.0.1:{p.port}")
            try:
                g.unary(channel)(b"x", timeout=5)
            finally:
                channel.close()
        else:
            assert curl(p.url("/"), "--http1.1").status == 200

    for _ in range(4):
        call()  # round robin: a pooled connection to each endpoint
    cfg = dict(p.config)
    cfg["clusters"] = [cluster("c", [b], protocol=protocol)]
    p.write_config(cfg)
    p.reload()
    wait_until(lambda: [e["address"] for e in p.admin_json("/clusters")["clusters"][0]["endpoints"]] == [b.address],
               10, message="the reload to apply")
    wait_until(lambda: not [c for c in open("/proc/net/tcp").read().splitlines()[1:]
                            if c.split()[2].endswith(f":{a.port:04X}") and c.split()[3] == "01"],
               10, message="the connection to the removed endpoint to close")
    for _ in range(4):
        call()
    assert p.alive
