"""Requests that could mean one thing to the proxy and another to the app
behind it: spellings of a path that an authorization rule must not miss
(nginx, which decodes and normalizes paths, plays the app), two hosts in
one request, header tokens spelled with non-ASCII look-alikes, fields that
must not cross in trailers or twice, cookies an HTTP/2 client splits, and
malformed HTTP/2 requests sent as fast as a rapid reset."""
from __future__ import annotations

import json

import h2.events
import pytest

from support.config import cluster, route, single_listener
from support.h2client import H2Client
from support.proxy import metric_sum
from support.raw_backend import RawReplyBackend
from support.rawhttp import END_HEADERS, END_STREAM, H2_PREFACE_AND_SETTINGS, RawHTTP, h2_frame, h2_frames, \
    hpack_literal_block, one_request, request_bytes

ADMIN_AREA = b"admin area"

# The app: nginx decodes percent-encoding, resolves dot segments and merges
# slashes before it picks a location, as most servers and frameworks do.
APP_LOCATIONS = """
    location /admin/ {
      add_header x-seen-uri $request_uri always;
      return 200 "admin area\\n";
    }
"""

# Every spelling of /admin/x an app could read as /admin/x (or refuse).
ADMIN_SPELLINGS = [
    "/admin/x",
    "/%61dmin/x",
    "/%61%64%6D%69%6E/x",
    "//admin/x",
    "/./admin/x",
    "/public/../admin/x",
    "/public/%2e%2e/admin/x",
    "/public/.%2E/admin/x",
    "/admin%2fx",
    "/public%2f..%2fadmin/x",
    "/admin;x=1/x",
    "/public/..;/admin/x",
    "/admin/./x",
    "/public\\..\\admin/x",
    "/public/..%5Cadmin/x",
    "/;x/admin/x",
    "/public/;/../admin/x",
]


@pytest.fixture
def guarded(mesh):
    """A front proxy whose listener denies /admin/* to everyone, in front of nginx."""
    app = mesh.nginx_h2c("app", locations=APP_LOCATIONS)
    cfg = single_listener([route("app")], [cluster("app", [app], protocol="http2")])
    cfg["listeners"][0]["authorization"] = {"default": "allow", "rules": [{"action": "deny", "paths": ["/admin/*"]}]}
    return mesh.proxy(cfg), app


@pytest.mark.parametrize("path", ADMIN_SPELLINGS)
def test_no_spelling_of_a_denied_path_reaches_the_app_over_http1(guarded, path):
    p, _ = guarded
    resp = one_request(p.host, p.port, request_bytes("GET", path))
    assert resp.status in (400, 403), (path, resp.status, resp.body[:200])
    assert resp.header("swiftmesh-proxy-error") in ("bad_request", "forbidden")
    assert ADMIN_AREA not in resp.body


@pytest.mark.parametrize("path", ADMIN_SPELLINGS)
def test_no_spelling_of_a_denied_path_reaches_the_app_over_http2(guarded, path):
    p, _ = guarded
    client = H2Client(p.host, p.port)
    try:
        headers, body = client.get(path)
    finally:
        client.close()
    assert headers.get(":status") in ("400", "403"), (path, headers, body[:200])
    assert ADMIN_AREA not in body


def test_a_combining_mark_after_a_slash_does_not_hide_a_path(guarded):
    """`/` and U+0337 are one Swift character; rules compare bytes, as the app does."""
    p, _ = guarded
    resp = one_request(p.host, p.port, request_bytes("GET", "/admin/\xcc\xb7x"))  # sent as the bytes CC B7
    assert resp.status == 403 and ADMIN_AREA not in resp.body
    client = H2Client(p.host, p.port)
    try:
        headers, body = client.get("/admin/\u0337x")
    finally:
        client.close()
    assert headers.get(":status") == "403" and ADMIN_AREA not in body


def test_the_app_gets_the_path_the_proxy_decided_on(guarded):
    p, _ = guarded
    resp = one_request(p.host, p.port, request_bytes("GET", "/public/./a/../%7Euser//x?q=/../%61"))
    assert resp.status == 200
    assert resp.header("x-seen-uri") == "/public/~user/x?q=/../%61", "normalized path, query as sent"
    # Encoded twice: the app decodes once, to `/%61dmin/x`, no admin path either.
    resp = one_request(p.host, p.port, request_bytes("GET", "/%2561dmin/x"))
    assert resp.status == 200 and ADMIN_AREA not in resp.body and resp.header("x-seen-uri") == "/%2561dmin/x"
    # Path parameters travel on; only the decision ignores them.
    resp = one_request(p.host, p.port, request_bytes("GET", "/public;v=1/x"))
    assert resp.status == 200 and resp.header("x-seen-uri") == "/public;v=1/x"


def test_normalization_can_be_turned_off(mesh):
    app = mesh.nginx_h2c("app", locations=APP_LOCATIONS)
    cfg = single_listener([route("app")], [cluster("app", [app], protocol="http2")])
    cfg["listeners"][0]["pathNormalization"] = {"enabled": False}
    p = mesh.proxy(cfg)
    resp = one_request(p.host, p.port, request_bytes("GET", "/public/../x"))
    assert resp.status == 200 and resp.header("x-seen-uri") == "/public/../x", "forwarded as sent"
    assert p.admin_json("/config")["listeners"][0]["pathNormalization"] == {
        "enabled": False, "mergeSlashes": True, "escapedSlashes": "keep"}


def test_with_normalization_off_authorization_refuses_what_an_app_could_read_otherwise(mesh):
    app = mesh.nginx_h2c("app", locations=APP_LOCATIONS)
    cfg = single_listener([route("app")], [cluster("app", [app], protocol="http2")])
    cfg["listeners"][0]["pathNormalization"] = {"enabled": False}
    cfg["listeners"][0]["authorization"] = {"default": "allow", "rules": [{"action": "deny", "paths": ["/admin/*"]}]}
    p = mesh.proxy(cfg)
    for path in ADMIN_SPELLINGS:
        resp = one_request(p.host, p.port, request_bytes("GET", path))
        assert resp.status in (400, 403) and ADMIN_AREA not in resp.body, (path, resp.status)
    resp = one_request(p.host, p.port, request_bytes("GET", "/public/x%20y"))
    assert resp.status == 200 and resp.header("x-seen-uri") == "/public/x%20y"


def test_escaped_slashes_are_kept_without_authorization(mesh):
    app = mesh.nginx_h2c("app", locations=APP_LOCATIONS)
    p = mesh.proxy(single_listener([route("app")], [cluster("app", [app], protocol="http2")]))
    resp = one_request(p.host, p.port, request_bytes("GET", "/objects/a%2fb"))
    assert resp.status == 200 and resp.header("x-seen-uri") == "/objects/a%2Fb"
    assert p.admin_json("/config")["listeners"][0]["pathNormalization"]["escapedSlashes"] == "keep"


def test_escaped_slashes_can_be_decoded_instead_of_refused(mesh):
    app = mesh.nginx_h2c("app", locations=APP_LOCATIONS)
    cfg = single_listener([route("app")], [cluster("app", [app], protocol="http2")])
    cfg["listeners"][0]["pathNormalization"] = {"escapedSlashes": "unescape"}
    cfg["listeners"][0]["authorization"] = {"default": "allow", "rules": [{"action": "deny", "paths": ["/admin/*"]}]}
    p = mesh.proxy(cfg)
    assert one_request(p.host, p.port, request_bytes("GET", "/public%2f..%2fadmin/x")).status == 403
    resp = one_request(p.host, p.port, request_bytes("GET", "/public%2Fx"))
    assert resp.status == 200 and resp.header("x-seen-uri") == "/public/x"


# ---------------------------------------------------------------- Host


@pytest.fixture
def echo(mesh):
    a = mesh.http_backend("a")
    return mesh.proxy(single_listener([route("a")], [cluster("a", [a])])), a


def seen_headers(resp) -> list[tuple[str, str]]:
    return [tuple(h) for h in resp.json()["headers"]]


@pytest.mark.parametrize("raw,reason", [
    (b"GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n", b"more than one Host field"),
    (b"GET / HTTP/1.1\r\nHost: a.example, b.example\r\n\r\n", b"an invalid Host"),
    (b"GET http://a.example/ HTTP/1.1\r\nHost: b.example\r\n\r\n", b"differs from Host"),
    (b"GET / HTTP/1.1\r\nUser-Agent: x\r\n\r\n", b"without Host"),
])
def test_requests_naming_two_hosts_or_none_get_400(echo, raw, reason):
    p, a = echo
    resp = one_request(p.host, p.port, raw)
    assert resp.status == 400 and resp.header("swiftmesh-proxy-error") == "bad_request"
    assert reason in resp.body
    assert a.count == 0


def test_an_absolute_form_target_goes_on_in_origin_form_with_its_host(echo):
    p, a = echo
    resp = one_request(p.host, p.port, b"GET http://App.example:8080/path?q=1 HTTP/1.1\r\nHost: app.example:8080\r\n\r\n")
    assert resp.status == 200
    assert resp.json()["path"] == "/path?q=1"
    assert ("host", "App.example:8080") in seen_headers(resp)


def test_an_http2_host_field_must_agree_with_authority(echo):
    p, a = echo
    client = H2Client(p.host, p.port, validate=False)
    try:
        stream = client.conn.get_next_available_stream_id()
        client.conn.send_headers(stream, [(":method", "GET"), (":scheme", "http"), (":path", "/"),
                                          (":authority", "a.example"), ("host", "b.example")], end_stream=True)
        client.flush()
        resets = []
        while not resets:
            resets = [e for e in client.events() if isinstance(e, h2.events.StreamReset)]
        assert resets[0].error_code == 1, "malformed: PROTOCOL_ERROR"
    finally:
        client.close()
    assert a.count == 0


# ---------------------------------------------------------------- spelling and hygiene


def test_a_kelvin_sign_does_not_spell_chunked(echo):
    p, a = echo
    raw = ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chun\u212aed\r\n\r\n5\r\nhello\r\n0\r\n\r\n").encode()
    resp = one_request(p.host, p.port, raw)
    assert resp.status == 400 and b"Transfer-Encoding" in resp.body
    assert a.count == 0


@pytest.mark.parametrize("fields", [
    b"Transfer-Encoding: chunked\r\nTransfer-Encoding:\r\n",
    b"Transfer-Encoding: chunked, , \r\n",
])
def test_empty_transfer_codings_name_none(echo, fields):
    # A second, empty Transfer-Encoding field (found by FuzzHTTP1Parser) and
    # blank list elements (once refused as codings of their own) name no
    # coding (RFC 9110 section 5.6.1.2): the body is chunked, reaches the app
    # once under the proxy's own framing, and the request after it is its own.
    p, a = echo
    with RawHTTP(p.host, p.port) as conn:
        conn.send(b"POST /first HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n5\r\nhello\r\n0\r\n\r\n"
                  b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n")
        first, second = conn.read_response(), conn.read_response()
    assert first.status == 200 and second.status == 200
    assert first.json()["bodyLength"] == 5
    assert [v for k, v in seen_headers(first) if k == "transfer-encoding"] == ["chunked"]
    assert second.json()["path"] == "/second"
    assert a.count == 2


def test_equal_content_lengths_go_upstream_as_one(echo):
    p, _ = echo
    resp = one_request(p.host, p.port, request_bytes("POST", "/cl", [("Content-Length", "5"), ("Content-Length", "5")],
                                                     body=b"hello"))
    assert resp.status == 200
    assert [v for k, v in seen_headers(resp) if k == "content-length"] == ["5"]


def test_framing_fields_never_travel_in_trailers(mesh):
    reply = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n"
             b"Content-Length: 999\r\nHost: evil.example\r\nX-Checksum: abc\r\n\r\n")
    backend = RawReplyBackend(reply).start()
    mesh.stack.callback(backend.stop)
    p = mesh.proxy(single_listener([route("raw")], [cluster("raw", [backend])]))
    with RawHTTP(p.host, p.port) as conn:
        conn.send(b"POST /t HTTP/1.1\r\nHost: x\r\nTE: trailers\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5\r\nhello\r\n0\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nX-Sum: 1\r\n\r\n")
        resp = conn.read_response()
    assert resp.status == 200 and resp.body == b"ok"
    assert resp.trailers == [("x-checksum", "abc")]
    trailer_section = backend.requests[0].split(b"\r\n0\r\n", 1)[1].lower()
    assert b"x-sum: 1" in trailer_section
    assert b"content-length" not in trailer_section and b"transfer-encoding" not in trailer_section


def test_cookies_an_http2_client_splits_reach_an_http1_endpoint_as_one_field(echo):
    p, _ = echo
    client = H2Client(p.host, p.port)
    try:
        headers, body = client.get("/c", extra=[("cookie", "a=1"), ("cookie", "b=2"), ("cookie", "c=3")])
    finally:
        client.close()
    seen = [tuple(h) for h in json.loads(body)["headers"]]
    assert [v for k, v in seen if k == "cookie"] == ["a=1; b=2; c=3"]


def test_malformed_http2_requests_count_toward_the_rapid_reset_limit(echo):
    """Each malformed request costs the proxy a reset, as a client's reset
    does: 200 within 30 s end the connection with ENHANCE_YOUR_CALM."""
    p, a = echo
    block = hpack_literal_block([(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/x"),
                                 (b":authority", b"x"), (b"X-Upper", b"1")])
    frames = b"".join(h2_frame(0x1, END_STREAM | END_HEADERS, stream, block) for stream in range(1, 2 * 210, 2))
    with RawHTTP(p.host, p.port, timeout=10) as conn:
        conn.send(H2_PREFACE_AND_SETTINGS + frames)
        closed = conn.closed_by_peer(5)
        goaways = [int.from_bytes(payload[4:8], "big") for ftype, _, _, payload in h2_frames(conn.buf) if ftype == 0x7]
    assert goaways == [0xB], f"GOAWAY codes {goaways}, expected ENHANCE_YOUR_CALM (11)"
    assert closed
    assert a.count == 0
    samples = p.metrics()
    assert metric_sum(samples, "swiftmesh_http2_peer_errors_total", code="PROTOCOL_ERROR", scope="stream") == 200
    assert metric_sum(samples, "swiftmesh_http2_peer_errors_total", code="ENHANCE_YOUR_CALM", scope="connection") == 1
