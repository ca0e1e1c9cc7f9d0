"""Retries (`routes[].retries`) against real peers: a failed try goes to
another endpoint after a backoff, so callers see no failure while some
instance can serve them: a backend answering 503 or gRPC UNAVAILABLE, one
SIGKILLed mid-run (with outlier detection ejecting it, and the default
retry budget), one that hangs past `perTryTimeout`. Bodies are replayed
up to `bufferLimitBytes`; nothing is retried once response bytes reached
the client; the retry budget bounds the load on a failing cluster."""
from __future__ import annotations

import copy
import http.client
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from support import grpc_peer as g
from support.callers import assert_no_grpc_call_fails, run_callers
from support.config import cluster, route, single_listener
from support.rawhttp import END_HEADERS, h2_frame, hpack_literal_block
from support.util import KeepAliveClient, curl, wait_until

REQUESTS = 5000


def metric(p, name: str, **labels) -> float:
    return sum(value for n, l, value in p.metrics() if n == name and all(l.get(k) == v for k, v in labels.items()))


# The contract's example: the failing instance is ejected after five
# failures in a row, so retries only have to cover those (and the requests
# in flight on it), well within the default retry budget.
OUTLIER_DETECTION = {"consecutiveErrors": 5, "interval": "1s", "baseEjectionTime": "30s", "maxEjectionPercent": 50}


def grpc_mesh(mesh, backends, retries: dict):
    p = mesh.proxy(single_listener(
        [route("echo", match={"grpc": {"service": g.SERVICE}}, timeout="10s", retries=retries)],
        [cluster("echo", backends, protocol="http2", outlierDetection=OUTLIER_DETECTION)]))
    return p


def test_an_instance_answering_unavailable_costs_no_call(mesh):
    backends = mesh.grpc_backends("g1", "g2", "g3")
    p = grpc_mesh(mesh, backends, {"attempts": 2, "on": ["unavailable"]})
    assert_no_grpc_call_fails(f"127.0.0.1:{p.port}", REQUESTS,
                              lambda: setattr(backends[0], "fail_code", grpc.StatusCode.UNAVAILABLE))
    assert metric(p, "swiftmesh_cluster_retries_total", cluster="echo", cause="grpc_status_14") >= 5
    assert metric(p, "swiftmesh_cluster_endpoints_ejected", cluster="echo") == 1


def test_a_sigkilled_instance_costs_no_call(mesh):
    backends = [mesh.grpc_backend_process(f"g{i}") for i in (1, 2, 3)]
    p = grpc_mesh(mesh, backends, {"attempts": 2, "on": ["connect-failure", "reset", "refused-stream", "unavailable"]})
    assert_no_grpc_call_fails(f"127.0.0.1:{p.port}", REQUESTS, backends[0].kill)
    assert metric(p, "swiftmesh_cluster_endpoints_ejected", cluster="echo") == 1


def test_an_instance_answering_503_costs_no_request(mesh):
    backends = mesh.http_backends("a", "b", "c")
    p = mesh.proxy(single_listener(
        [route("app", retries={"attempts": 2, "on": ["gateway-error"]})],
        [cluster("app", backends, outlierDetection=OUTLIER_DETECTION)]))
    local = threading.local()
    clients: list[KeepAliveClient] = []

    def call() -> bool:
        if not hasattr(local, "client"):
            local.client = KeepAliveClient(p.host, p.port)
            clients.append(local.client)
        status, _, _ = local.client.get("/x")
        return status == 200

    try:
        results = run_callers(call, REQUESTS, lambda: setattr(backends[0], "fail_status", 503))
    finally:
        for client in clients:
            client.close()
    assert results.count(False) == 0
    assert metric(p, "swiftmesh_cluster_retries_total", cluster="app", cause="status_503") >= 5
    assert metric(p, "swiftmesh_cluster_endpoints_ejected", cluster="app") == 1


def test_the_retry_goes_to_another_endpoint_and_says_which_attempt_it_is(mesh):
    failing, healthy = mesh.http_backends("failing", "healthy")
    failing.fail_status = 503
    p = mesh.proxy(single_listener(
        [route("app", match={"pathPrefix": "/retried/"}, retries={"attempts": 1, "on": ["gateway-error"]}),
         route("app", match={"pathPrefix": "/plain/"})],
        [cluster("app", [failing, healthy])]))
    with KeepAliveClient(p.host, p.port) as client:
        for i in range(20):
            status, headers, _ = client.get(f"/retried/{i}")
            assert status == 200 and headers["x-backend"] == "healthy"
    # Round robin sends every other first try to the failing endpoint; the
    # retry avoids it even though round robin would pick it again.
    assert failing.count == 10
    attempts = sorted(dict(r["headers"]).get("swiftmesh-attempt") for r in healthy.requests)
    assert attempts == ["1"] * 10 + ["2"] * 10
    assert metric(p, "swiftmesh_cluster_retries_total", cluster="app", cause="status_503") == 10
    # A route without retries forwards the endpoint's 503 as it is (two
    # requests on one connection, so one loop's round robin serves both).
    with KeepAliveClient(p.host, p.port) as client:
        statuses = {client.get(f"/plain/{i}")[0] for i in range(2)}
    assert statuses == {200, 503}


def test_a_hanging_instance_is_left_after_the_per_try_timeout(mesh):
    hanging = mesh.http_backend("hanging", delay=5)
    healthy = mesh.http_backend("healthy")
    p = mesh.proxy(single_listener(
        [route("app", match={"pathPrefix": "/retried/"}, timeout="2s",
               retries={"attempts": 1, "on": ["reset"], "perTryTimeout": "200ms"}),
         route("both-hang", match={"pathPrefix": "/hung/"}, timeout="2s",
               retries={"attempts": 1, "on": ["reset"], "perTryTimeout": "200ms"})],
        [cluster("app", [hanging, healthy]), cluster("both-hang", [hanging])]), threads=1)  # one round robin
    for i in range(4):
        started = time.monotonic()
        r = curl(p.url(f"/retried/{i}"), "--http1.1")
        elapsed = time.monotonic() - started
        assert r.status == 200 and r.header("x-backend") == "healthy"
        assert elapsed < 1.0, f"answered after {elapsed:.2f}s"
    assert metric(p, "swiftmesh_cluster_retries_total", cluster="app", cause="per_try_timeout") == 2
    # With every try hanging, the last per-try timeout is the answer, well
    # within the route timeout.
    started = time.monotonic()
    r = curl(p.url("/hung/x"), "--http1.1")
    assert r.status == 504 and r.header("swiftmesh-proxy-error") == "per_try_timeout"
    assert time.monotonic() - started < 1.5


def test_bodies_are_replayed_up_to_the_buffer_limit(mesh):
    resetting = mesh.reset_backend()
    failing = mesh.http_backend("failing")
    failing.fail_status = 503
    healthy = mesh.http_backend("healthy")
    retries = {"attempts": 1, "on": ["gateway-error"], "bufferLimitBytes": 32768}
    p = mesh.proxy(single_listener(
        [route("resetting", match={"pathPrefix": "/reset/"}, retries=retries),
         route("failing", match={"pathPrefix": "/large/"}, retries=retries)],
        [cluster("resetting", [resetting, healthy]), cluster("failing", [failing, healthy])]),
        threads=1)  # one round robin for every connection

    def post(path: str, body: bytes) -> tuple[int, str]:
        conn = http.client.HTTPConnection(p.host, p.port, timeout=10)
        try:
            conn.request("POST", path, body=body)
            resp = conn.getresponse()
            resp.read()
            return resp.status, resp.getheader("x-backend") or ""
        finally:
            conn.close()

    small = bytes(range(256)) * 64  # 16 KiB
    assert [post("/reset/upload", small) for _ in range(4)] == [(200, "healthy")] * 4
    assert resetting.requests == 2, "half the first tries met the resetting endpoint"
    assert [r["bodyLength"] for r in healthy.requests] == [len(small)] * 4
    # A body past the limit is not kept: once the failing endpoint has read
    # all of it and answered 503, there is nothing to send again.
    large = bytes(range(256)) * 256  # 64 KiB
    assert sorted(post("/large/upload", large) for _ in range(2)) == [(200, "healthy"), (503, "failing")]
    assert failing.count == 1 and failing.requests[0]["bodyLength"] == len(large)


def test_nothing_is_retried_once_the_response_started(mesh):
    app = mesh.http_backend("app")
    p = mesh.proxy(single_listener(
        [route("app", retries={"attempts": 2, "on": ["reset", "5xx"]})], [cluster("app", [app])]))
    r = curl(p.url("/x?chunks=3&chunk_size=100&cut=1"), "--http1.1")
    assert r.status == 200, "the head went out before the endpoint failed"
    assert app.count == 1


def test_the_budget_bounds_retries_when_every_endpoint_fails(mesh):
    backends = mesh.http_backends("a", "b", "c")
    for backend in backends:
        backend.fail_status = 503
    ratio, minimum = 0.2, 1
    p = mesh.proxy(single_listener(
        [route("app", retries={"attempts": 3, "on": ["gateway-error"], "backoff": {"base": "1ms", "max": "1ms"},
                               "budget": {"ratio": ratio, "minPerSecond": minimum}})],
        [cluster("app", backends)]), threads=1)  # one loop: no race at the edge of a second
    requests = 300
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(lambda i: curl(p.url(f"/x{i}"), "--http1.1").status, range(requests)))
    elapsed = time.monotonic() - started
    assert statuses == [503] * requests, "the last try's answer is forwarded"
    attempts = sum(b.count for b in backends)
    # The budget counts over ten seconds; the run is shorter, so the whole
    # run fits one window.
    assert elapsed < 10
    assert requests < attempts <= requests * (1 + ratio) + minimum * 10, attempts
    assert metric(p, "swiftmesh_cluster_retry_budget_exhausted_total", cluster="app") > 0


def test_a_retry_waiting_through_a_reload_is_answered(mesh):
    """A reload that replaces the cluster while a retry waits out its backoff:
    the request still gets an answer (503 either way: from the endpoint if
    the retry went first, no_endpoints if the old cluster was retired) and
    the proxy keeps serving. The backoff is drawn from 0-2s, so most runs
    reload mid-backoff."""
    failing = mesh.http_backend("failing")
    failing.fail_status = 503
    p = mesh.proxy(single_listener(
        [route("app", retries={"attempts": 1, "on": ["gateway-error"], "backoff": {"base": "2s", "max": "2s"}})],
        [cluster("app", [failing])]))
    answers: list = []
    request = threading.Thread(target=lambda: answers.append(curl(p.url("/x"), "--http1.1")))
    request.start()
    try:
        # At least: a backoff drawn near 0 sends the retry before the next poll.
        wait_until(lambda: failing.count >= 1, 5, message="the first try")
        changed = copy.deepcopy(p.config)
        changed["clusters"][0]["connectTimeout"] = "2s"  # a new shape: the loops build new cluster objects
        p.write_config(changed)
        p.reload()
        wait_until(lambda: "configuration reloaded" in p.stderr_text(), 5, message="the reload")
    finally:
        request.join(10)
    assert answers and answers[0].status == 503
    assert p.alive
    failing.fail_status = None
    assert curl(p.url("/y"), "--http1.1").status == 200


def test_a_grpc_failure_in_the_trailers_of_a_response_without_messages_is_retried(mesh):
    failing, healthy = mesh.grpc_backends("failing", "healthy")
    failing.fail_code = grpc.StatusCode.UNAVAILABLE
    failing.fail_after_headers = True
    p = mesh.proxy(single_listener(
        [route("echo", retries={"attempts": 1, "on": ["unavailable"]})],
        [cluster("echo", [failing, healthy], protocol="http2")]), threads=1)
    ch = g.channel(f"127.0.0.1:{p.port}")
    try:
        g.wait_channel_ready(ch)
        for _ in range(10):
            g.unary(ch)(b"x", timeout=5)
    finally:
        ch.close()
    assert failing.calls == 5 and healthy.calls == 10
    assert metric(p, "swiftmesh_cluster_retries_total", cluster="echo", cause="grpc_status_14") == 5


def test_an_instance_that_stops_after_its_head_is_retried(mesh):
    """The response head is held while a retry is possible: an endpoint that
    sends HEADERS and then nothing is a hung try for perTryTimeout, not a
    response the client is stuck with."""
    head_only = hpack_literal_block([(b":status", b"200"), (b"content-type", b"application/grpc")])
    stalling = mesh.reset_backend("http2", reply=h2_frame(0x1, END_HEADERS, 1, head_only))
    healthy = mesh.grpc_backend("healthy")
    p = mesh.proxy(single_listener(
        [route("echo", retries={"attempts": 1, "on": ["reset"], "perTryTimeout": "300ms"})],
        [cluster("echo", [stalling, healthy], protocol="http2")]), threads=1)
    ch = g.channel(f"127.0.0.1:{p.port}")
    try:
        g.wait_channel_ready(ch)
        for _ in range(4):
            g.unary(ch)(b"x", timeout=5)
    finally:
        ch.close()
    # Two first tries met the stalling endpoint (on one connection, which it
    # counts as one request); both went on to the healthy one.
    assert healthy.calls == 4
    assert metric(p, "swiftmesh_cluster_retries_total", cluster="echo", cause="per_try_timeout") == 2


def test_the_route_timeout_ends_a_request_that_is_still_retrying(mesh):
    """Every try hangs past perTryTimeout and attempts are many: the route
    timeout, which covers every try, ends the request with 504 timeout."""
    hanging = [mesh.http_backend(f"h{i}", delay=5) for i in (1, 2)]
    p = mesh.proxy(single_listener(
        [route("app", timeout="1s", retries={"attempts": 10, "on": ["reset"], "perTryTimeout": "300ms",
                                             "backoff": {"base": "10ms", "max": "10ms"}})],
        [cluster("app", hanging)]))
    started = time.monotonic()
    r = curl(p.url("/x"), "--http1.1")
    elapsed = time.monotonic() - started
    assert r.status == 504 and r.header("swiftmesh-proxy-error") == "timeout"
    assert 0.9 <= elapsed < 1.6, f"answered after {elapsed:.2f}s"
    # 300 ms tries fit the 1 s deadline three or four times; none starts after it.
    wait_until(lambda: sum(b.count for b in hanging) >= 3, timeout=5, message="the tries to arrive")
    assert sum(b.count for b in hanging) <= 4


def test_max_retries_bounds_the_retries_in_flight(mesh):
    """20 slow failing requests at once with circuitBreaker.maxRetries 2:
    two are retried, the rest get their own 503 as the answer, and the
    refusals are counted as maxRetries overflows."""
    backends = mesh.http_backends("a", "b")
    p = mesh.proxy(single_listener(
        [route("app", retries={"attempts": 1, "on": ["gateway-error"], "backoff": {"base": "1ms", "max": "1ms"}})],
        [cluster("app", backends, circuitBreaker={"maxRetries": 2})]))
    requests = 20
    # Each try takes 2 s, far longer than the callers take to start, so every
    # first try is in flight before the first two retries end.
    with ThreadPoolExecutor(max_workers=requests) as pool:
        statuses = list(pool.map(lambda i: curl(p.url(f"/x{i}?sleep=2&status=503"), "--http1.1").status,
                                 range(requests)))
    assert statuses == [503] * requests
    assert sum(b.count for b in backends) == requests + 2
    assert metric(p, "swiftmesh_cluster_overflow_total", cluster="app", limit="maxRetries") == requests - 2


@pytest.mark.parametrize("code,condition", [
    (grpc.StatusCode.CANCELLED, "cancelled"),
    (grpc.StatusCode.DEADLINE_EXCEEDED, "deadline-exceeded"),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, "resource-exhausted"),
    (grpc.StatusCode.INTERNAL, "internal"),
])
def test_each_retriable_grpc_status_is_retried(mesh, code, condition):
    failing, healthy = mesh.grpc_backends("failing", "healthy")
    failing.fail_code = code
    p = grpc_mesh(mesh, [failing, healthy], {"attempts": 1, "on": [condition]})
    ch = g.channel(f"127.0.0.1:{p.port}")
    try:
        for _ in range(10):
            g.unary(ch)(b"x", timeout=5)
    finally:
        ch.close()
    assert failing.calls >= 1
    assert metric(p, "swiftmesh_cluster_retries_total", cluster="echo",
                  cause=f"grpc_status_{code.value[0]}") == failing.calls
