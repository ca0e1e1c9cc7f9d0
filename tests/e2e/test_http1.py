"""HTTP/1.1 through the proxy with curl and raw sockets: methods and bodies,
keep-alive, pipelining, Expect: 100-continue, header hygiene, routing and the
proxy's own error responses."""
from __future__ import annotations

import hashlib
import os
import subprocess
import time

import pytest

from support.config import cluster, route, single_listener
from support.http_backend import pattern
from support.rawhttp import RawHTTP, one_request, request_bytes
from support.util import KeepAliveClient, curl


@pytest.fixture
def echo(mesh):
    """A proxy with one catch-all route to one HTTP/1.1 backend named `a`."""
    a = mesh.http_backend("a")
    p = mesh.proxy(single_listener(
        [route("echo", requestHeadersToAdd={"x-env": "prod"}, requestHeadersToRemove=["x-debug"])],
        [cluster("echo", [a])]))
    return p, a


def seen_headers(body_json: dict) -> dict:
    """Headers the backend saw, name -> list of values."""
    out: dict = {}
    for k, v in body_json["headers"]:
        out.setdefault(k.lower(), []).append(v)
    return out


def test_get(echo):
    p, a = echo
    r = curl(p.url("/hello/world?x=1&y=2"), "--http1.1")
    assert r.returncode == 0, r.stderr
    assert r.status == 200
    assert r.info.get("http_version") == "1.1"
    body = r.json()
    assert body["backend"] == "a"
    assert body["method"] == "GET"
    assert body["path"] == "/hello/world?x=1&y=2"
    assert r.header("x-backend") == "a"


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods(echo, method):
    p, _ = echo
    r = curl(p.url("/m"), "--http1.1", "-X", method)
    assert r.status == 200, r.stderr
    assert r.json()["method"] == method


def test_head(echo):
    p, _ = echo
    with RawHTTP(p.host, p.port) as conn:
        conn.send(request_bytes("HEAD", "/h?size=1234") + request_bytes("GET", "/after-head"))
        head = conn.read_response("HEAD")
        after = conn.read_response()
    assert head.status == 200
    assert head.header("content-length") == "1234"
    assert head.body == b""
    assert after.status == 200 and after.json()["path"] == "/after-head", "HEAD has no body on the wire"


def test_post_body(echo, tmp_path):
    p, a = echo
    data = os.urandom(300 * 1024)
    f = tmp_path / "body.bin"
    f.write_bytes(data)
    r = curl(p.url("/upload"), "--http1.1", "-H", "Content-Type: application/octet-stream", data_file=str(f))
    assert r.status == 200, r.stderr
    body = r.json()
    assert body["method"] == "POST"
    assert body["bodyLength"] == len(data)
    assert body["bodySha256"] == hashlib.sha256(data).hexdigest()


def test_chunked_upload(echo, tmp_path):
    p, a = echo
    data = os.urandom(200 * 1024 + 17)
    f = tmp_path / "body.bin"
    f.write_bytes(data)
    r = curl(p.url("/chunked"), "--http1.1", "-H", "Transfer-Encoding: chunked", data_file=str(f))
    assert r.status == 200, r.stderr
    body = r.json()
    assert body["bodyLength"] == len(data)
    assert body["bodySha256"] == hashlib.sha256(data).hexdigest()


def test_raw_chunked_upload_with_many_small_chunks(echo):
    p, _ = echo
    chunks = [os.urandom(n) for n in (1, 10, 100, 1000, 5000, 3)]
    raw = b"".join(f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in chunks) + b"0\r\n\r\n"
    resp = one_request(p.host, p.port, request_bytes(
        "POST", "/raw-chunked", [("Transfer-Encoding", "chunked")], raw))
    assert resp.status == 200
    assert resp.json()["bodyLength"] == sum(len(c) for c in chunks)
    assert resp.json()["bodySha256"] == hashlib.sha256(b"".join(chunks)).hexdigest()


def test_large_response(echo):
    p, _ = echo
    size = 8 * 1024 * 1024 + 3
    r = curl(p.url(f"/big?size={size}"), "--http1.1")
    assert r.status == 200, r.stderr
    assert len(r.body) == size
    assert r.body == pattern(size)


def test_streaming_chunked_response_is_not_buffered(echo):
    p, _ = echo
    # 10 chunks, 0.15 s apart: the first byte must reach the client long
    # before the last chunk leaves the backend.
    r = curl(p.url("/stream?chunks=10&chunk_size=1000&chunk_delay=0.15"), "--http1.1")
    assert r.status == 200, r.stderr
    assert len(r.body) == 10_000
    assert r.body[:1000] == b"a" * 1000 and r.body[-1000:] == b"j" * 1000
    first_byte, total = float(r.info["time_starttransfer"]), float(r.info["time_total"])
    assert total - first_byte > 0.8, f"first byte at {first_byte:.3f}s, done at {total:.3f}s: response was buffered"


def test_keepalive_reuse_with_curl(echo):
    p, _ = echo
    proc = subprocess.run(
        ["curl", "-sS", "--http1.1", "--max-time", "20", "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null",
         "-w", "%{num_connects} %{http_code}\n", p.url("/1"), p.url("/2"), p.url("/3")],
        capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:3] == ["1 200", "0 200", "0 200"], proc.stdout


def test_keepalive_many_requests_one_connection(echo):
    p, a = echo
    with KeepAliveClient(p.host, p.port) as c:
        for i in range(50):
            status, headers, body = c.get(f"/k/{i}")
            assert status == 200
            assert headers.get("connection", "").lower() != "close"
        assert c.connections_used == 1
    assert a.count == 50


def test_pipelined_requests_answered_in_order(echo):
    p, _ = echo
    reqs = (request_bytes("GET", "/p1?sleep=0.3")
            + request_bytes("POST", "/p2", body=b"x" * 1000)
            + request_bytes("GET", "/p3?size=10")
            + request_bytes("GET", "/p4"))
    with RawHTTP(p.host, p.port) as conn:
        conn.send(reqs)
        r1, r2, r3, r4 = (conn.read_response() for _ in range(4))
    assert [r1.status, r2.status, r3.status, r4.status] == [200] * 4
    assert r1.json()["path"] == "/p1?sleep=0.3"
    assert r2.json()["path"] == "/p2" and r2.json()["bodyLength"] == 1000
    assert r3.body == pattern(10)
    assert r4.json()["path"] == "/p4"
    ids = [r.header("x-request-id") for r in (r1, r2, r3, r4)]
    assert all(ids) and len(set(ids)) == 4



def test_malformed_request_after_pipelined_one_is_answered_in_order(echo):
    p, _ = echo
    with RawHTTP(p.host, p.port) as conn:
        conn.send(request_bytes("GET", "/first?sleep=0.2") + b"NOT HTTP AT ALL\r\n\r\n")
        first = conn.read_response()
        second = conn.read_response()
    assert first.status == 200 and first.json()["path"] == "/first?sleep=0.2"
    assert second.status == 400
    assert second.header("swiftmesh-proxy-error") == "bad_request"


def test_many_pipelined_requests_with_bodies_pause_and_resume(echo):
    # More than the pipelining queue holds (64 parts / 64 KiB): reads pause
    # while it is full and resume as responses go out; nothing is lost.
    p, _ = echo
    count = 150
    reqs = b"".join(request_bytes("POST", f"/n{i}", body=b"b" * 2000) for i in range(count))
    with RawHTTP(p.host, p.port, timeout=20) as conn:
        conn.send(reqs)
        responses = [conn.read_response("POST") for _ in range(count)]
    assert [r.json()["path"] for r in responses] == [f"/n{i}" for i in range(count)]
    assert all(r.json()["bodyLength"] == 2000 for r in responses)

def test_expect_100_continue(echo):
    p, _ = echo
    body = os.urandom(50_000)
    head = request_bytes("POST", "/expect", [("Content-Length", str(len(body))), ("Expect", "100-continue")])
    with RawHTTP(p.host, p.port, timeout=5) as conn:
        conn.send(head)
        interim = conn.read_response(stop_after_interim=True)
        assert interim.status == 100, f"expected 100 Continue before the body, got {interim.status}"
        conn.send(body)
        final = conn.read_response("POST")
    assert final.status == 200
    assert final.json()["bodyLength"] == len(body)
    assert final.json()["bodySha256"] == hashlib.sha256(body).hexdigest()


def test_expect_100_continue_with_curl(echo, tmp_path):
    p, _ = echo
    f = tmp_path / "b"
    f.write_bytes(os.urandom(100_000))
    # curl waits up to --expect100-timeout for the 100 before sending anyway;
    # a proxy that forwards or answers the expectation is much faster.
    r = curl(p.url("/expect"), "--http1.1", "-H", "Expect: 100-continue", "--expect100-timeout", "5",
             data_file=str(f))
    assert r.status == 200
    assert r.json()["bodyLength"] == 100_000
    assert float(r.info["time_total"]) < 4.0


def test_hop_by_hop_headers_removed(echo):
    p, _ = echo
    resp = one_request(p.host, p.port, request_bytes("GET", "/hop", [
        ("Connection", "keep-alive, X-Hop-Named"),
        ("X-Hop-Named", "should-go"),
        ("Keep-Alive", "timeout=5"),
        ("Proxy-Connection", "keep-alive"),
        ("TE", "gzip"),
        ("Upgrade", "example/1"),
        ("X-End-To-End", "stays"),
    ]))
    assert resp.status == 200
    seen = seen_headers(resp.json())
    for name in ("x-hop-named", "keep-alive", "proxy-connection", "te", "upgrade"):
        assert name not in seen, f"hop-by-hop header {name} reached the backend: {seen[name]}"
    assert "x-hop-named" not in " ".join(seen.get("connection", [])).lower()
    assert seen["x-end-to-end"] == ["stays"]


def test_te_trailers_is_kept(echo):
    p, _ = echo
    resp = one_request(p.host, p.port, request_bytes("GET", "/te", [("TE", "trailers")]))
    assert resp.status == 200
    assert seen_headers(resp.json()).get("te") == ["trailers"]


def test_x_forwarded_headers(echo):
    p, _ = echo
    r = curl(p.url("/xff"), "--http1.1")
    seen = seen_headers(r.json())
    assert seen["x-forwarded-for"] == ["127.0.0.1"]
    assert seen["x-forwarded-proto"] == ["http"]

    r = curl(p.url("/xff"), "--http1.1", "-H", "X-Forwarded-For: 192.0.2.7")
    seen = seen_headers(r.json())
    chain = [part.strip() for v in seen["x-forwarded-for"] for part in v.split(",")]
    assert chain == ["192.0.2.7", "127.0.0.1"]
    assert seen["x-forwarded-proto"] == ["http"]


def test_request_id_generated_and_echoed(echo):
    p, _ = echo
    ids = set()
    for _ in range(3):
        r = curl(p.url("/rid"), "--http1.1")
        seen = seen_headers(r.json())
        assert len(seen.get("x-request-id", [])) == 1
        rid = seen["x-request-id"][0]
        assert rid and r.header("x-request-id") == rid
        ids.add(rid)
    assert len(ids) == 3, "request ids must be unique"


def test_request_id_kept_when_present(echo):
    p, _ = echo
    r = curl(p.url("/rid"), "--http1.1", "-H", "X-Request-Id: client-chosen-123")
    assert seen_headers(r.json())["x-request-id"] == ["client-chosen-123"]
    assert r.header("x-request-id") == "client-chosen-123"


def test_route_header_add_and_remove(echo):
    p, _ = echo
    r = curl(p.url("/h"), "--http1.1", "-H", "X-Debug: 1", "-H", "X-Env: dev", "-H", "X-Other: o")
    seen = seen_headers(r.json())
    assert "x-debug" not in seen
    assert seen["x-env"] == ["prod"], "requestHeadersToAdd replaces a header of the same name"
    assert seen["x-other"] == ["o"]


def test_route_matching(mesh):
    backends = {n: mesh.http_backend(n) for n in ("exact", "prefix", "method", "header", "fallback")}
    cfg = single_listener(
        [
            route("exact", match={"path": "/exact"}),
            route("header", match={"pathPrefix": "/api/", "headers": [{"name": "x-canary", "exact": "1"}]}),
            route("method", match={"pathPrefix": "/api/", "methods": ["POST"]}),
            route("prefix", match={"pathPrefix": "/api/"}),
            route("fallback", match={"pathPrefix": "/static/"}),
        ],
        [cluster(n, [b]) for n, b in backends.items()])
    p = mesh.proxy(cfg)

    def who(path, *args):
        r = curl(p.url(path), "--http1.1", *args)
        return r.status, (r.json()["backend"] if r.status == 200 else r.header("swiftmesh-proxy-error"))

    assert who("/exact") == (200, "exact")
    assert who("/exact?q=1") == (200, "exact"), "path match ignores the query"
    assert who("/exact/more") == (404, "no_route")
    assert who("/api/x") == (200, "prefix")
    assert who("/api/x", "-X", "POST") == (200, "method")
    assert who("/api/x", "-H", "x-canary: 1") == (200, "header")
    assert who("/api/x", "-H", "x-canary: 2") == (200, "prefix")
    assert who("/static/a.css") == (200, "fallback")
    assert who("/nowhere") == (404, "no_route")


def assert_proxy_error(r, status: int, reason: str):
    assert r.status == status, f"expected {status} {reason}, got {r.status} {r.headers} {r.body[:300]!r}"
    assert r.header("swiftmesh-proxy-error") == reason
    assert r.header("x-request-id"), "proxy-made responses carry x-request-id"




def test_proxy_errors(mesh):
    live = mesh.http_backend("live")
    dead = mesh.unused_address()
    reset = mesh.reset_backend()
    cfg = single_listener(
        [
            route("live", match={"pathPrefix": "/timeout"}, timeout="500ms"),
            route("dead", match={"pathPrefix": "/dead"}),
            route("reset", match={"pathPrefix": "/reset"}),
            route("live", match={"pathPrefix": "/live"}),
        ],
        [cluster("live", [live]), cluster("dead", [dead], connectTimeout="1s"),
         cluster("reset", [reset])])
    p = mesh.proxy(cfg)

    assert_proxy_error(curl(p.url("/other"), "--http1.1"), 404, "no_route")
    assert_proxy_error(curl(p.url("/dead"), "--http1.1"), 502, "connect_failure")
    assert_proxy_error(curl(p.url("/reset"), "--http1.1"), 502, "upstream_reset")
    assert_proxy_error(curl(p.url("/live?close=1"), "--http1.1"), 502, "upstream_reset")
    started = time.monotonic()
    r = curl(p.url("/timeout?sleep=3"), "--http1.1")
    elapsed = time.monotonic() - started
    assert_proxy_error(r, 504, "timeout")
    assert elapsed < 2.5, f"route timeout 500ms answered after {elapsed:.2f}s"
    # and the proxy still serves
    assert curl(p.url("/live"), "--http1.1").status == 200


def test_proxy_error_on_keepalive_connection_keeps_serving(mesh):
    live = mesh.http_backend("live")
    cfg = single_listener([route("live", match={"pathPrefix": "/live"})], [cluster("live", [live])])
    p = mesh.proxy(cfg)
    with KeepAliveClient(p.host, p.port) as c:
        for _ in range(3):
            status, headers, _ = c.get("/nope")
            assert status == 404 and headers.get("swiftmesh-proxy-error") == "no_route"
            status, _, body = c.get("/live")
            assert status == 200
