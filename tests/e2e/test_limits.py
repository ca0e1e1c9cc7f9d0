"""Every resource a client can make the proxy hold is bounded per client
(`listeners[].limits`), against hostile peers (support/hostile.py): streams
(`maxConcurrentStreams`), buffered bytes (`perConnectionBufferLimitBytes`,
for bodies a client does not take and answers it does not read), time spent
sending a head (`requestHeadersTimeout`) or nothing at all on a request
(`streamIdleTimeout`), and a cluster's request slots
(`maxShareOfClusterRequests`). Each limit, when it acts, counts in
`swiftmesh_listener_limit_reached_total{listener, limit}`; and whatever the
attack, another client's request on a fresh connection is still served.

Timeouts are configured short (1 s) so each test takes a few seconds; waits
are bounded polls on conditions. The RSS figures (VmRSS of the proxy, one
event-loop thread) compare with bench/hostile_limits.py, which runs the same
attacks at full size and prints them."""
from __future__ import annotations

import threading
import time

import grpc
import h2.errors
import pytest

from support import grpc_peer as g
from support import hostile
from support.config import cluster, route, single_listener
from support.hostile import MIB, H2Peer, RssSampler
from support.proxy import http_get, metric_sum, run_cli
from support.rawhttp import ConnectionClosed, RawHTTP, request_bytes
from support.util import wait_until

LISTENER = "ingress"
LIMIT_METRIC = "swiftmesh_listener_limit_reached_total"
REASON = "swiftmesh-proxy-error"


def limits_proxy(mesh, limits: dict | None = None, max_requests: int | None = None, backend=None):
    """One listener (`/only` routed to cluster `app`, anything else answered
    404 no_route by the proxy), one HTTP/1.1 backend, one event loop."""
    app = backend or mesh.http_backend("app")
    fields = {"circuitBreaker": {"maxRequests": max_requests}} if max_requests else {}
    p = mesh.proxy(single_listener([route("app", match={"pathPrefix": "/only"})], [cluster("app", [app], **fields)],
                                   name=LISTENER, limits=limits, drainTimeout="0s"), threads=1)
    return p, app


def limit_reached(p, limit: str) -> float:
    return metric_sum(p.metrics(), LIMIT_METRIC, listener=LISTENER, limit=limit)


def cluster_requests(p, name: str = "app") -> int:
    return next(c for c in p.admin_json("/clusters")["clusters"] if c["name"] == name)["circuitBreaker"]["requests"]


def still_serves(p) -> None:
    """Another client, on a fresh connection, gets the backend's 200."""
    status, headers, _ = http_get(p.host, p.port, "/only/another-client", timeout=5)
    assert (status, headers.get("x-backend"), headers.get(REASON)) == (200, "app", None), (status, headers)


def warm(p) -> None:
    """One request through the cluster and one answered locally, over each
    protocol, so the baseline RSS includes what any first request allocates."""
    still_serves(p)
    assert http_get(p.host, p.port, "/nowhere/warm")[0] == 404
    with H2Peer(p.host, p.port, auto_credit=True) as peer:
        ids = [peer.request("/only/warm"), peer.request("/nowhere/warm")]
        assert peer.wait_for(lambda q: all(q.streams[i].ended_at is not None for i in ids), 5)


# ---------------------------------------------------------------- config

LIMITS_YAML = """\
listeners:
  - name: ingress
    listen: 127.0.0.1:18999
    limits: {LIMITS}
    routes:
      - match: {{ pathPrefix: / }}
        cluster: app
clusters:
  - name: app
    endpoints: [127.0.0.1:19000]
"""


def validate(tmp_path, limits: str):
    f = tmp_path / "limits.yaml"
    f.write_text(LIMITS_YAML.format(LIMITS=limits))
    return run_cli("validate", str(f))


def test_every_limit_is_a_config_key(tmp_path):
    r = validate(tmp_path, "{ maxConcurrentStreams: 50, perConnectionBufferLimitBytes: 65536, "
                           "requestHeadersTimeout: 5s, streamIdleTimeout: 1m, maxShareOfClusterRequests: 25 }")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("share", [0, 101])
def test_cluster_share_is_a_percentage(tmp_path, share):
    r = validate(tmp_path, f"{{ maxShareOfClusterRequests: {share} }}")
    assert r.returncode == 1, r.stdout + r.stderr
    lines = [l for l in r.stderr.splitlines() if "listeners[0].limits.maxShareOfClusterRequests: " in l]
    assert lines and not any("unknown key" in l for l in lines), r.stderr


# ---------------------------------------------------------------- streams

def test_default_stream_limit_is_advertised(mesh):
    p, _ = limits_proxy(mesh)
    with H2Peer(p.host, p.port) as peer:
        peer.handshake()
        assert peer.max_concurrent_streams == 100


def test_a_stream_past_max_concurrent_streams_is_refused(mesh):
    """Eight POSTs whose bodies are still coming hold the eight streams
    allowed; a ninth, sent before the client could read the SETTINGS that
    announce the limit, is refused with REFUSED_STREAM (safe to retry: the
    endpoint never saw it). Once a stream ends, a new one is served."""
    p, app = limits_proxy(mesh, limits={"maxConcurrentStreams": 8})
    with H2Peer(p.host, p.port, auto_credit=True) as peer:
        held = peer.open_streams(8, "/only/upload", method="POST", end_stream=False)
        extra = peer.request("/only/ninth")
        assert peer.handshake()[hostile.SETTINGS_MAX_CONCURRENT_STREAMS] == 8
        assert peer.wait_for(lambda q: q.streams[extra].reset is not None, 5), peer.summary()
        assert peer.streams[extra].reset == h2.errors.ErrorCodes.REFUSED_STREAM, peer.summary()
        assert peer.statuses(held) == {None: 8}, peer.summary()
        assert app.count_path("/only/ninth") == 0
        wait_until(lambda: limit_reached(p, "max_concurrent_streams") == 1, 5,
                   message="limit=max_concurrent_streams counted once")

        peer.conn.end_stream(held[0])
        peer.flush()
        assert peer.wait_for(lambda q: q.streams[held[0]].ended_at is not None, 5), peer.summary()
        assert peer.streams[held[0]].status == 200
        again = peer.request("/only/again")
        assert peer.wait_for(lambda q: q.streams[again].ended_at is not None or q.streams[again].reset is not None, 5)
        assert peer.streams[again].status == 200, peer.summary()
    still_serves(p)


# ---------------------------------------------------------------- buffered bytes

def test_bodies_a_client_never_takes_hold_bounded_memory(mesh):
    """100 streams (the default limit) each asking for a 1 MiB body with
    SETTINGS_INITIAL_WINDOW_SIZE 0 and never a WINDOW_UPDATE: the proxy stops
    reading from the endpoints once the connection's buffer
    (perConnectionBufferLimitBytes, default 1 MiB) is full, instead of
    holding what the kernel's socket buffers do not. The bar: RSS grows by
    less than 20 MiB. The binary before the limits, from an idle ~21 MiB,
    grew by 39.6-39.8 MiB here (so a 40 MiB bar would not tell them apart),
    and by ~400 MiB with 1024 streams (bench/hostile_limits.py)."""
    p, app = limits_proxy(mesh)
    warm(p)
    n = 100
    with RssSampler(p.proc.pid) as rss, H2Peer(p.host, p.port, initial_window=0) as peer:
        peer.handshake()
        peer.open_streams(n, f"/only/big?size={MIB}")
        wait_until(lambda: app.count_path("/only/big") == n, 15, message=f"{n} requests at the endpoint")
        still_serves(p)
        wait_until(lambda: rss.settled(2.0), 15, message="the proxy's RSS to stop growing")
        growth = rss.growth
        assert growth < 20 * MIB, f"RSS grew {hostile.mib(growth)} MiB (from {hostile.mib(rss.baseline)} MiB)"
        wait_until(lambda: limit_reached(p, "connection_buffer") >= 1, 10,
                   message="limit=connection_buffer counted")
        # Heads are not flow-controlled: every stream has its 200, and waits for credit.
        assert peer.wait_for(lambda q: q.statuses() == {200: n}, 5), peer.summary()
        assert peer.closed_at is None and not any(r.reset for r in peer.streams.values()), peer.summary()
    still_serves(p)


def test_a_stream_with_credit_completes_beside_streams_without(mesh):
    """Twenty 1 MiB bodies on streams at window 0 fill the connection's
    buffer; then the client gives one of them credit. That stream's whole
    body must arrive while the other nineteen stay stalled: bytes waiting
    for streams the client keeps shut must not stop the streams it reads
    (a client pausing a few downloads would otherwise freeze its
    connection). The binary before the limits passes this by holding
    everything."""
    p, app = limits_proxy(mesh)
    with H2Peer(p.host, p.port, initial_window=0) as peer:
        peer.handshake()
        stalled = peer.open_streams(20, f"/only/big?size={MIB}")
        wait_until(lambda: app.count_path("/only/big") == 20, 15, message="20 requests at the endpoint")
        wait_until(lambda: limit_reached(p, "connection_buffer") >= 1, 10,
                   message="limit=connection_buffer counted")
        granted = stalled.pop()
        peer.conn.increment_flow_control_window(MIB)               # the connection
        peer.conn.increment_flow_control_window(MIB, stream_id=granted)
        peer.flush()
        assert peer.wait_for(lambda q: q.streams[granted].ended_at is not None or q.closed_at is not None, 15), \
            f"stream {granted}: {peer.streams[granted]}; {peer.summary()}"
        assert peer.streams[granted].data_bytes == MIB, peer.streams[granted]
        assert all(peer.streams[s].data_bytes == 0 for s in stalled)


@pytest.mark.parametrize("protocol", ["h1", "h2"])
def test_answers_a_client_never_reads_hold_bounded_memory(mesh, protocol):
    """Requests the proxy answers itself (404 no_route), written without ever
    reading the socket (SO_RCVBUF 4 KiB): once the unsent answers fill the
    socket the proxy stops reading the client (limit unread_answers). The bar: RSS
    grows by less than 16 MiB for 6 MiB of requests offered (the binary
    before the limits read them all: +20 MiB over HTTP/2 and +31 MiB over
    HTTP/1.1 for 4 MiB)."""
    p, _ = limits_proxy(mesh)
    warm(p)
    sock = hostile.raw_socket(p.host, p.port, rcvbuf=4096)
    try:
        with RssSampler(p.proc.pid) as rss:
            if protocol == "h2":
                hostile.h2_handshake_raw(sock)
                requests = hostile.h2_requests("/nowhere")
            else:
                requests = hostile.h1_requests("/nowhere")
            sent = hostile.send_unread(sock, requests, total=6 * MIB, stall=1.0, deadline=20.0)
            # HTTP/1.1: the unread answers fill the socket. HTTP/2: the streams
            # whose answers are unread keep counting, so the stream limit may
            # act first (then the refusals are the unread answers).
            acted = ["unread_answers"] + (["max_concurrent_streams"] if protocol == "h2" else [])
            still_serves(p)
            wait_until(lambda: rss.settled(2.0), 15, message="the proxy's RSS to stop growing")
            growth = rss.growth
        assert growth < 16 * MIB, f"RSS grew {hostile.mib(growth)} MiB; {sent.describe()}"
        wait_until(lambda: sum(limit_reached(p, limit) for limit in acted) >= 1, 10,
                   message=f"one of limit={acted} counted; {sent.describe()}")
    finally:
        sock.close()
    still_serves(p)


# ---------------------------------------------------------------- time to send a head

def test_a_request_head_sent_too_slowly_gets_408(mesh):
    """Slowloris: a head trickled a byte every 0.25 s is not complete within
    requestHeadersTimeout (1 s): 408 request_headers_timeout, then close."""
    p, app = limits_proxy(mesh, limits={"requestHeadersTimeout": "1s"})
    head = request_bytes("GET", "/only/slow", [("User-Agent", "slowloris")])
    with hostile.raw_socket(p.host, p.port) as sock:
        result = hostile.trickle(sock, head, interval=0.25, max_seconds=6)
    answer = result.h1_head()
    assert answer is not None, result.describe_h1()
    status, headers = answer
    assert (status, headers.get(REASON)) == (408, "request_headers_timeout"), result.describe_h1()
    assert 0.9 <= result.first_reply_at <= 4.0, result.describe_h1()
    assert result.closed_at is not None, result.describe_h1()
    assert not result.complete and app.count_path("/only/slow") == 0
    wait_until(lambda: limit_reached(p, "request_headers_timeout") == 1, 5,
               message="limit=request_headers_timeout counted once")
    still_serves(p)


def test_a_head_sent_slowly_within_the_timeout_is_served(mesh):
    """A byte every 15 ms, the whole head in well under requestHeadersTimeout (2 s)."""
    p, _ = limits_proxy(mesh, limits={"requestHeadersTimeout": "2s"})
    head = request_bytes("GET", "/only/unhurried")
    assert len(head) * 0.015 < 1.0
    with RawHTTP(p.host, p.port, timeout=5) as conn:
        result = hostile.trickle(conn.sock, head, interval=0.015, max_seconds=6, keep_waiting=False)
        assert result.complete, result.describe_h1()
        conn.buf = result.received
        resp = conn.read_response()
    assert resp.status == 200 and resp.header("x-backend") == "app", (resp.status, resp.headers)
    assert limit_reached(p, "request_headers_timeout") == 0


def test_the_head_timeout_starts_at_the_heads_first_byte(mesh):
    """A keep-alive connection quiet for longer than requestHeadersTimeout
    between two requests is not a slow head: the time counts from a head's
    first byte (quiet connections are the listener's idleTimeout's)."""
    p, _ = limits_proxy(mesh, limits={"requestHeadersTimeout": "1s"})
    with RawHTTP(p.host, p.port, timeout=5) as conn:
        conn.send(request_bytes("GET", "/only/first"))
        assert conn.read_response().status == 200
        time.sleep(1.5)  # the scenario: the client has nothing to ask for a while
        conn.send(request_bytes("GET", "/only/second"))
        resp = conn.read_response()
    assert (resp.status, resp.header(REASON)) == (200, None), (resp.status, resp.headers)
    assert limit_reached(p, "request_headers_timeout") == 0


def test_first_bytes_that_tell_no_protocol_are_cut_off(mesh):
    """"PR" could still become an HTTP/1.1 PROPFIND or the HTTP/2 preface;
    nothing more comes. Within requestHeadersTimeout the connection closes."""
    p, _ = limits_proxy(mesh, limits={"requestHeadersTimeout": "1s"})
    with hostile.raw_socket(p.host, p.port) as sock:
        sock.sendall(b"PR")
        _, closed = hostile.wait_closed(sock, timeout=6)
    assert closed is not None and 0.9 <= closed <= 4.0, f"closed at {closed}"
    wait_until(lambda: limit_reached(p, "request_headers_timeout") == 1, 5,
               message="limit=request_headers_timeout counted once")
    still_serves(p)


@pytest.mark.parametrize("shape", ["trickled", "unfinished"])
def test_an_http2_header_block_sent_too_slowly_ends_the_connection(mesh, shape):
    """A HEADERS frame arriving a byte every 0.1 s, or a HEADERS frame without
    END_HEADERS whose CONTINUATION never comes, is a header block not
    complete within requestHeadersTimeout (1 s): GOAWAY, then close (the
    block cannot be skipped: HPACK state is the connection's)."""
    p, app = limits_proxy(mesh, limits={"requestHeadersTimeout": "1s"})
    with hostile.raw_socket(p.host, p.port) as sock:
        hostile.h2_handshake_raw(sock)
        if shape == "trickled":
            frame = hostile.h2_headers_frame(1, "/only/slow", extra=[("user-agent", "slowloris")])
            result = hostile.trickle(sock, frame, interval=0.1, max_seconds=6, answered=hostile.h2_goaway_came)
            received, closed = result.received, result.closed_at
            assert not result.complete, result.describe_h2()
        else:
            sock.sendall(hostile.h2_headers_frame(1, "/only/slow", end_headers=False))
            received, closed = hostile.wait_closed(sock, timeout=6)
    assert hostile.goaway_of(received) is not None, f"no GOAWAY; closed at {closed}"
    assert closed is not None and 0.9 <= closed <= 5.0, f"closed at {closed}"
    assert app.count_path("/only/slow") == 0
    wait_until(lambda: limit_reached(p, "request_headers_timeout") == 1, 5,
               message="limit=request_headers_timeout counted once")
    still_serves(p)


# ---------------------------------------------------------------- requests where nothing moves

IDLE = {"streamIdleTimeout": "1s"}


def h2_exchange(p, path: str, method: str = "GET", end_stream: bool = True, timeout: float = 6.0):
    """One request on a fresh h2c connection; the stream's record once it
    ended or was reset (or the connection closed, or `timeout` passed)."""
    with H2Peer(p.host, p.port, auto_credit=True) as peer:
        sid = peer.request(path, method=method, end_stream=end_stream)
        peer.wait_for(lambda q: q.streams[sid].ended_at is not None or q.streams[sid].reset is not None, timeout)
        return peer.streams[sid], peer.summary()


def test_a_request_body_that_never_comes_h1_gets_408(mesh):
    p, _ = limits_proxy(mesh, limits=IDLE)
    with RawHTTP(p.host, p.port, timeout=6) as conn:
        started = time.monotonic()
        conn.send(request_bytes("POST", "/only/upload", [("Content-Length", "100")]))
        resp = conn.read_response()
        took = time.monotonic() - started
        assert (resp.status, resp.header(REASON)) == (408, "stream_idle_timeout"), (resp.status, resp.headers)
        assert 0.9 <= took <= 4.0, took
        # The body's end is unknown: the connection cannot carry another request.
        assert conn.closed_by_peer(3)
    wait_until(lambda: cluster_requests(p) == 0, 5, message="the request's cluster slot released")
    wait_until(lambda: limit_reached(p, "stream_idle_timeout") == 1, 5, message="limit=stream_idle_timeout counted")
    still_serves(p)


def test_a_request_body_that_never_comes_h2_gets_408(mesh):
    p, _ = limits_proxy(mesh, limits=IDLE)
    record, summary = h2_exchange(p, "/only/upload", method="POST", end_stream=False)
    assert (record.status, record.header(REASON)) == (408, "stream_idle_timeout"), summary
    assert 0.9 <= record.headers_at <= 4.0, summary
    wait_until(lambda: cluster_requests(p) == 0, 5, message="the request's cluster slot released")
    wait_until(lambda: limit_reached(p, "stream_idle_timeout") == 1, 5, message="limit=stream_idle_timeout counted")
    still_serves(p)


@pytest.mark.parametrize("protocol", ["h1", "h2"])
def test_an_endpoint_that_never_answers_gets_504(mesh, protocol):
    """The request is complete; the endpoint says nothing (it would answer
    after 5 s) and the route has no timeout: streamIdleTimeout answers."""
    p, app = limits_proxy(mesh, limits=IDLE)
    path = "/only/silent?sleep=5"
    if protocol == "h1":
        started = time.monotonic()
        status, headers, _ = http_get(p.host, p.port, path, timeout=6)
        took, reason = time.monotonic() - started, headers.get(REASON)
    else:
        record, summary = h2_exchange(p, path)
        status, took, reason = record.status, record.headers_at, record.header(REASON)
    assert (status, reason) == (504, "stream_idle_timeout")
    assert 0.9 <= took <= 4.0, took
    assert app.count_path("/only/silent") == 1
    wait_until(lambda: cluster_requests(p) == 0, 5, message="the request's cluster slot released")
    wait_until(lambda: limit_reached(p, "stream_idle_timeout") == 1, 5, message="limit=stream_idle_timeout counted")
    still_serves(p)


STALLING = "/only/stalls?chunks=2&chunk_size=100&chunk_delay=5"


def test_a_response_that_stalls_h1_closes_the_connection(mesh):
    """The head and a first chunk went out, then nothing for 5 s: past
    streamIdleTimeout the only way to tell an HTTP/1.1 client the body is
    cut is to close before its last chunk."""
    p, _ = limits_proxy(mesh, limits=IDLE)
    with RawHTTP(p.host, p.port, timeout=6) as conn:
        conn.send(request_bytes("GET", STALLING))
        status, _, _ = conn.read_head()
        assert status == 200
        started = time.monotonic()
        with pytest.raises(ConnectionClosed):
            conn._read_chunked()
        assert time.monotonic() - started <= 4.0
    wait_until(lambda: limit_reached(p, "stream_idle_timeout") == 1, 5, message="limit=stream_idle_timeout counted")
    still_serves(p)


def test_a_response_that_stalls_h2_resets_the_stream(mesh):
    p, _ = limits_proxy(mesh, limits=IDLE)
    record, summary = h2_exchange(p, STALLING)
    assert record.status == 200 and record.data_bytes == 100, summary
    assert record.reset is not None and record.ended_at is None, summary
    assert 0.9 <= record.reset_at - record.headers_at <= 4.0, summary
    wait_until(lambda: limit_reached(p, "stream_idle_timeout") == 1, 5, message="limit=stream_idle_timeout counted")
    still_serves(p)


@pytest.mark.parametrize("protocol", ["h1", "h2"])
def test_a_slow_but_steady_response_is_not_idle(mesh, protocol):
    """Six chunks 0.3 s apart: 1.5 s in all, longer than the idle timeout,
    but never 1 s without a byte."""
    p, _ = limits_proxy(mesh, limits=IDLE)
    path = "/only/steady?chunks=6&chunk_size=100&chunk_delay=0.3"
    if protocol == "h1":
        status, _, body = http_get(p.host, p.port, path, timeout=6)
        assert (status, len(body)) == (200, 600)
    else:
        record, summary = h2_exchange(p, path)
        assert (record.status, record.data_bytes, record.reset) == (200, 600, None), summary
        assert record.ended_at is not None, summary
    assert limit_reached(p, "stream_idle_timeout") == 0


# ---------------------------------------------------------------- a cluster's request slots

@pytest.mark.parametrize("share,admitted", [(None, 5), (15, 2), (1, 1), (100, 10)])
def test_one_connection_holds_at_most_its_share_of_a_cluster(mesh, share, admitted):
    """maxRequests 10; one connection opens 20 POSTs whose bodies never come.
    It may hold `share` percent of the 10 (default 50; rounded up, at least
    one); the rest get 429 cluster_share at once, and another client still
    gets through. At 100% the breaker itself turns the rest away (503)."""
    limits = {"maxShareOfClusterRequests": share} if share is not None else None
    p, _ = limits_proxy(mesh, limits=limits, max_requests=10)
    with H2Peer(p.host, p.port, auto_credit=True) as peer:
        ids = peer.open_streams(20, "/only/upload", method="POST", end_stream=False)
        answered = lambda q: sum(1 for i in ids if q.streams[i].status is not None or q.streams[i].reset is not None)
        assert peer.wait_for(lambda q: answered(q) >= 20 - admitted, 5), peer.summary()
        wait_until(lambda: cluster_requests(p) == admitted, 5, message=f"{admitted} requests in flight")
        refused = {i: peer.streams[i] for i in ids if peer.streams[i].status is not None}
        assert len(refused) == 20 - admitted, peer.summary()
        expected = (429, "cluster_share") if admitted < 10 else (503, "overflow")
        assert {(r.status, r.header(REASON)) for r in refused.values()} == {expected}, peer.summary()
        if admitted < 10:
            still_serves(p)
            wait_until(lambda: limit_reached(p, "cluster_share") == 20 - admitted, 5,
                       message="limit=cluster_share counted for each refusal")
        assert peer.statuses([i for i in ids if i not in refused]) == {None: admitted}, peer.summary()
    wait_until(lambda: cluster_requests(p) == 0, 5, message="the attacker's slots released when it left")
    still_serves(p)


def test_grpc_callers_past_their_share_get_resource_exhausted(mesh):
    """Ten client-streaming calls on one channel (one connection) that keep
    their requests open, maxRequests 10: five go through, five end at once
    with RESOURCE_EXHAUSTED; a call on another channel succeeds meanwhile."""
    backend = mesh.grpc_backend("g1")
    p = mesh.proxy(single_listener(
        [route("echo", match={"grpc": {"service": g.SERVICE}})],
        [cluster("echo", [backend], protocol="http2", circuitBreaker={"maxRequests": 10})],
        name=LISTENER, drainTimeout="0s"), threads=1)
    release = threading.Event()

    def held_requests():
        release.wait(20)
        yield b"x"

    ch, other = g.channel(f"127.0.0.1:{p.port}"), g.channel(f"127.0.0.1:{p.port}")
    try:
        g.wait_channel_ready(ch)
        calls = [g.client_stream(ch).future(held_requests(), timeout=20) for _ in range(10)]
        wait_until(lambda: sum(c.done() for c in calls) == 5, 10, message="five calls turned away")
        refused = [c for c in calls if c.done()]
        for call in refused:
            assert call.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, (call.code(), call.details())
            assert (REASON, "cluster_share") in tuple(call.trailing_metadata() or ()), call.trailing_metadata()
        assert g.call_backend(other, timeout=5) == "g1"
        release.set()
        for call in calls:
            if call not in refused:
                call.result(timeout=10)
    finally:
        release.set()
        ch.close()
        other.close()
    wait_until(lambda: limit_reached(p, "cluster_share") == 5, 5, message="limit=cluster_share counted 5 times")
