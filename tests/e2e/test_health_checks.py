"""Active health checks (`clusters[].healthCheck`) against real peers:
grpcio's own health service switching SERVING and NOT_SERVING, HTTP probes
over HTTP/1.1 and h2c (nginx), and TCP connects. An endpoint failing its
probes gets no requests until it passes again; /clusters and /metrics show
each verdict."""
from __future__ import annotations


from support import grpc_peer as g
from support.config import cluster, route, single_listener
from support.util import KeepAliveClient, wait_until


def metric(p, name: str, **labels) -> float:
    return sum(value for n, l, value in p.metrics() if n == name and all(l.get(k) == v for k, v in labels.items()))


def health(p, cluster_name: str) -> dict[str, str]:
    clusters = p.admin_json("/clusters")["clusters"]
    return {e["address"]: e["health"] for e in next(c for c in clusters if c["name"] == cluster_name)["endpoints"]}


FAST = {"interval": "100ms", "timeout": "500ms", "unhealthyThreshold": 2, "healthyThreshold": 1}


def test_grpc_health_service_decides_which_instances_get_calls(mesh):
    g1, g2, g3 = mesh.grpc_backends("g1", "g2", "g3")
    p = mesh.proxy(single_listener(
        [route("echo", match={"grpc": {"service": g.SERVICE}})],
        [cluster("echo", [g1, g2, g3], protocol="http2", healthCheck={"grpc": {"service": g.SERVICE}, **FAST})]))
    all_healthy = {b.address: "healthy" for b in (g1, g2, g3)}
    wait_until(lambda: health(p, "echo") == all_healthy, timeout=10, message="every instance healthy")
    ch = g.channel(f"127.0.0.1:{p.port}")
    try:
        g.wait_channel_ready(ch)
        g1.set_serving(False)
        wait_until(lambda: health(p, "echo")[g1.address] == "unhealthy", timeout=10, message="g1 unhealthy")
        before = g1.calls
        for _ in range(60):
            g.unary(ch)(b"x", timeout=5)
        assert g1.calls == before, "an unhealthy instance gets no calls"
        assert metric(p, "swiftmesh_cluster_endpoints_unhealthy", cluster="echo") == 1

        g1.set_serving(True)
        wait_until(lambda: health(p, "echo") == all_healthy, timeout=10, message="g1 healthy again")
        before = g1.calls
        for _ in range(60):
            g.unary(ch)(b"x", timeout=5)
        assert g1.calls - before >= 10, "back in service"
    finally:
        ch.close()
    assert metric(p, "swiftmesh_cluster_health_checks_total", cluster="echo", result="passed") > 0
    assert metric(p, "swiftmesh_cluster_health_checks_total", cluster="echo", result="failed") >= 2


def test_an_unknown_grpc_service_fails_the_check(mesh):
    g1 = mesh.grpc_backend("g1")
    p = mesh.proxy(single_listener(
        [route("echo")],
        [cluster("echo", [g1], protocol="http2", healthCheck={"grpc": {"service": "no.Such"}, **FAST})]))
    wait_until(lambda: health(p, "echo") == {g1.address: "unhealthy"}, timeout=10, message="g1 unhealthy")


def test_http_probes_over_http1_take_a_failing_instance_out(mesh):
    sick, well = mesh.http_backends("sick", "well")
    p = mesh.proxy(single_listener(
        [route("app")],
        [cluster("app", [sick, well], healthCheck={"http": {"path": "/healthz"}, **FAST})]))
    wait_until(lambda: set(health(p, "app").values()) == {"healthy"}, timeout=10, message="both healthy")
    assert any(r["path"] == "/healthz" and dict(r["headers"]).get("user-agent") == "swiftmesh-health-check"
               for r in well.requests)
    sick.fail_status = 503
    wait_until(lambda: health(p, "app")[sick.address] == "unhealthy", timeout=10, message="sick unhealthy")
    with KeepAliveClient(p.host, p.port) as client:
        statuses = [client.get(f"/x{i}")[0] for i in range(40)]
    assert statuses == [200] * 40, "no request reached the failing instance"


def test_http_probes_over_h2c_check_the_status(mesh):
    nginx = mesh.nginx_h2c("nginx")
    p = mesh.proxy(single_listener(
        [route("ok")],
        [cluster("ok", [nginx], protocol="http2", healthCheck={"http": {"path": "/healthz"}, **FAST}),
         cluster("picky", [nginx], protocol="http2",
                 healthCheck={"http": {"path": "/healthz", "expectedStatuses": [204]}, **FAST})]))
    wait_until(lambda: health(p, "ok") == {nginx.address: "healthy"}, timeout=10, message="ok healthy")
    wait_until(lambda: health(p, "picky") == {nginx.address: "unhealthy"}, timeout=10, message="picky unhealthy")


def test_tcp_probes_notice_an_instance_that_stopped_listening(mesh):
    gone, staying = mesh.http_backends("gone", "staying")
    p = mesh.proxy(single_listener(
        [route("app")],
        [cluster("app", [gone, staying], healthCheck={"tcp": {}, **FAST})]))
    wait_until(lambda: set(health(p, "app").values()) == {"healthy"}, timeout=10, message="both healthy")
    gone_address = gone.address
    gone.stop()
    wait_until(lambda: health(p, "app")[gone_address] == "unhealthy", timeout=10, message="the stopped instance unhealthy")
    with KeepAliveClient(p.host, p.port) as client:
        statuses = [client.get(f"/x{i}")[0] for i in range(20)]
    assert statuses == [200] * 20


def test_the_whole_server_health_with_an_empty_service_name(mesh):
    """`service: ""` asks for the server's overall health, as grpcio's health
    service keeps it."""
    g1, g2 = mesh.grpc_backends("g1", "g2")
    p = mesh.proxy(single_listener(
        [route("echo")], [cluster("echo", [g1, g2], protocol="http2", healthCheck={"grpc": {"service": ""}, **FAST})]))
    wait_until(lambda: set(health(p, "echo").values()) == {"healthy"}, timeout=10, message="both healthy")
    g2.set_serving(False)
    wait_until(lambda: health(p, "echo") == {g1.address: "healthy", g2.address: "unhealthy"}, timeout=10,
               message="g2 unhealthy")
