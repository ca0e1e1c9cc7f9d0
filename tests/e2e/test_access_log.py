"""Access logs: one JSON line per request, to a file or standard output,
for every request or a sample, with what an operator needs to follow a
call: timing, route target, status, gRPC status, bytes, ids and the proxy's
own error reason."""
from __future__ import annotations

import http.client
import json

import grpc

from support import grpc_peer as g
from support.config import cluster, route, single_listener
from support.util import curl, wait_until

H2 = "--http2-prior-knowledge"


def read_lines(path) -> list[dict]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    # Only whole lines: the writer may be midway through one.
    return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]


def lines_for(path, count: int) -> list[dict]:
    """Waits (bounded) until the file holds `count` lines."""
    wait_until(lambda: len(read_lines(path)) >= count, timeout=10)
    return read_lines(path)


def test_a_line_per_request_over_http1_h2c_and_grpc(mesh, tmp_path):
    log = tmp_path / "access.log"
    a = mesh.http_backend("a")
    g1 = mesh.grpc_backend("g1")
    p = mesh.proxy(single_listener(
        [route("echo", match={"grpc": {"service": g.SERVICE}}), route("a", match={"pathPrefix": "/a/"})],
        [cluster("a", [a]), cluster("echo", [g1], protocol="http2")],
        accessLog={"path": str(log)}))

    r1 = curl(p.url("/a/one?x=1"), "-H", "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    r2 = curl(p.url("/a/two"), H2, "-d", "hello")
    r3 = curl(p.url("/nowhere"))
    with g.channel(f"127.0.0.1:{p.port}") as ch:
        g.unary(ch)(b"ping", timeout=10)
    assert (r1.status, r2.status, r3.status) == (200, 200, 404)

    lines = lines_for(log, 4)
    by_path = {line["path"]: line for line in lines}
    assert len(lines) == 4, lines
    first = by_path["/a/one?x=1"]
    assert first["method"] == "GET" and first["protocol"] == "HTTP/1.1" and first["status"] == 200
    assert first["cluster"] == "a" and first["endpoint"] == a.address and first["attempts"] == 1
    assert first["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert first["request_id"] == r1.header("x-request-id")
    assert first["listener"] == "ingress" and first["authority"].startswith("127.0.0.1:")
    assert first["bytes_sent"] > 0 and first["duration_ms"] >= 0 and first["start_time"].endswith("Z")
    second = by_path["/a/two"]
    assert second["protocol"] == "HTTP/2" and second["method"] == "POST" and second["bytes_received"] == 5
    miss = by_path["/nowhere"]
    assert miss["status"] == 404 and miss["proxy_error"] == "no_route" and miss["cluster"] is None
    assert miss["flags"] == ["no_route"] and first["flags"] == [] and second["flags"] == []
    call = next(line for line in lines if line["path"].startswith(f"/{g.SERVICE}/"))
    assert call["grpc_status"] == 0 and call["status"] == 200 and call["protocol"] == "HTTP/2"


def test_grpc_errors_the_proxy_makes_carry_their_status(mesh, tmp_path):
    log = tmp_path / "access.log"
    a = mesh.http_backend("a")
    p = mesh.proxy(single_listener([route("a", match={"pathPrefix": "/only/"})], [cluster("a", [a])],
                                   accessLog={"path": str(log)}))
    with g.channel(f"127.0.0.1:{p.port}") as ch:
        try:
            g.unary(ch)(b"x", timeout=10)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.UNIMPLEMENTED
    line = lines_for(log, 1)[0]
    assert line["grpc_status"] == 12 and line["proxy_error"] == "no_route"


def test_a_sample_logs_about_its_share_and_stopping_loses_no_line(mesh, tmp_path):
    """Half the requests, give or take (200 requests: 60 to 140 lines is
    more than five standard deviations wide). The count is read after the
    proxy stopped: a drain writes out every line handed over."""
    log = tmp_path / "access.log"
    a = mesh.http_backend("a")
    p = mesh.proxy(single_listener([route("a")], [cluster("a", [a])],
                                   accessLog={"path": str(log), "samplePercent": 50}))
    conn = http.client.HTTPConnection(p.host, p.port, timeout=10)
    for i in range(200):
        conn.request("GET", f"/s/{i}")
        response = conn.getresponse()
        response.read()
        assert response.status == 200
    conn.close()
    assert p.stop() == 0
    assert 60 <= len(read_lines(log)) <= 140


def test_sidecars_log_both_ends_of_a_call_with_the_callers_identity(mesh, tmp_path):
    """`--access-log` on two sidecars: the caller's outbound line and the
    callee's inbound line share the request id, and the callee's names the
    caller's mesh identity, proven by its certificate."""
    control_plane = mesh.control_plane()
    web = mesh.http_backend("web-1")
    web_log, client_log = tmp_path / "web.log", tmp_path / "client.log"
    web_sidecar = mesh.sidecar("web-sidecar", control_plane, "web", web, app_protocol="http1",
                               extra_args=("--access-log", str(web_log)))
    client = mesh.sidecar("client-sidecar", control_plane, "client", mesh.unused_address(),
                          upstreams=("web",), app_protocol="http1", extra_args=("--access-log", str(client_log)))
    wait_until(lambda: client.endpoints("web") == [web_sidecar.inbound], timeout=10, message="the client to know web")
    r = curl(f"http://127.0.0.1:{client.upstream_port('web')}/hello")
    assert r.status == 200
    outbound = lines_for(client_log, 1)[0]
    inbound = lines_for(web_log, 1)[0]
    assert outbound["request_id"] == inbound["request_id"] == r.header("x-request-id")
    assert outbound["caller"] is None and outbound["endpoint"] == web_sidecar.inbound
    assert inbound["caller"].endswith("/service/client") and inbound["protocol"] == "HTTP/2"
    assert inbound["cluster"] == "local_app" and inbound["status"] == 200
