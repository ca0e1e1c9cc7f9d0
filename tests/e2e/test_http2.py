"""HTTP/2 cleartext (prior knowledge) on the same listener port as HTTP/1.1,
and protocol translation both ways: h2c clients to HTTP/1.1 clusters, HTTP/1.1
clients to HTTP/2 clusters (nginx speaking h2c)."""
from __future__ import annotations

import hashlib
import os
import re
import subprocess

import pytest

from support.config import cluster, route, single_listener
from support.http_backend import pattern
from support.refusing_h2_endpoint import RefusingH2Endpoint
from support.util import curl

H2 = "--http2-prior-knowledge"


@pytest.fixture
def h1_cluster(mesh):
    a = mesh.http_backend("a")
    p = mesh.proxy(single_listener([route("a", match={"pathPrefix": "/"})], [cluster("a", [a])]))
    return p, a


def seen(body: dict) -> dict:
    out: dict = {}
    for k, v in body["headers"]:
        out.setdefault(k.lower(), []).append(v)
    return out


def test_h2c_client_to_http1_cluster(h1_cluster):
    p, a = h1_cluster
    r = curl(p.url("/h2/get?x=1"), H2, "-H", "x-custom: yes")
    assert r.returncode == 0, r.stderr
    assert r.info.get("http_version") == "2"
    assert r.status == 200
    body = r.json()
    assert body["backend"] == "a"
    assert body["httpVersion"] == "HTTP/1.1"
    assert body["method"] == "GET"
    assert body["path"] == "/h2/get?x=1"
    h = seen(body)
    assert h["x-custom"] == ["yes"]
    assert h["x-forwarded-proto"] == ["http"]
    assert h["x-forwarded-for"] == ["127.0.0.1"]
    assert h["x-request-id"] == [r.header("x-request-id")]
    assert "host" in h, "an HTTP/1.1 upstream request needs Host (from :authority)"


def test_same_port_speaks_both(h1_cluster):
    p, _ = h1_cluster
    for _ in range(2):
        r1 = curl(p.url("/one"), "--http1.1")
        r2 = curl(p.url("/two"), H2)
        assert (r1.status, r1.info.get("http_version")) == (200, "1.1")
        assert (r2.status, r2.info.get("http_version")) == (200, "2")


def test_h2c_post_body(h1_cluster, tmp_path):
    p, _ = h1_cluster
    data = os.urandom(1024 * 1024 + 5)
    f = tmp_path / "b"
    f.write_bytes(data)
    r = curl(p.url("/h2/post"), H2, data_file=str(f))
    assert r.status == 200, r.stderr
    body = r.json()
    assert body["method"] == "POST"
    assert body["bodyLength"] == len(data)
    assert body["bodySha256"] == hashlib.sha256(data).hexdigest()


def test_h2c_large_response(h1_cluster):
    p, _ = h1_cluster
    size = 8 * 1024 * 1024 + 11
    r = curl(p.url(f"/h2/big?size={size}"), H2)
    assert r.status == 200, r.stderr
    assert len(r.body) == size and r.body == pattern(size)


def test_h2c_streaming_response(h1_cluster):
    p, _ = h1_cluster
    r = curl(p.url("/s?chunks=8&chunk_size=2000&chunk_delay=0.15"), H2)
    assert r.status == 200
    assert len(r.body) == 16_000
    assert float(r.info["time_total"]) - float(r.info["time_starttransfer"]) > 0.6, "response was buffered"


def test_h2c_no_route(mesh):
    a = mesh.http_backend("a")
    p = mesh.proxy(single_listener([route("a", match={"pathPrefix": "/only/"})], [cluster("a", [a])]))
    r = curl(p.url("/elsewhere"), H2)
    assert r.status == 404
    assert r.header("swiftmesh-proxy-error") == "no_route"
    assert r.header("x-request-id")
    assert curl(p.url("/only/x"), H2).status == 200


def test_h2load_multiplexed_requests_spread_over_endpoints(mesh):
    backends = [mesh.http_backend(n) for n in ("a", "b", "c")]
    p = mesh.proxy(single_listener([route("abc")], [cluster("abc", backends)]))
    n = 600
    proc = subprocess.run(["h2load", "-n", str(n), "-c", "1", "-m", "20", "-T", "30", p.url("/h2load")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed", proc.stdout)
    assert m, proc.stdout
    assert int(m.group(4)) == n and int(m.group(5)) == 0, proc.stdout
    assert re.search(rf"status codes: {n} 2xx", proc.stdout), proc.stdout
    counts = [b.count for b in backends]
    assert sum(counts) == n
    for b in backends:
        assert b.count >= n * 0.25, f"one h2 connection must be balanced per request: {counts}"


def test_http1_optional_whitespace_is_not_forwarded_to_h2(h1_cluster):
    """`X-Padded: padded   ` from an HTTP/1.1 upstream: the trailing spaces are
    optional whitespace, not value; an HTTP/2 client must get `padded` (strict
    HTTP/2 peers reset streams whose field values end in whitespace)."""
    p, _ = h1_cluster
    proc = subprocess.run(["nghttp", "-v", "-t", "10", p.url("/ows?pad_header=1")],
                          capture_output=True, text=True, timeout=30)
    relevant = "\n".join(l for l in proc.stdout.splitlines() if "x-padded" in l or "ERROR" in l)
    assert "Invalid HTTP header field" not in proc.stdout, relevant
    assert re.search(r"recv \(stream_id=\d+\) x-padded: padded$", proc.stdout, re.M), relevant
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture
def h2_cluster(mesh):
    ng = mesh.nginx_h2c("ngx")
    p = mesh.proxy(single_listener([route("ngx")], [cluster("ngx", [ng.address], protocol="http2")]))
    return p, ng


def test_endpoint_recycling_its_connection_fails_no_request(mesh):
    """nginx sends GOAWAY after every 50 requests on a connection; the streams
    the proxy had in flight above the GOAWAY's last stream were never
    processed, so the proxy sends them again on a new connection. The client
    sees every request succeed."""
    ng = mesh.nginx_h2c("recycling", keepalive_requests=50)
    p = mesh.proxy(single_listener([route("ngx")], [cluster("ngx", [ng.address], protocol="http2")]))
    n = 2000
    proc = subprocess.run(["h2load", "-n", str(n), "-c", "4", "-m", "25", "-T", "30", p.url("/recycle")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(rf"requests: {n} total, {n} started, {n} done, {n} succeeded, 0 failed", proc.stdout), proc.stdout
    assert re.search(rf"status codes: {n} 2xx", proc.stdout), proc.stdout


def test_a_stream_the_endpoint_refuses_is_sent_again_on_the_same_connection(mesh):
    """An endpoint that refuses a stream (REFUSED_STREAM) never processed
    it: a request without a body goes again at once, with no retry policy,
    on the same connection when it has room (the stream table is reached
    again from within the refused stream's callback)."""
    endpoint = RefusingH2Endpoint(refusals=2).start()
    mesh.stack.callback(endpoint.stop)
    p = mesh.proxy(single_listener([route("h2")], [cluster("h2", [endpoint], protocol="http2")]))
    for path in ("/first", "/second"):
        r = curl(p.url(path), "--http1.1")
        assert r.returncode == 0 and r.status == 200 and r.body == b"ok", (r.status, r.stderr, p.stderr_tail())
    assert endpoint.streams[:3] == [(1, 1, "refused"), (1, 3, "refused"), (1, 5, "answered")]
    # The second client connection may land on another event loop, whose pool has its own connection.
    assert [outcome for _, _, outcome in endpoint.streams[3:]] == ["answered"]


def test_http1_client_to_http2_cluster(h2_cluster):
    p, _ = h2_cluster
    r = curl(p.url("/to-h2?q=1"), "--http1.1")
    assert r.returncode == 0, r.stderr
    assert r.info.get("http_version") == "1.1"
    assert r.status == 200
    assert r.body == b"nginx ngx\n"
    assert r.header("x-upstream-proto") == "HTTP/2.0"
    assert r.header("x-seen-method") == "GET"
    assert r.header("x-seen-uri") == "/to-h2?q=1"
    assert r.header("x-seen-xfp") == "http"
    assert r.header("x-seen-xff") == "127.0.0.1"
    assert r.header("x-seen-request-id") == r.header("x-request-id")


def test_http1_client_to_http2_cluster_keepalive(h2_cluster):
    p, _ = h2_cluster
    proc = subprocess.run(
        ["curl", "-sS", "--http1.1", "--max-time", "20"] + ["-o", "/dev/null"] * 5
        + ["-w", "%{http_code}\n"] + [p.url(f"/k{i}") for i in range(5)],
        capture_output=True, text=True, timeout=30)
    assert proc.stdout.split() == ["200"] * 5, proc.stdout + proc.stderr


def test_http1_post_to_http2_cluster(h2_cluster, tmp_path):
    p, _ = h2_cluster
    f = tmp_path / "b"
    f.write_bytes(os.urandom(100_000))
    r = curl(p.url("/post"), "--http1.1", data_file=str(f))
    assert r.status == 200, r.stderr
    assert r.header("x-seen-method") == "POST"
    assert r.header("x-upstream-proto") == "HTTP/2.0"


def test_h2c_client_to_http2_cluster(h2_cluster):
    p, _ = h2_cluster
    r = curl(p.url("/h2-to-h2"), H2)
    assert (r.status, r.info.get("http_version")) == (200, "2")
    assert r.body == b"nginx ngx\n"
    assert r.header("x-upstream-proto") == "HTTP/2.0"
    assert r.header("x-seen-uri") == "/h2-to-h2"
