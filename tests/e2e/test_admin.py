"""The admin listener: /ready, /metrics (Prometheus text), /config, /clusters."""
from __future__ import annotations

import threading
import time


from support.config import cluster, route, single_listener, weighted
from support.proxy import metric_present, metric_sum
from support.util import KeepAliveClient, curl, wait_until


def test_ready_after_start(mesh):
    a = mesh.http_backend("a")
    p = mesh.proxy(single_listener([route("a")], [cluster("a", [a])]))
    status, _, _ = p.admin_get("/ready")
    assert status == 200


def test_ready_waits_for_first_dns_discovery(mesh):
    a = mesh.http_backend("a")
    dns = mesh.mini_dns({"svc.test": ["127.0.0.1"]}, answering=False)
    p = mesh.proxy(single_listener([route("svc")], [cluster("svc", dns={
        "name": "svc.test", "port": a.port, "refresh": "1s", "resolver": dns.address})]), wait="admin")
    # the resolver swallows queries: the cluster has not finished discovery
    wait_until(lambda: dns.queries > 0, 10, message="the proxy to query the resolver")
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        assert p.admin_get("/ready")[0] == 503
        time.sleep(0.1)
    dns.answering = True
    wait_until(lambda: p.admin_get("/ready")[0] == 200, 15, message="/ready 200 once discovery answered")
    r = curl(p.url("/x"), "--http1.1")
    assert r.status == 200 and r.header("x-backend") == "a"


def test_metrics_count_requests(mesh):
    a = mesh.http_backend("a")
    p = mesh.proxy(single_listener([route("c")], [cluster("c", [a])]))
    with KeepAliveClient(p.host, p.port) as c:
        for _ in range(25):
            assert c.get("/ok")[0] == 200
        for _ in range(5):
            assert c.get("/err?status=500")[0] == 500
        for _ in range(4):
            assert c.get("/missing?status=404")[0] == 404

    def counted():
        s = p.metrics()
        return (metric_sum(s, "swiftmesh_requests_total", listener="ingress", cluster="c", status_class="2xx") == 25
                and metric_sum(s, "swiftmesh_requests_total", listener="ingress", cluster="c",
                               status_class="5xx") == 5
                and metric_sum(s, "swiftmesh_requests_total", listener="ingress", cluster="c",
                               status_class="4xx") == 4) and s
    samples = wait_until(counted, 5, message="swiftmesh_requests_total to count 25 2xx, 4 4xx, 5 5xx")

    endpoints = {l.get("endpoint") for n, l, _ in samples
                 if n == "swiftmesh_requests_total" and l.get("cluster") == "c"}
    assert endpoints == {a.address}

    count = metric_sum(samples, "swiftmesh_request_duration_seconds_count", listener="ingress", cluster="c")
    assert count == 34
    assert metric_sum(samples, "swiftmesh_request_duration_seconds_sum", listener="ingress", cluster="c") > 0
    buckets = sorted(((float(l["le"]), v) for n, l, v in samples
                      if n == "swiftmesh_request_duration_seconds_bucket" and l.get("cluster") == "c"
                      and l.get("listener") == "ingress"), key=lambda x: x[0])
    assert buckets and buckets[-1][0] == float("inf") and buckets[-1][1] == 34
    values = [v for _, v in buckets]
    assert values == sorted(values), "histogram buckets are cumulative"
    assert metric_present(samples, "swiftmesh_downstream_connections_active", listener="ingress")
    assert metric_present(samples, "swiftmesh_downstream_requests_active", listener="ingress")


def test_metrics_content_type_and_help(mesh):
    a = mesh.http_backend("a")
    p = mesh.proxy(single_listener([route("c")], [cluster("c", [a])]))
    curl(p.url("/"), "--http1.1")
    status, headers, body = p.admin_get("/metrics")
    assert status == 200
    assert headers.get("content-type", "").startswith("text/plain")
    text = body.decode()
    assert "# TYPE swiftmesh_requests_total counter" in text
    assert "# TYPE swiftmesh_request_duration_seconds histogram" in text


def test_metrics_active_connections_and_requests(mesh):
    a = mesh.http_backend("a")
    p = mesh.proxy(single_listener([route("c")], [cluster("c", [a])]))

    def gauge(name):
        return metric_sum(p.metrics(), name, listener="ingress")

    with KeepAliveClient(p.host, p.port) as c1, KeepAliveClient(p.host, p.port) as c2:
        c1.get("/1")
        c2.get("/2")
        wait_until(lambda: gauge("swiftmesh_downstream_connections_active") == 2, 5,
                   message="2 active downstream connections")
        threads = [threading.Thread(target=c.get, args=("/slow?sleep=1.5",)) for c in (c1, c2)]
        for t in threads:
            t.start()
        wait_until(lambda: gauge("swiftmesh_downstream_requests_active") == 2, 5,
                   message="2 active downstream requests")
        for t in threads:
            t.join(10)
        wait_until(lambda: gauge("swiftmesh_downstream_requests_active") == 0, 5,
                   message="0 active requests after they finished")
    wait_until(lambda: gauge("swiftmesh_downstream_connections_active") == 0, 5,
               message="0 active connections after the clients closed")


def test_config_is_effective_config_as_json(mesh):
    a, b = mesh.http_backends("a", "b")
    cfg = single_listener(
        [route("web", match={"pathPrefix": "/api/", "methods": ["GET"]}, timeout="2s",
               requestHeadersToAdd={"x-env": "prod"}, requestHeadersToRemove=["x-debug"]),
         route(split=[{"cluster": "web", "weight": 90}, {"cluster": "canary", "weight": 10}])],
        [cluster("web", [a, weighted(b, 3)], loadBalancing="least_request"),
         cluster("canary", [b], protocol="http2")],
        drainTimeout="7s")
    p = mesh.proxy(cfg)
    got = p.admin_json("/config")
    assert got["admin"]["listen"] == p.config["admin"]["listen"]
    assert "drainTimeout" in got
    listener = got["listeners"][0]
    assert listener["name"] == "ingress"
    assert listener["listen"] == p.config["listeners"][0]["listen"]
    routes = listener["routes"]
    assert len(routes) == 2
    assert routes[0]["match"]["pathPrefix"] == "/api/"
    assert routes[0]["match"]["methods"] == ["GET"]
    assert routes[0]["cluster"] == "web"
    assert "timeout" in routes[0]
    assert "requestHeadersToAdd" in routes[0] and "requestHeadersToRemove" in routes[0]
    assert [(s["cluster"], s["weight"]) for s in routes[1]["split"]] == [("web", 90), ("canary", 10)]
    clusters = {c["name"]: c for c in got["clusters"]}
    assert clusters["web"]["loadBalancing"] == "least_request"
    assert clusters["canary"]["protocol"] == "http2"
    assert clusters["web"].get("protocol", "http1") == "http1"


def test_clusters_json_shape_and_in_flight(mesh):
    a, b = mesh.http_backends("a", "b")
    p = mesh.proxy(single_listener([route("c")], [cluster("c", [a, weighted(b, 2)])]))
    doc = p.admin_json("/clusters")
    assert isinstance(doc.get("clusters"), list)
    (c,) = doc["clusters"]
    assert c["name"] == "c"
    assert c["protocol"] == "http1"
    assert c["loadBalancing"] == "round_robin"
    eps = {e["address"]: e for e in c["endpoints"]}
    assert set(eps) == {a.address, b.address}
    assert eps[a.address]["weight"] == 1 and eps[b.address]["weight"] == 2
    for e in eps.values():
        assert e["health"] == "healthy"
        assert e["inFlight"] == 0

    def in_flight():
        return sum(e["inFlight"] for e in p.admin_json("/clusters")["clusters"][0]["endpoints"])

    results = []
    threads = [threading.Thread(target=lambda: results.append(curl(p.url("/slow?sleep=1.5"), "--http1.1").status))
               for _ in range(3)]
    for t in threads:
        t.start()
    wait_until(lambda: in_flight() == 3, 5, message="inFlight 3 during 3 slow requests")
    for t in threads:
        t.join(15)
    assert results == [200, 200, 200]
    wait_until(lambda: in_flight() == 0, 5, message="inFlight back to 0")
