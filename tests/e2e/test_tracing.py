"""Distributed tracing: a span per proxied request, exported over OTLP/HTTP
protobuf to a real receiver (decoded with opentelemetry-proto); W3C Trace
Context and B3 (single and multi header) carried on to the endpoint with the
proxy's span as the parent; sampling by rate or by the caller's decision."""
from __future__ import annotations

import grpc

from support import grpc_peer as g
from support.config import cluster, route, single_listener
from support.otlp import KIND_CLIENT, KIND_SERVER
from support.proxy import metric_sum
from support.util import curl, wait_until

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def seen(response) -> dict[str, str]:
    return {name: value for name, value in response.json()["headers"]}


def traced_proxy(mesh, backend, receiver, rate: float = 1.0, **cluster_fields):
    return mesh.proxy(single_listener([route("c")], [cluster("c", [backend], **cluster_fields)], tracing={
        "otlpEndpoint": receiver.url, "samplingRate": rate, "serviceName": "front"}))


def spans_with(receiver, count: int, **attributes):
    def found():
        spans = [s for s in receiver.received() if all(s.attributes.get(k) == v for k, v in attributes.items())]
        return spans if len(spans) >= count else None
    return wait_until(found, 10, message=f"{count} span(s) with {attributes} at the receiver")


def test_a_request_without_context_starts_a_trace_and_the_endpoint_continues_it(mesh):
    a = mesh.http_backend("a")
    receiver = mesh.otlp_receiver()
    p = traced_proxy(mesh, a, receiver)
    r = curl(p.url("/orders?id=7"), "--http1.1", "-H", "x-request-id: first")
    assert r.status == 200
    [span] = spans_with(receiver, 1, **{"swiftmesh.request_id": "first"})
    assert receiver.content_types[0] == "application/x-protobuf"
    assert span.service == "front" and span.scope == "swiftmesh"
    assert span.kind == KIND_CLIENT and span.name == "GET" and span.parent_span_id == ""
    assert span.attributes["http.request.method"] == "GET" and span.attributes["url.path"] == "/orders"
    assert span.attributes["http.response.status_code"] == 200
    assert span.attributes["network.protocol.version"] == "1.1"
    assert span.attributes["swiftmesh.cluster"] == "c" and span.attributes["swiftmesh.endpoint"] == a.address
    assert span.attributes["network.peer.address"] == "127.0.0.1"
    assert span.status_code == 0 and 0 < span.start <= span.end
    # The endpoint gets the proxy's span as its parent.
    assert seen(r)["traceparent"] == f"00-{span.trace_id}-{span.span_id}-01"


def test_the_callers_w3c_context_and_sampling_decision_are_followed(mesh):
    a = mesh.http_backend("a")
    receiver = mesh.otlp_receiver()
    p = traced_proxy(mesh, a, receiver, rate=0.0)
    sampled = curl(p.url("/sampled"), "-H", f"traceparent: 00-{CALLER_TRACE}-{CALLER_SPAN}-01",
                   "-H", "tracestate: vendor=opaque", "-H", "x-request-id: sampled")
    [span] = spans_with(receiver, 1, **{"swiftmesh.request_id": "sampled"})
    assert (span.trace_id, span.parent_span_id) == (CALLER_TRACE, CALLER_SPAN)
    assert seen(sampled)["traceparent"] == f"00-{CALLER_TRACE}-{span.span_id}-01"
    assert seen(sampled)["tracestate"] == "vendor=opaque"
    # Not sampled by the caller: no span, but the context still goes on, with a new parent.
    unsampled = curl(p.url("/unsampled"), "-H", f"traceparent: 00-{CALLER_TRACE}-{CALLER_SPAN}-00")
    version, trace, parent, flags = seen(unsampled)["traceparent"].split("-")
    assert (version, trace, flags) == ("00", CALLER_TRACE, "00") and parent != CALLER_SPAN
    # No context and a rate of 0: no span either; a malformed traceparent is no context.
    curl(p.url("/none"))
    curl(p.url("/malformed"), "-H", "traceparent: 00-zz-yy-01")
    wait_until(lambda: metric_sum(p.metrics(), "swiftmesh_tracing_spans_total", result="exported") == 1, 5,
               message="one span counted as exported")
    assert len(receiver.received()) == 1


def test_b3_multi_and_single_headers_are_continued_in_their_own_form(mesh):
    a = mesh.http_backend("a")
    receiver = mesh.otlp_receiver()
    p = traced_proxy(mesh, a, receiver, rate=0.0)
    multi = curl(p.url("/multi"), "-H", f"x-b3-traceid: {CALLER_TRACE}", "-H", f"x-b3-spanid: {CALLER_SPAN}",
                 "-H", "x-b3-sampled: 1", "-H", "x-request-id: multi")
    [span] = spans_with(receiver, 1, **{"swiftmesh.request_id": "multi"})
    assert (span.trace_id, span.parent_span_id) == (CALLER_TRACE, CALLER_SPAN)
    headers = seen(multi)
    assert headers["x-b3-traceid"] == CALLER_TRACE and headers["x-b3-spanid"] == span.span_id
    assert headers["x-b3-parentspanid"] == CALLER_SPAN and headers["x-b3-sampled"] == "1"
    assert headers["traceparent"] == f"00-{CALLER_TRACE}-{span.span_id}-01"
    # 64-bit B3 trace ids are widened to 128 bits, as Zipkin reads them.
    single = curl(p.url("/single"), "-H", f"b3: a3ce929d0e0e4736-{CALLER_SPAN}-1", "-H", "x-request-id: single")
    [span] = spans_with(receiver, 1, **{"swiftmesh.request_id": "single"})
    assert (span.trace_id, span.parent_span_id) == ("0000000000000000a3ce929d0e0e4736", CALLER_SPAN)
    assert seen(single)["b3"] == f"0000000000000000a3ce929d0e0e4736-{span.span_id}-1-{CALLER_SPAN}"
    # `b3: 0` is a decision alone: not sampled.
    curl(p.url("/deny"), "-H", "b3: 0", "-H", "x-request-id: deny")
    curl(p.url("/after"), "-H", "b3: 1", "-H", "x-request-id: after")
    spans_with(receiver, 1, **{"swiftmesh.request_id": "after"})
    assert not [s for s in receiver.received() if s.attributes.get("swiftmesh.request_id") == "deny"]


def test_grpc_spans_follow_the_rpc_conventions_and_proxy_errors_mark_the_span(mesh):
    backend = mesh.grpc_backend("g1")
    dead = mesh.unused_address()
    receiver = mesh.otlp_receiver()
    p = mesh.proxy(single_listener(
        [route("dead", match={"grpc": {"service": g.SERVICE, "method": "Echo"}}), route("echo")],
        [cluster("echo", [backend], protocol="http2"), cluster("dead", [dead], protocol="http2")],
        tracing={"otlpEndpoint": receiver.url + "/v1/traces"}))
    ch = g.channel(f"127.0.0.1:{p.port}")
    g.unary(ch)(b"x", timeout=10)
    try:
        ch.unary_unary(f"/{g.SERVICE}/Echo")(b"x", timeout=10)
        raise AssertionError("the dead cluster answered")
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.UNAVAILABLE
    ch.close()
    spans = spans_with(receiver, 2, **{"rpc.system": "grpc"})
    ok = next(s for s in spans if s.name == f"{g.SERVICE}/Unary")
    assert ok.service == "swiftmesh", "serviceName defaults to swiftmesh"
    assert ok.attributes["rpc.service"] == g.SERVICE and ok.attributes["rpc.method"] == "Unary"
    assert ok.attributes["rpc.grpc.status_code"] == 0 and ok.attributes["network.protocol.version"] == "2"
    failed = next(s for s in spans if s.name == f"{g.SERVICE}/Echo")
    assert failed.attributes["rpc.grpc.status_code"] == 14
    assert failed.status_code == 2 and failed.status_message == "connect_failure"
    assert failed.attributes["error.type"] == "connect_failure"


def test_an_absent_receiver_costs_no_request_and_drops_are_counted(mesh):
    a = mesh.http_backend("a")
    p = mesh.proxy(single_listener([route("c")], [cluster("c", [a])], tracing={
        "otlpEndpoint": f"http://{mesh.unused_address()}"}))
    for _ in range(20):
        assert curl(p.url("/x")).status == 200
    wait_until(lambda: metric_sum(p.metrics(), "swiftmesh_tracing_spans_total", result="dropped") == 20, 10,
               message="the 20 spans counted as dropped")
    assert "spans not exported" in p.stderr_text()


def test_a_request_across_two_sidecars_makes_connected_client_and_server_spans(mesh):
    receiver = mesh.otlp_receiver()
    tracing = ("--tracing-otlp-endpoint", receiver.url)
    cp = mesh.control_plane(heartbeat="200ms")
    backend = mesh.http_backend("user-1")
    user = mesh.sidecar("user-1-sidecar", cp, "user", backend, extra_args=tracing)
    gw = mesh.sidecar("gateway-sidecar", cp, "gateway", mesh.unused_address(), upstreams=("user",),
                      app_protocol="http1", extra_args=tracing)
    wait_until(lambda: gw.endpoints("user") == [user.inbound], timeout=5, message="the gateway to know user")
    r = curl(f"http://127.0.0.1:{gw.upstream_port('user')}/users/7", "-H",
             f"traceparent: 00-{CALLER_TRACE}-{CALLER_SPAN}-01")
    assert r.status == 200, r.stderr
    spans = wait_until(lambda: (lambda s: s if len(s) == 2 else None)(
        [s for s in receiver.received() if s.trace_id == CALLER_TRACE]), 10, message="two spans of the trace")
    client = next(s for s in spans if s.kind == KIND_CLIENT)
    server = next(s for s in spans if s.kind == KIND_SERVER)
    assert (client.service, server.service) == ("gateway", "user")
    assert client.parent_span_id == CALLER_SPAN, "the gateway app's span is the client span's parent"
    assert server.parent_span_id == client.span_id, "the server span is the client span's child"
    assert server.attributes["swiftmesh.caller"] == "spiffe://swiftmesh.local/service/gateway"
    assert server.attributes["url.scheme"] == "https", "the hop between sidecars is mutual TLS"
    assert client.start <= server.start and server.end <= client.end + 5_000_000
    assert seen(r)["traceparent"] == f"00-{CALLER_TRACE}-{server.span_id}-01", "the user app continues the server span"
