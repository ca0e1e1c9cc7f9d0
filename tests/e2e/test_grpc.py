"""gRPC over h2c through the proxy with grpcio: all four call shapes,
metadata and trailers, 8 MiB messages, and the statuses the proxy makes up
itself (as grpcio sees them)."""
from __future__ import annotations

import hashlib
import json
import os
import queue
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from support import grpc_peer as g
from support.config import cluster, route, single_listener
from support.proxy import metric_sum
from support.util import wait_until


@pytest.fixture
def grpc_proxy(mesh):
    """Routes: e2e.Echo -> cluster `echo` (one backend g1), header x-route
    selects the timeout/dead/reset routes; the health service is routed too.
    Anything else has no route."""
    g1 = mesh.grpc_backend("g1")
    reset = mesh.reset_backend("http2")
    dead = mesh.unused_address()
    svc = {"grpc": {"service": g.SERVICE}}

    def with_header(value):
        return {"grpc": {"service": g.SERVICE}, "headers": [{"name": "x-route", "exact": value}]}

    cfg = single_listener(
        [
            route("echo", match=with_header("timeout"), timeout="500ms"),
            route("dead", match=with_header("dead")),
            route("reset", match=with_header("reset")),
            route("echo", match=svc),
            route("echo", match={"grpc": {"service": "grpc.health.v1.Health"}}),
        ],
        [
            cluster("echo", [g1], protocol="http2"),
            cluster("dead", [dead], protocol="http2", connectTimeout="1s"),
            cluster("reset", [reset], protocol="http2"),
        ])
    p = mesh.proxy(cfg)
    p.reset = reset
    ch = g.channel(f"127.0.0.1:{p.port}")
    yield p, g1, ch
    ch.close()


def all_metadata(call_or_error) -> dict:
    md = {}
    for source in (call_or_error.initial_metadata(), call_or_error.trailing_metadata()):
        for k, v in source or ():
            md[k] = v
    return md


def test_unary(grpc_proxy):
    p, g1, ch = grpc_proxy
    reply, call = g.unary(ch).with_call(b"hello", metadata=[("x-echo", "e1"), ("x-custom", "c")], timeout=10)
    body = json.loads(reply)
    assert body["backend"] == "g1"
    assert body["len"] == 5
    assert body["metadata"]["x-custom"] == "c"
    assert body["metadata"].get("x-request-id"), "the backend sees an x-request-id"
    assert call.code() == grpc.StatusCode.OK
    assert dict(call.initial_metadata()).get("x-backend-initial") == "g1"
    trailers = dict(call.trailing_metadata())
    assert trailers.get("x-backend") == "g1"
    assert trailers.get("x-echo-trailer") == "e1"


def test_unary_many_on_one_channel_concurrently(grpc_proxy):
    p, g1, ch = grpc_proxy
    stub = g.unary(ch)
    futures = [stub.future(f"m{i}".encode(), timeout=20) for i in range(200)]
    assert all(json.loads(f.result())["backend"] == "g1" for f in futures)


def test_client_streaming(grpc_proxy):
    p, _, ch = grpc_proxy
    msgs = [os.urandom(10_000) for _ in range(100)]
    reply, call = g.client_stream(ch).with_call(iter(msgs), timeout=20)
    body = json.loads(reply)
    assert body == {"backend": "g1", "count": 100, "total": 1_000_000,
                    "sha256": hashlib.sha256(b"".join(msgs)).hexdigest()}
    assert dict(call.trailing_metadata()).get("x-backend") == "g1"


def test_server_streaming(grpc_proxy):
    p, _, ch = grpc_proxy
    call = g.server_stream(ch)(json.dumps({"count": 50, "size": 1000}).encode(), timeout=20)
    replies = list(call)
    assert len(replies) == 50
    for i, r in enumerate(replies):
        assert r.startswith(f"g1:{i}:".encode()) and len(r) == 1000
    assert call.code() == grpc.StatusCode.OK
    assert dict(call.trailing_metadata()).get("x-backend") == "g1"


def test_server_streaming_is_not_buffered(grpc_proxy):
    p, _, ch = grpc_proxy
    call = g.server_stream(ch)(json.dumps({"count": 5, "size": 10, "delay": 0.3}).encode(), timeout=20)
    started = time.monotonic()
    first = next(call)
    first_at = time.monotonic() - started
    rest = list(call)
    assert first.startswith(b"g1:0:") and len(rest) == 4
    assert first_at < 1.0, f"first streamed message arrived after {first_at:.2f}s"


def test_bidi_streaming_ping_pong(grpc_proxy):
    """Each reply is read before the next request is sent: only works if the
    proxy forwards both directions as they come."""
    p, _, ch = grpc_proxy
    outbox: "queue.Queue[bytes | None]" = queue.Queue()

    def requests():
        while True:
            item = outbox.get(timeout=20)
            if item is None:
                return
            yield item

    call = g.bidi(ch)(requests(), timeout=30)
    for i in range(20):
        outbox.put(f"ping-{i}".encode())
        assert next(call) == f"g1:ping-{i}".encode()
    outbox.put(None)
    assert list(call) == []
    assert call.code() == grpc.StatusCode.OK
    assert dict(call.trailing_metadata()).get("x-backend") == "g1"


def test_8mib_message_each_way(grpc_proxy):
    p, _, ch = grpc_proxy
    payload = os.urandom(8 * 1024 * 1024 + 1)
    reply = g.unary(ch, "Echo")(payload, timeout=60)
    assert len(reply) == len(payload)
    assert hashlib.sha256(reply).digest() == hashlib.sha256(payload).digest()


def test_large_server_stream_messages(grpc_proxy):
    p, _, ch = grpc_proxy
    call = g.server_stream(ch)(json.dumps({"count": 2, "size": 9 * 1024 * 1024}).encode(), timeout=60)
    sizes = [len(m) for m in call]
    assert sizes == [9 * 1024 * 1024] * 2


def test_backend_status_and_trailers_pass_through(grpc_proxy):
    p, _, ch = grpc_proxy
    with pytest.raises(grpc.RpcError) as info:
        g.unary(ch)(b"x", metadata=[("x-fail", "NOT_FOUND"), ("x-echo", "t")], timeout=10)
    err = info.value
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert "failed on purpose" in err.details()
    md = all_metadata(err)
    assert md.get("x-backend") == "g1"
    assert md.get("x-echo-trailer") == "t"
    assert "swiftmesh-proxy-error" not in md, "a backend's own status is not a proxy error"
    wait_until(lambda: metric_sum(p.metrics(), "swiftmesh_requests_total", cluster="echo", grpc_status="5",
                                  status_class="2xx") == 1, 5,
               message="the request counted with grpc_status 5 (NOT_FOUND)")


def test_health_service_through_proxy(grpc_proxy):
    p, _, ch = grpc_proxy
    stub = health_pb2_grpc.HealthStub(ch)
    resp = stub.Check(health_pb2.HealthCheckRequest(service=g.SERVICE), timeout=10)
    assert resp.status == health_pb2.HealthCheckResponse.SERVING


def assert_proxy_status(err: grpc.RpcError, code: grpc.StatusCode, reason: str):
    assert err.code() == code, f"expected {code}, got {err.code()}: {err.details()}"
    md = all_metadata(err)
    assert md.get("swiftmesh-proxy-error") == reason, md
    assert md.get("x-request-id"), md


def test_unimplemented_for_no_route(grpc_proxy):
    p, _, ch = grpc_proxy
    with pytest.raises(grpc.RpcError) as info:
        ch.unary_unary("/e2e.Nowhere/Unary")(b"x", timeout=10)
    assert_proxy_status(info.value, grpc.StatusCode.UNIMPLEMENTED, "no_route")


def test_unavailable_for_dead_endpoint(grpc_proxy):
    p, _, ch = grpc_proxy
    with pytest.raises(grpc.RpcError) as info:
        g.unary(ch)(b"x", metadata=[("x-route", "dead")], timeout=10)
    assert_proxy_status(info.value, grpc.StatusCode.UNAVAILABLE, "connect_failure")


def test_unavailable_for_upstream_reset(grpc_proxy):
    p, _, ch = grpc_proxy
    reset = p.reset
    with pytest.raises(grpc.RpcError) as info:
        g.unary(ch)(b"x", metadata=[("x-route", "reset")], timeout=10)
    assert_proxy_status(info.value, grpc.StatusCode.UNAVAILABLE, "upstream_reset")
    assert reset.requests >= 1, "the reset happened after the request reached the upstream"


def test_deadline_exceeded_for_route_timeout(grpc_proxy):
    p, g1, ch = grpc_proxy
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as info:
        g.unary(ch)(b"x", metadata=[("x-route", "timeout"), ("x-sleep", "3")], timeout=10)
    elapsed = time.monotonic() - started
    assert_proxy_status(info.value, grpc.StatusCode.DEADLINE_EXCEEDED, "timeout")
    assert elapsed < 2.5, f"route timeout 500ms answered after {elapsed:.2f}s"
    samples = p.metrics()
    assert metric_sum(samples, "swiftmesh_cluster_timeouts_total", cluster="echo", timeout="route") == 1
    assert metric_sum(samples, "swiftmesh_requests_total", cluster="echo", grpc_status="4") == 1, \
        "the proxy's own DEADLINE_EXCEEDED is counted as the caller saw it"


def test_channel_survives_proxy_errors(grpc_proxy):
    p, _, ch = grpc_proxy
    for _ in range(3):
        with pytest.raises(grpc.RpcError):
            ch.unary_unary("/e2e.Nowhere/Unary")(b"x", timeout=10)
        with pytest.raises(grpc.RpcError):
            g.unary(ch)(b"x", metadata=[("x-route", "dead")], timeout=10)
        assert g.call_backend(ch) == "g1"


def test_no_endpoints_is_unavailable(mesh):
    """A DNS cluster whose name does not exist has no endpoints."""
    dns = mesh.mini_dns({})
    cfg = single_listener([route("ghost", match={"grpc": {"service": g.SERVICE}})],
                          [cluster("ghost", protocol="http2",
                                   dns={"name": "ghost.test", "port": 50051, "refresh": "1s",
                                        "resolver": dns.address})])
    p = mesh.proxy(cfg, wait="listeners")
    ch = g.channel(f"127.0.0.1:{p.port}")
    try:
        with pytest.raises(grpc.RpcError) as info:
            g.unary(ch)(b"x", timeout=10)
        assert_proxy_status(info.value, grpc.StatusCode.UNAVAILABLE, "no_endpoints")
    finally:
        ch.close()
