"""Resilience features of the data plane, against real peers: fault
injection (delays and aborts chosen per route, for HTTP and gRPC callers),
gRPC deadlines, and idle timeouts on both sides of the proxy."""
from __future__ import annotations

import time

import grpc
import pytest

from support import grpc_peer as g
from support.config import cluster, route, single_listener
from support.rawhttp import H2_PREFACE_AND_SETTINGS, RawHTTP, h2_frames, request_bytes
from support.util import KeepAliveClient, curl, established_to, wait_until


def fault_route(prefix: str, fault: dict, cluster_name: str = "app", **fields) -> dict:
    return route(cluster_name, match={"pathPrefix": prefix}, fault=fault, **fields)


@pytest.fixture
def faulty(mesh):
    app = mesh.http_backend("app")
    p = mesh.proxy(single_listener(
        [
            fault_route("/abort/", {"abort": {"httpStatus": 503, "percent": 100}}),
            fault_route("/abort-grpc-status/", {"abort": {"grpcStatus": 8, "percent": 100}}),
            fault_route("/quarter/", {"abort": {"httpStatus": 500, "percent": 25}}),
            fault_route("/delay/", {"delay": {"fixed": "300ms", "percent": 100}}),
            fault_route("/delay-past-timeout/", {"delay": {"fixed": "2s", "percent": 100}}, timeout="200ms"),
            fault_route("/never/", {"abort": {"httpStatus": 500, "percent": 0}}),
        ],
        [cluster("app", [app])]))
    return p, app


def test_abort_answers_without_reaching_the_cluster(faulty):
    p, app = faulty
    r = curl(p.url("/abort/x"), "--http1.1")
    assert r.status == 503
    assert r.header("swiftmesh-proxy-error") == "fault_abort"
    assert r.header("x-request-id")
    r = curl(p.url("/abort-grpc-status/x"), "--http2-prior-knowledge")
    assert r.status == 429, "gRPC RESOURCE_EXHAUSTED (8) is HTTP 429 for a caller that does not speak gRPC"
    assert r.header("swiftmesh-proxy-error") == "fault_abort"
    assert app.count == 0
    assert curl(p.url("/never/x"), "--http1.1").status == 200
    assert app.count == 1
    aborts = [value for name, labels, value in p.metrics()
              if name == "swiftmesh_proxy_errors_total" and labels.get("reason") == "fault_abort"]
    assert aborts == [2], aborts


def test_abort_share_is_drawn_per_request(faulty):
    """25% of 400 requests: 100 expected; 50..150 is more than 11 standard deviations wide."""
    p, app = faulty
    aborted = 0
    with KeepAliveClient(p.host, p.port) as client:
        for i in range(400):
            status, headers, _ = client.get(f"/quarter/{i}")
            if status == 500:
                assert headers.get("swiftmesh-proxy-error") == "fault_abort"
                aborted += 1
            else:
                assert status == 200
        assert client.connections_used == 1, "an aborted request keeps the connection"
    assert 50 <= aborted <= 150, aborted
    assert app.count == 400 - aborted


def test_delay_holds_the_request(faulty):
    p, app = faulty
    started = time.monotonic()
    r = curl(p.url("/delay/x"), "--http1.1")
    elapsed = time.monotonic() - started
    assert r.status == 200 and app.count == 1
    assert elapsed >= 0.3, f"answered after {elapsed:.3f}s, before the 300ms delay"


def test_delay_counts_toward_the_route_timeout(faulty):
    p, app = faulty
    started = time.monotonic()
    r = curl(p.url("/delay-past-timeout/x"), "--http1.1")
    elapsed = time.monotonic() - started
    assert r.status == 504 and r.header("swiftmesh-proxy-error") == "timeout"
    assert elapsed < 1.5, f"the 200ms route timeout answered after {elapsed:.2f}s"
    assert app.count == 0


def test_grpc_callers_get_grpc_statuses(mesh):
    g1 = mesh.grpc_backend("g1")
    svc = {"grpc": {"service": g.SERVICE}}

    def with_header(value):
        return {"grpc": {"service": g.SERVICE}, "headers": [{"name": "x-fault", "exact": value}]}

    p = mesh.proxy(single_listener(
        [
            route("echo", match=with_header("grpc"), fault={"abort": {"grpcStatus": 14, "percent": 100}}),
            route("echo", match=with_header("http"), fault={"abort": {"httpStatus": 403, "percent": 100}}),
            route("echo", match=svc),
        ],
        [cluster("echo", [g1], protocol="http2")]))
    ch = g.channel(f"127.0.0.1:{p.port}")
    try:
        for header, code in (("grpc", grpc.StatusCode.UNAVAILABLE), ("http", grpc.StatusCode.PERMISSION_DENIED)):
            with pytest.raises(grpc.RpcError) as info:
                g.unary(ch)(b"x", metadata=[("x-fault", header)], timeout=10)
            assert info.value.code() == code, (header, info.value.code(), info.value.details())
            trailers = dict(info.value.trailing_metadata() or ())
            assert trailers.get("swiftmesh-proxy-error") == "fault_abort", trailers
        assert g.unary(ch)(b"x", timeout=10)
    finally:
        ch.close()


# ---------------------------------------------------------------- gRPC deadlines

def grpc_frame(payload: bytes) -> bytes:
    """One length-prefixed gRPC message, uncompressed."""
    return b"\x00" + len(payload).to_bytes(4, "big") + payload


def test_grpc_timeout_bounds_the_request_and_is_forwarded(mesh, tmp_path):
    """A client's grpc-timeout ends the call at the proxy (DEADLINE_EXCEEDED)
    even on a route without a timeout, and the endpoint is told the time left."""
    g1 = mesh.grpc_backend("g1")
    ng = mesh.nginx_h2c("ngx")
    p = mesh.proxy(single_listener(
        [
            route("ngx", match={"pathPrefix": "/seen.Service/"}, timeout="1s"),
            route("ngx", match={"pathPrefix": "/seen.Unbounded/"}),
            route("echo", match={"grpc": {"service": g.SERVICE}}),
        ],
        [cluster("echo", [g1], protocol="http2"), cluster("ngx", [ng.address], protocol="http2")]))
    body = tmp_path / "message"
    body.write_bytes(grpc_frame(b"x"))
    grpc_headers = ["--http2-prior-knowledge", "-H", "content-type: application/grpc", "-H", "te: trailers"]

    def forwarded(path: str, timeout: str) -> float:
        # No body: nginx answers without reading one, and the proxy then ends
        # the client's stream with RST_STREAM NO_ERROR (RFC 9113 section
        # 8.1), after which Debian's curl 7.88 drops the complete response it
        # got when its upload was not done yet (curl issue 22984).
        r = curl(p.url(path), *grpc_headers, "-X", "POST", "-H", f"grpc-timeout: {timeout}")
        assert r.status == 200, (r.status, r.stderr)
        seen = r.header("x-seen-grpc-timeout")
        assert seen and seen[-1] in "HMSmun", seen
        scale = {"H": 3600, "M": 60, "S": 1, "m": 1e-3, "u": 1e-6, "n": 1e-9}[seen[-1]]
        return int(seen[:-1]) * scale

    assert 4.0 < forwarded("/seen.Unbounded/Call", "5S") <= 5.0
    assert 0.5 < forwarded("/seen.Service/Call", "5S") <= 1.0, "the route's 1s timeout is sooner"

    started = time.monotonic()
    r = curl(p.url(f"/{g.SERVICE}/Unary"), *grpc_headers, "-H", "grpc-timeout: 300m", "-H", "x-sleep: 3",
             data_file=str(body))
    elapsed = time.monotonic() - started
    assert elapsed < 2.0, f"the 300ms grpc-timeout ended the call after {elapsed:.2f}s"
    trailers = dict(r.trailers)
    assert trailers.get("grpc-status") == "4", (r.headers, r.trailers)
    assert trailers.get("swiftmesh-proxy-error") == "timeout", r.trailers


# ---------------------------------------------------------------- idle timeouts

def test_idle_client_connections_are_closed(mesh):
    app = mesh.http_backend("app")
    p = mesh.proxy({"listeners": [{"name": "ingress", "idleTimeout": "300ms", "routes": [route("app")]}],
                    "clusters": [cluster("app", [app])]})
    # HTTP/1.1: open after a response, closed once idle for 300ms.
    with RawHTTP(p.host, p.port, timeout=10) as conn:
        conn.send(request_bytes("GET", "/one"))
        assert conn.read_response().status == 200
        answered = time.monotonic()
        assert conn.closed_by_peer(5), "an idle HTTP/1.1 connection stays open"
        assert time.monotonic() - answered >= 0.25
    # A connection that never says anything is closed too.
    with RawHTTP(p.host, p.port, timeout=10) as conn:
        assert conn.closed_by_peer(5), "a silent connection stays open"
    # HTTP/2: GOAWAY, then the close.
    with RawHTTP(p.host, p.port, timeout=10) as conn:
        conn.send(H2_PREFACE_AND_SETTINGS)
        assert conn.closed_by_peer(5), "an idle HTTP/2 connection stays open"
        assert any(ftype == 0x7 for ftype, _, _, _ in h2_frames(conn.buf)), "no GOAWAY before the close"


@pytest.mark.parametrize("protocol", ["http1", "http2"])
def test_idle_endpoint_connections_are_closed(mesh, protocol):
    backend = mesh.http_backend("app") if protocol == "http1" else mesh.nginx_h2c("app")
    port = int(backend.address.rsplit(":", 1)[1])
    p = mesh.proxy(single_listener([route("app")], [cluster("app", [backend.address], protocol=protocol,
                                                            idleTimeout="300ms")]))
    assert curl(p.url("/first"), "--http1.1").status == 200
    wait_until(lambda: established_to(port) == 0, 5, message="the proxy to close its idle endpoint connection")
    assert curl(p.url("/second"), "--http1.1").status == 200, "a new connection serves the next request"
