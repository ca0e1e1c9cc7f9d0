"""Hostile or broken input: malformed requests, oversized and too many
headers, request smuggling shapes; and invalid config files for `validate`
and `proxy`. After every bad request the proxy still serves a good one."""
from __future__ import annotations

import subprocess
import time
import textwrap

import pytest

from support.config import cluster, route, single_listener
from support.proxy import binary_path, run_cli
from support.rawhttp import END_HEADERS, END_STREAM, H2_PREFACE_AND_SETTINGS, RawHTTP, h2_frame, h2_frames, hpack_literal_block, one_request, request_bytes
from support.ports import free_port
from support.util import connect_refused, curl

MAX_HEADER_BYTES = 8192
MAX_HEADERS = 30


@pytest.fixture
def limited(mesh):
    a = mesh.http_backend("a")
    p = mesh.proxy(single_listener([route("a")], [cluster("a", [a])],
                                   limits={"maxRequestHeaderBytes": MAX_HEADER_BYTES,
                                           "maxRequestHeaders": MAX_HEADERS}))
    return p, a


def still_serves(p) -> None:
    resp = one_request(p.host, p.port, request_bytes("GET", "/after"))
    assert resp.status == 200 and resp.json()["path"] == "/after"


def send_bad(p, raw: bytes):
    with RawHTTP(p.host, p.port, timeout=10) as conn:
        conn.send(raw)
        resp = conn.read_response()
        closed = conn.closed_by_peer(5)
    return resp, closed


MALFORMED = {
    "garbage-method": b"G@RBAGE / HTTP/1.1\r\nHost: x\r\n\r\n",
    "space-in-target": b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
    "header-without-colon": b"GET / HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n",
    "space-in-header-name": b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: v\r\n\r\n",
    "nul-in-header-value": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    "bad-chunk-size": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    "bad-content-length": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\nhello",
    # A bare CR ending a line would reveal a Transfer-Encoding other parsers do not see.
    "bare-cr-in-header": b"POST / HTTP/1.1\r\nHost: x\r\nX: y\rTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello",
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_request_gets_400_and_close(limited, name):
    p, a = limited
    resp, closed = send_bad(p, MALFORMED[name])
    assert resp.status == 400, (resp.status, resp.headers, resp.body[:200])
    assert resp.header("swiftmesh-proxy-error") == "bad_request"
    assert resp.header("x-request-id")
    assert closed, "the proxy closes the connection after a malformed request"
    assert a.count == 0, "a malformed request never reaches the backend"
    still_serves(p)


def test_content_length_with_transfer_encoding_is_rejected(limited):
    p, a = limited
    raw = (b"POST /smuggle HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
    resp, closed = send_bad(p, raw)
    assert resp.status == 400
    assert resp.header("swiftmesh-proxy-error") == "bad_request"
    assert closed
    assert a.count == 0 and a.count_path("/smuggled") == 0
    still_serves(p)


def test_differing_content_lengths_are_rejected(limited):
    p, a = limited
    raw = b"POST /cl HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"
    resp, closed = send_bad(p, raw)
    assert resp.status == 400
    assert resp.header("swiftmesh-proxy-error") == "bad_request"
    assert closed
    assert a.count == 0
    still_serves(p)


def test_oversized_single_header(limited):
    p, a = limited
    resp = one_request(p.host, p.port, request_bytes("GET", "/big", [("X-Big", "v" * (MAX_HEADER_BYTES + 2000))]))
    assert resp.status == 431
    assert resp.header("swiftmesh-proxy-error") == "headers_too_large"
    assert resp.header("x-request-id")
    assert a.count == 0
    still_serves(p)


def test_oversized_header_total(limited):
    p, a = limited
    headers = [(f"X-Part-{i}", "v" * 2000) for i in range(6)]  # 12 KB in all, each small
    resp = one_request(p.host, p.port, request_bytes("GET", "/big", headers))
    assert resp.status == 431
    assert resp.header("swiftmesh-proxy-error") == "headers_too_large"
    assert a.count == 0
    still_serves(p)


def test_too_many_headers(limited):
    p, a = limited
    headers = [(f"X-H-{i}", "1") for i in range(MAX_HEADERS + 10)]
    resp = one_request(p.host, p.port, request_bytes("GET", "/many", headers))
    assert resp.status == 431
    assert resp.header("swiftmesh-proxy-error") == "too_many_headers"
    assert resp.header("x-request-id")
    assert a.count == 0
    still_serves(p)


def test_headers_within_limits_pass(limited):
    p, a = limited
    headers = [(f"X-H-{i}", "v" * 100) for i in range(MAX_HEADERS // 2)]
    resp = one_request(p.host, p.port, request_bytes("GET", "/ok", headers))
    assert resp.status == 200
    assert a.count == 1


def test_h2_too_many_headers(limited):
    p, a = limited
    args = []
    for i in range(MAX_HEADERS + 10):
        args += ["-H", f"x-h-{i}: 1"]
    r = curl(p.url("/many-h2"), "--http2-prior-knowledge", *args)
    assert r.status == 431
    assert r.header("swiftmesh-proxy-error") == "too_many_headers"
    assert a.count == 0
    assert curl(p.url("/after"), "--http2-prior-knowledge").status == 200


def test_h2_oversized_headers(limited):
    p, a = limited
    r = curl(p.url("/big-h2"), "--http2-prior-knowledge", "-H", "x-big: " + "v" * (MAX_HEADER_BYTES + 2000))
    assert r.status == 431
    assert r.header("swiftmesh-proxy-error") == "headers_too_large"
    assert a.count == 0


def test_h2_connection_error_sends_goaway_and_closes(limited):
    """A frame longer than SETTINGS_MAX_FRAME_SIZE is a connection error:
    GOAWAY(FRAME_SIZE_ERROR), then the TCP connection is closed (RFC 9113
    5.4.1), so a hostile client cannot park connections on the proxy."""
    p, _ = limited
    with RawHTTP(p.host, p.port, timeout=5) as conn:
        conn.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
                  + b"\xff" * 64)
        closed = conn.closed_by_peer(3)
        frames = list(h2_frames(conn.buf))
    goaways = [int.from_bytes(payload[4:8], "big") for ftype, _, _, payload in frames if ftype == 0x7]
    assert goaways, f"no GOAWAY among frames {[f[0] for f in frames]}"
    assert goaways[-1] == 0x6, f"GOAWAY error code {goaways[-1]}, expected FRAME_SIZE_ERROR (6)"
    assert closed, "the proxy sent GOAWAY for a connection error but kept the TCP connection open"
    still_serves(p)


def stream_one_reset_codes(p, raw: bytes) -> list[int]:
    """Sends `raw` (a client preface and frames) and waits for the proxy to
    reset stream 1; the RST_STREAM error codes it sent for that stream."""
    with RawHTTP(p.host, p.port, timeout=5) as conn:
        conn.send(raw)

        def codes() -> list[int]:
            return [int.from_bytes(payload[:4], "big")
                    for ftype, _, stream, payload in h2_frames(conn.buf) if ftype == 0x3 and stream == 1]

        while not codes():
            conn._fill()
        return codes()


@pytest.mark.parametrize("name,value", [
    (b"x-a", b"a\r\nx-injected: 1"),   # would split into two fields over HTTP/1.1
    (b"X-Upper", b"1"),                  # HTTP/2 names are lowercase
    (b"connection", b"close"),           # connection-specific
])
def test_h2_malformed_header_block_resets_the_stream(limited, name, value):
    """RFC 9113 8.2: a malformed field makes the request malformed. The stream
    is reset with PROTOCOL_ERROR, nothing reaches the endpoint, and the
    connection and the proxy keep serving."""
    p, a = limited
    block = hpack_literal_block([(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/smuggle"),
                                 (b":authority", b"x"), (name, value)])
    codes = stream_one_reset_codes(p, H2_PREFACE_AND_SETTINGS + h2_frame(0x1, END_STREAM | END_HEADERS, 1, block))
    assert codes == [0x1], f"RST_STREAM codes {codes}, expected PROTOCOL_ERROR (1)"
    assert a.count == 0 and a.count_path("/smuggle") == 0
    assert curl(p.url("/after"), "--http2-prior-knowledge").status == 200


@pytest.mark.parametrize("declared,sent", [(5, b"0123456789"), (10, b"01234")])
def test_h2_request_body_must_match_its_content_length(limited, declared, sent):
    """RFC 9113 8.1.1: DATA that runs past or stops short of the declared
    content-length makes the request malformed. Over HTTP/1.1 the surplus
    would be read as the next request: the stream is reset with
    PROTOCOL_ERROR, the bytes go nowhere, and the proxy keeps serving."""
    p, a = limited
    block = hpack_literal_block([(b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/cl"),
                                 (b":authority", b"x"), (b"content-length", str(declared).encode())])
    codes = stream_one_reset_codes(
        p, H2_PREFACE_AND_SETTINGS + h2_frame(0x1, END_HEADERS, 1, block) + h2_frame(0x0, END_STREAM, 1, sent))
    assert codes == [0x1], f"RST_STREAM codes {codes}, expected PROTOCOL_ERROR (1)"
    assert curl(p.url("/after"), "--http2-prior-knowledge").status == 200


@pytest.mark.parametrize("client", ["http1", "h2c"])
def test_h2_response_body_longer_than_its_content_length_is_cut_off(mesh, client):
    """An endpoint's response whose DATA exceeds its content-length is
    malformed: the client gets no byte beyond the declared length (over
    HTTP/1.1 they would be read as the next response), and the exchange ends
    as a reset."""
    head = hpack_literal_block([(b":status", b"200"), (b"content-length", b"3")])
    reply = (h2_frame(0x1, END_HEADERS, 1, head) + h2_frame(0x0, END_STREAM, 1, b"hello world"))
    liar = mesh.reset_backend("http2", reply=reply)
    p = mesh.proxy(single_listener([route("liar")], [cluster("liar", [liar], protocol="http2")]))
    args = ["--http2-prior-knowledge"] if client == "h2c" else []
    r = curl(p.url("/liar"), *args, timeout=10)
    assert r.returncode != 0, f"curl succeeded with body {r.body!r}"
    assert b"hello world" not in r.body and len(r.body) <= 3


# ---------------------------------------------------------------- config files

VALID = """\
admin: { listen: 127.0.0.1:9901 }
drainTimeout: 15s
listeners:
  - name: ingress
    listen: 127.0.0.1:8080
    limits: { maxRequestHeaderBytes: 61440, maxRequestHeaders: 100 }
    routes:
      - match: { pathPrefix: /user.UserService/ }
        cluster: user
        timeout: 2s
        requestHeadersToAdd: { x-env: prod }
        requestHeadersToRemove: [x-debug]
      - match: { path: /exact, methods: [GET], headers: [{name: x-canary, exact: "1"}] }
        cluster: user
      - match: { grpc: { service: x.Y, method: M } }
        cluster: user
      - match: { pathPrefix: / }
        split: [ { cluster: user, weight: 90 }, { cluster: user-canary, weight: 10 } ]
clusters:
  - name: user
    protocol: http2
    loadBalancing: ring_hash
    hashHeader: x-user-id
    connectTimeout: 1s
    endpoints: [127.0.0.1:50051, { address: 127.0.0.1:50052, weight: 2 }]
  - name: user-canary
    protocol: http2
    dns: { name: user.test, port: 50051, refresh: 1s, resolver: 127.0.0.1:5353 }
"""

BASE_CLUSTERS = """\
clusters:
  - name: user
    endpoints: [127.0.0.1:50051]
  - name: alive
    endpoints: [127.0.0.1:50052]
"""


def write(tmp_path, text: str, name: str = "config.yaml"):
    f = tmp_path / name
    f.write_text(textwrap.dedent(text))
    return f


def error_lines(stderr: str) -> list[str]:
    return [l.strip() for l in stderr.splitlines() if l.strip()]


def assert_error(stderr: str, path: str, *fragments: str) -> None:
    """Some stderr line carries `path: ` and every fragment."""
    for line in error_lines(stderr):
        if f"{path}: " in line and all(f in line for f in fragments):
            return
    raise AssertionError(f"no error line with {path!r} and {fragments!r} in stderr:\n{stderr}")


def validate(f):
    return run_cli("validate", str(f))


def test_validate_accepts_valid_config(tmp_path):
    r = validate(write(tmp_path, VALID))
    assert r.returncode == 0, r.stderr


def test_validate_accepts_minimal_config(tmp_path):
    r = validate(write(tmp_path, textwrap.dedent("""\
        listeners:
          - name: in
            listen: 127.0.0.1:8080
            routes:
              - match: { pathPrefix: / }
                cluster: c
        clusters:
          - name: c
            endpoints: [127.0.0.1:9000]
        """)))
    assert r.returncode == 0, r.stderr


def test_validate_unknown_cluster(tmp_path):
    r = validate(write(tmp_path, textwrap.dedent("""\
        listeners:
          - name: in
            listen: 127.0.0.1:8080
            routes:
              - match: { pathPrefix: /a }
                cluster: alive
              - match: { pathPrefix: / }
                cluster: usr
        """) + BASE_CLUSTERS))
    assert r.returncode == 1
    assert_error(r.stderr, "listeners[0].routes[1].cluster", 'unknown cluster "usr"', "user", "alive")


def test_validate_unknown_key_suggests(tmp_path):
    r = validate(write(tmp_path, textwrap.dedent("""\
        listeners:
          - name: in
            listen: 127.0.0.1:8080
            routs:
              - match: { pathPrefix: / }
                cluster: user
        """) + BASE_CLUSTERS))
    assert r.returncode == 1
    assert_error(r.stderr, "listeners[0].routs", "unknown key", 'did you mean "routes"')


def test_validate_lists_every_error(tmp_path):
    r = validate(write(tmp_path, """\
        drainTimeout: soon
        listeners:
          - name: in
            listen: 127.0.0.1
            routes:
              - match: { pathPrefix: / }
                cluster: usr
                timeout: 2 parsecs
        clusters:
          - name: user
            loadBalancing: fastest
            protocol: http3
            endpoints: [127.0.0.1:50051, "not an address"]
          - name: user
            endpoints: [127.0.0.1:50052]
        """))
    assert r.returncode == 1
    expected = [
        "drainTimeout",
        "listeners[0].listen",
        "listeners[0].routes[0].cluster",
        "listeners[0].routes[0].timeout",
        "clusters[0].loadBalancing",
        "clusters[0].protocol",
        "clusters[0].endpoints[1]",
        "clusters[1].name",
    ]
    missing = [path for path in expected if not any(path in l for l in error_lines(r.stderr))]
    assert not missing, f"errors not reported for {missing}; stderr:\n{r.stderr}"


@pytest.mark.parametrize("snippet,path", [
    ("listeners: [{ name: in, listen: '127.0.0.1:99999', routes: [{ match: { pathPrefix: / }, cluster: user }] }]",
     "listeners[0].listen"),
    ("listeners: [{ name: in, listen: '127.0.0.1:8080', routes: [{ match: { pathPrefix: / }, cluster: user, "
     "timeout: -1s }] }]", "listeners[0].routes[0].timeout"),
    ("listeners: [{ name: in, listen: '127.0.0.1:8080', routes: [{ match: { pathPrefix: / }, "
     "split: [{ cluster: user, weight: 90 }, { cluster: alive, weight: -5 }] }] }]",
     "listeners[0].routes[0].split[1].weight"),
    ("listeners: [{ name: in, listen: '127.0.0.1:8080', routes: [{ match: { pathPrefix: / }, "
     "split: [{ cluster: user, weight: 90 }, { cluster: nope, weight: 10 }] }] }]",
     "listeners[0].routes[0].split[1].cluster"),
    ("listeners: [{ name: in, listen: '127.0.0.1:8080', routes: [{ match: { pathPrefix: / }, cluster: user }], "
     "limits: { maxRequestHeaders: many } }]", "listeners[0].limits.maxRequestHeaders"),
])
def test_validate_field_errors(tmp_path, snippet, path):
    r = validate(write(tmp_path, snippet + "\n" + BASE_CLUSTERS))
    assert r.returncode == 1, r.stdout + r.stderr
    assert_error(r.stderr, path)


def test_validate_top_level_unknown_key(tmp_path):
    r = validate(write(tmp_path, VALID + "clustrs: []\n"))
    assert r.returncode == 1
    assert_error(r.stderr, "clustrs", "unknown key", 'did you mean "clusters"')


def test_validate_yaml_syntax_error(tmp_path):
    r = validate(write(tmp_path, "listeners: [ { name: in, \n  clusters: ]]\n"))
    assert r.returncode == 1
    assert r.stderr.strip()


def test_validate_missing_file(tmp_path):
    r = validate(tmp_path / "does-not-exist.yaml")
    assert r.returncode == 1
    assert r.stderr.strip()


def test_proxy_refuses_invalid_config(tmp_path):
    port = free_port()
    f = write(tmp_path, textwrap.dedent(f"""\
        listeners:
          - name: in
            listen: 127.0.0.1:{port}
            routes:
              - match: {{ pathPrefix: / }}
                cluster: usr
        """) + BASE_CLUSTERS)
    proc = subprocess.run([str(binary_path()), "proxy", "--config", str(f)], capture_output=True, text=True,
                          timeout=30, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1
    assert_error(proc.stderr, "listeners[0].routes[0].cluster", 'unknown cluster "usr"')
    assert connect_refused("127.0.0.1", port)


def test_a_refused_request_still_being_sent_gets_its_answer(limited):
    """A 200 KB header block is refused (431) before it has all arrived.
    Closing at once would leave the rest unread, and the kernel answers
    unread bytes with a reset that discards the 431 before the client reads
    it. The proxy ends its side after the answer, reads and drops the rest
    for a bounded time and byte count (a lingering close), then closes."""
    p, a = limited
    fill = b"".join(b"X-Fill-%d: %s\r\n" % (i, b"v" * 1000) for i in range(200))
    with RawHTTP(p.host, p.port, timeout=10) as conn:
        conn.send(b"GET /big HTTP/1.1\r\nHost: x\r\n" + fill + b"\r\n")
        resp = conn.read_response()
        assert resp.status == 431 and resp.header("swiftmesh-proxy-error") == "headers_too_large"
        assert resp.header("connection") == "close"
        # The proxy still reads (and drops) what comes: sending more meets no reset.
        conn.send(b"X-More: " + b"m" * 4000 + b"\r\n")
        assert conn.closed_by_peer(5), "the proxy closes once the client is done"
    assert a.count == 0
    still_serves(p)


def test_a_lingering_close_is_bounded(limited):
    """A client that keeps sending after its answer does not keep the
    connection: the proxy closes after at most 2 s or 1 MiB."""
    p, _ = limited
    with RawHTTP(p.host, p.port, timeout=10) as conn:
        conn.send(b"G@RBAGE / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert conn.read_response().status == 400
        started = time.monotonic()
        try:
            while time.monotonic() - started < 8:
                conn.send(b"x" * 65536)
        except OSError:
            pass
        assert time.monotonic() - started < 5, "the lingering close did not end within its bounds"
