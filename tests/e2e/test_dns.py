"""DNS discovery against a real dnsmasq: a name with several A records for
backends on 127.0.0.2, .3, .4 (all of 127/8 is loopback on Linux), re-resolved
every `refresh`; removed records stop getting new requests, added ones start."""
from __future__ import annotations

import collections
import time

import pytest

from support.config import cluster, route, single_listener
from support.http_backend import HTTPBackend
from support.util import KeepAliveClient, curl, wait_until

REFRESH = 1.0
# one refresh plus slack for the resolution itself and requests already on
# their way when the new answer lands
DEADLINE = REFRESH + 4.0


def same_port_backends(mesh, hosts: list[str]) -> list[HTTPBackend]:
    """HTTP backends on `hosts`, all on one port (DNS gives addresses, the
    cluster gives the port)."""
    for _attempt in range(20):
        first = HTTPBackend(f"be-{hosts[0]}", hosts[0]).start()
        started = [first]
        try:
            for h in hosts[1:]:
                started.append(HTTPBackend(f"be-{h}", h, first.port).start())
        except OSError:
            for b in started:
                b.stop()
            continue
        for b in started:
            mesh.stack.callback(b.stop)
        return started
    raise RuntimeError("no port free on every host")


def add_backend_on(mesh, host: str, port: int) -> HTTPBackend:
    b = HTTPBackend(f"be-{host}", host, port).start()
    mesh.stack.callback(b.stop)
    return b


def batch(p, n: int) -> collections.Counter:
    """n requests on one keep-alive connection; per-backend counts."""
    counts: collections.Counter = collections.Counter()
    with KeepAliveClient(p.host, p.port) as c:
        for _ in range(n):
            status, h, _ = c.get("/dns")
            assert status == 200, (status, h)
            counts[h["x-backend"]] += 1
    return counts


@pytest.fixture
def dns_setup(mesh):
    backends = same_port_backends(mesh, ["127.0.0.2", "127.0.0.3", "127.0.0.4"])
    port = backends[0].port
    dns = mesh.dnsmasq({"svc.test": [b.host for b in backends]})
    cfg = single_listener([route("svc")], [cluster("svc", dns={
        "name": "svc.test", "port": port, "refresh": "1s", "resolver": dns.address})])
    p = mesh.proxy(cfg)
    return p, dns, backends, port


def test_all_records_get_traffic(dns_setup):
    p, _, backends, _ = dns_setup
    counts = batch(p, 90)
    for b in backends:
        assert counts[b.name] >= 15, counts


def test_clusters_admin_shows_resolved_endpoints(dns_setup):
    p, _, backends, port = dns_setup
    clusters = {c["name"]: c for c in p.admin_json("/clusters")["clusters"]}
    got = sorted(e["address"] for e in clusters["svc"]["endpoints"])
    assert got == sorted(f"{b.host}:{port}" for b in backends)


def test_removed_record_gets_no_new_requests(dns_setup):
    p, dns, backends, _ = dns_setup
    a, b, c = backends
    assert all(batch(p, 60)[x.name] > 0 for x in backends)

    dns.set_records({"svc.test": [a.host, b.host]})
    changed = time.monotonic()

    def gone():
        before = c.count
        counts = batch(p, 30)
        return c.count == before and counts[c.name] == 0
    wait_until(gone, DEADLINE, interval=0.1, message=f"{c.host} to get no new requests after its record was removed")
    took = time.monotonic() - changed

    before = c.count
    counts = batch(p, 90)
    assert c.count == before, f"removed endpoint still got requests {took:.1f}s after the change: {counts}"
    assert counts[a.name] >= 20 and counts[b.name] >= 20, counts


def test_added_record_gets_traffic(dns_setup, mesh):
    p, dns, backends, port = dns_setup
    d = add_backend_on(mesh, "127.0.0.5", port)
    assert batch(p, 30)[d.name] == 0

    dns.set_records({"svc.test": [b.host for b in backends] + [d.host]})
    wait_until(lambda: batch(p, 20)[d.name] > 0, DEADLINE, interval=0.1,
               message="the added record to get traffic")
    counts = batch(p, 120)
    for b in [*backends, d]:
        assert counts[b.name] >= 15, counts


def test_replace_all_records(dns_setup, mesh):
    p, dns, backends, port = dns_setup
    e = add_backend_on(mesh, "127.0.0.6", port)
    dns.set_records({"svc.test": [e.host]})
    wait_until(lambda: batch(p, 20) == collections.Counter({e.name: 20}), DEADLINE, interval=0.1,
               message="all traffic to the only remaining record")


def test_name_without_records_has_no_endpoints(mesh):
    dns = mesh.dnsmasq({"other.test": ["127.0.0.2"]})
    cfg = single_listener([route("ghost")], [cluster("ghost", dns={
        "name": "ghost.test", "port": 9, "refresh": "1s", "resolver": dns.address})])
    p = mesh.proxy(cfg, wait="listeners")
    r = curl(p.url("/x"), "--http1.1")
    assert r.status == 503, (r.status, r.headers, r.body[:200])
    assert r.header("swiftmesh-proxy-error") == "no_endpoints"
    assert r.header("x-request-id")


def test_a_resolver_that_refuses_aaaa_still_gives_the_ipv4_endpoints(mesh):
    """dnsmasq without an upstream answers A from its file and REFUSED for
    AAAA: `family: auto` uses the family that answered."""
    backend = mesh.http_backend("v4only", host="127.0.0.2")
    dns = mesh.dnsmasq({"svc.test": [backend.host]}, local=False)
    cfg = single_listener([route("svc")], [cluster("svc", dns={
        "name": "svc.test", "port": backend.port, "refresh": "1s", "resolver": dns.address})])
    p = mesh.proxy(cfg)
    wait_until(lambda: curl(p.url("/x"), "--http1.1").status == 200, 5, message="the IPv4 endpoint to get traffic")
    clusters = {c["name"]: c for c in p.admin_json("/clusters")["clusters"]}
    assert [e["address"] for e in clusters["svc"]["endpoints"]] == [f"127.0.0.2:{backend.port}"]
    assert p.admin_json("/config")["clusters"][0]["dns"]["family"] == "auto"
    assert "dns lookup of one address family failed" in p.stderr_tail()


def test_family_v6_asks_only_for_aaaa(mesh):
    backend = mesh.http_backend("v4only", host="127.0.0.2")
    dns = mesh.dnsmasq({"svc.test": [backend.host]}, local=False)
    cfg = single_listener([route("svc")], [cluster("svc", dns={
        "name": "svc.test", "port": backend.port, "refresh": "1s", "resolver": dns.address, "family": "v6"})])
    before = len(dns.log.read_text())  # dnsmasq's own start-up check asked for A
    p = mesh.proxy(cfg, wait="listeners")
    r = curl(p.url("/x"), "--http1.1")
    assert r.status == 503 and r.header("swiftmesh-proxy-error") == "no_endpoints"
    wait_until(lambda: "query[AAAA] svc.test" in dns.log.read_text()[before:], 5,
               message="dnsmasq to log the AAAA query")
    assert "query[A] svc.test" not in dns.log.read_text()[before:]
