"""TLS in the proxy: listeners that terminate it (HTTP/1.1 and HTTP/2 by
ALPN, client certificates, strict and permissive modes) and clusters that
originate it (SNI, verification, client certificates), against curl,
openssl s_client and a TLS backend."""
from __future__ import annotations

import json
import signal
import socket
import ssl
import subprocess

import pytest

from support.certs import Authority
from support.config import cluster, route, single_listener
from support.proxy import run_cli
from support.util import curl, wait_until

SPIFFE_GATEWAY = "spiffe://swiftmesh.local/service/gateway"


@pytest.fixture
def pki(tmp_path):
    """The authority the proxy trusts, one it does not, and their leaves."""
    mesh_ca = Authority(tmp_path / "pki", "mesh")
    other_ca = Authority(tmp_path / "pki", "other")
    return {
        "ca": mesh_ca,
        "other_ca": other_ca,
        "server": mesh_ca.issue("proxy", dns=("localhost",), ips=("127.0.0.1",)),
        "gateway": mesh_ca.issue("gateway", uris=(SPIFFE_GATEWAY,)),
        "expired": mesh_ca.issue("gateway-old", uris=(SPIFFE_GATEWAY,), expired=True),
        "stranger": other_ca.issue("gateway", uris=(SPIFFE_GATEWAY,)),
    }


def tls_listener(pki, backend, **tls_fields):
    tls = {"certificate": str(pki["server"].cert), "privateKey": str(pki["server"].key)}
    tls.update(tls_fields)
    config = single_listener([route("a")], [cluster("a", [backend])])
    config["listeners"][0]["tls"] = tls
    return config


def https(p, path="/"):
    host, port = p.listener()
    return f"https://{host}:{port}{path}"


def seen(body: dict) -> dict:
    out: dict = {}
    for k, v in body["headers"]:
        out.setdefault(k.lower(), []).append(v)
    return out


def test_listener_terminates_tls_for_http1_and_http2(mesh, pki):
    a = mesh.http_backend("a")
    p = mesh.proxy(tls_listener(pki, a))
    for version, expected in (("--http1.1", "1.1"), ("--http2", "2")):
        r = curl(https(p, "/x"), version, "--cacert", str(pki["ca"].cert))
        assert r.returncode == 0, r.stderr
        assert (r.status, r.info.get("http_version")) == (200, expected)
        h = seen(r.json())
        assert h["x-forwarded-proto"] == ["https"]
        assert "swiftmesh-client-identity" not in h, "no client certificate, no identity"


def test_strict_listener_refuses_plaintext_and_keeps_serving(mesh, pki):
    a = mesh.http_backend("a")
    p = mesh.proxy(tls_listener(pki, a))
    plain = curl(p.url("/"), "--http1.1", timeout=5)
    assert plain.returncode != 0 or plain.status == 0, "plaintext must not be served on a strict TLS port"
    r = curl(https(p), "--cacert", str(pki["ca"].cert))
    assert r.status == 200, r.stderr


def test_permissive_listener_serves_plaintext_and_tls(mesh, pki):
    a = mesh.http_backend("a")
    p = mesh.proxy(tls_listener(pki, a, mode="permissive"))
    plain = curl(p.url("/"), "--http2-prior-knowledge")
    assert (plain.status, plain.info.get("http_version")) == (200, "2")
    assert seen(plain.json())["x-forwarded-proto"] == ["http"]
    secure = curl(https(p), "--cacert", str(pki["ca"].cert))
    assert secure.status == 200, secure.stderr
    assert seen(secure.json())["x-forwarded-proto"] == ["https"]


def test_client_certificates_decide_who_gets_in(mesh, pki):
    a = mesh.http_backend("a")
    p = mesh.proxy(tls_listener(pki, a, clientCertificate="required", caCertificates=str(pki["ca"].cert)))
    ca = ("--cacert", str(pki["ca"].cert))

    def with_cert(issued, *extra):
        return curl(https(p), *ca, "--cert", str(issued.cert), "--key", str(issued.key), *extra, timeout=10)

    assert curl(https(p), *ca, timeout=10).status == 0, "no client certificate"
    assert with_cert(pki["stranger"]).status == 0, "a certificate from another authority"
    assert with_cert(pki["expired"]).status == 0, "an expired certificate"
    ok = with_cert(pki["gateway"], "-H", "swiftmesh-client-identity: spiffe://swiftmesh.local/service/admin")
    assert ok.status == 200, ok.stderr
    assert seen(ok.json())["swiftmesh-client-identity"] == [SPIFFE_GATEWAY], \
        "the identity is the certificate's, and a client's own header is removed"
    assert a.count == 1


def test_openssl_s_client_with_a_mesh_certificate(mesh, pki):
    a = mesh.http_backend("a")
    p = mesh.proxy(tls_listener(pki, a, clientCertificate="required", caCertificates=str(pki["ca"].cert)))
    host, port = p.listener()
    request = f"GET /s-client HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    out = subprocess.run(
        ["openssl", "s_client", "-connect", f"{host}:{port}", "-CAfile", str(pki["ca"].cert),
         "-cert", str(pki["gateway"].cert), "-key", str(pki["gateway"].key), "-alpn", "http/1.1",
         "-verify_return_error", "-quiet"],
        input=request.encode(), capture_output=True, timeout=20)
    assert b"HTTP/1.1 200" in out.stdout, out.stderr.decode(errors="replace")
    assert a.count_path("/s-client") == 1


def test_optional_client_certificate(mesh, pki):
    a = mesh.http_backend("a")
    p = mesh.proxy(tls_listener(pki, a, clientCertificate="optional", caCertificates=str(pki["ca"].cert)))
    ca = ("--cacert", str(pki["ca"].cert))
    anonymous = curl(https(p), *ca)
    assert anonymous.status == 200 and "swiftmesh-client-identity" not in seen(anonymous.json())
    known = curl(https(p), *ca, "--cert", str(pki["gateway"].cert), "--key", str(pki["gateway"].key))
    assert seen(known.json())["swiftmesh-client-identity"] == [SPIFFE_GATEWAY]
    assert curl(https(p), *ca, "--cert", str(pki["stranger"].cert), "--key", str(pki["stranger"].key),
                timeout=10).status == 0, "a certificate, when presented, must verify"


def test_reload_renews_the_listener_certificate_for_new_connections(mesh, pki, tmp_path):
    a = mesh.http_backend("a")
    cert, key = tmp_path / "live.pem", tmp_path / "live-key.pem"
    cert.write_bytes(pki["server"].cert.read_bytes())
    key.write_bytes(pki["server"].key.read_bytes())
    config = single_listener([route("a")], [cluster("a", [a])])
    config["listeners"][0]["tls"] = {"certificate": str(cert), "privateKey": str(key)}
    p = mesh.proxy(config)
    host, port = p.listener()
    context = ssl.create_default_context(cafile=str(pki["ca"].cert))

    def serial_seen() -> int:
        with socket.create_connection((host, port), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                der = tls.getpeercert(binary_form=True)
        from cryptography import x509
        return x509.load_der_x509_certificate(der).serial_number

    assert serial_seen() == pki["server"].serial
    # A connection opened before the renewal keeps working after it.
    raw = socket.create_connection((host, port), timeout=5)
    held = context.wrap_socket(raw, server_hostname="localhost")
    try:
        renewed = pki["ca"].issue("proxy", dns=("localhost",), ips=("127.0.0.1",), file_stem="renewed")
        cert.write_bytes(renewed.cert.read_bytes())
        key.write_bytes(renewed.key.read_bytes())
        p.signal(signal.SIGHUP)
        wait_until(lambda: serial_seen() == renewed.serial, timeout=10, message="new connections get the renewed certificate")
        held.sendall(f"GET /held HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := held.recv(65536):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    finally:
        held.close()


def test_cluster_originates_tls_with_sni_and_verification(mesh, pki):
    backend_cert = pki["ca"].issue("backend", dns=("backend.test",))
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(backend_cert.cert, backend_cert.key)
    server_context.set_alpn_protocols(["http/1.1"])
    b = mesh.http_backend("tls-backend", ssl_context=server_context)
    good = cluster("good", [b], tls={"sni": "backend.test", "caCertificates": str(pki["ca"].cert)})
    wrong_name = cluster("wrong-name", [b], tls={"sni": "other.test", "caCertificates": str(pki["ca"].cert)})
    untrusted = cluster("untrusted", [b], tls={"caCertificates": str(pki["other_ca"].cert)})
    p = mesh.proxy(single_listener(
        [route("good", match={"pathPrefix": "/good"}), route("wrong-name", match={"pathPrefix": "/wrong"}),
         route("untrusted", match={"pathPrefix": "/untrusted"})],
        [good, wrong_name, untrusted]))
    r = curl(p.url("/good"))
    assert r.status == 200, r.body[:300]
    assert r.json()["tls"]["sni"] == "backend.test"
    for path in ("/wrong", "/untrusted"):
        bad = curl(p.url(path))
        assert bad.status == 502, (path, bad.body[:300])
        assert bad.header("swiftmesh-proxy-error") == "connect_failure"
    assert b.count == 1


def test_cluster_presents_a_client_certificate(mesh, pki):
    backend_cert = pki["ca"].issue("backend", dns=("backend.test",))
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(backend_cert.cert, backend_cert.key)
    server_context.load_verify_locations(pki["ca"].cert)
    server_context.verify_mode = ssl.CERT_REQUIRED
    b = mesh.http_backend("mtls-backend", ssl_context=server_context)
    tls = {"sni": "backend.test", "caCertificates": str(pki["ca"].cert),
           "certificate": str(pki["gateway"].cert), "privateKey": str(pki["gateway"].key)}
    p = mesh.proxy(single_listener([route("b")], [cluster("b", [b], tls=tls)]))
    r = curl(p.url("/"))
    assert r.status == 200, r.body[:300]
    assert r.json()["tls"]["peerURIs"] == [SPIFFE_GATEWAY]


def test_tls_errors_name_the_field(mesh, pki, tmp_path):
    a = mesh.http_backend("a")
    config = tls_listener(pki, a)
    config["listeners"][0]["tls"]["certificate"] = str(tmp_path / "missing.pem")
    p = mesh.proxy(config, start=False)
    out = run_cli("validate", str(p.config_path))
    assert out.returncode == 1
    assert "listeners[0].tls.certificate: cannot read" in out.stderr, out.stderr
    config["listeners"][0]["tls"] = {"certificate": str(pki["server"].cert), "clientCertificate": "required"}
    p.write_config(config)
    out = run_cli("validate", str(p.config_path))
    assert out.returncode == 1
    assert "listeners[0].tls.privateKey: missing" in out.stderr or "listeners[0].tls: " in out.stderr, out.stderr
    assert "listeners[0].tls.caCertificates: is required when clientCertificate is required" in out.stderr, out.stderr


def test_config_endpoint_names_files_and_never_shows_keys(mesh, pki):
    a = mesh.http_backend("a")
    p = mesh.proxy(tls_listener(pki, a))
    status, _, body = p.admin_get("/config")
    assert status == 200
    text = body.decode()
    assert json.loads(text)["listeners"][0]["tls"]["privateKey"] == str(pki["server"].key)
    assert "PRIVATE KEY" not in text and "BEGIN" not in text


def test_a_client_cannot_claim_an_identity(mesh):
    """On a plaintext listener, a client's swiftmesh-client-identity is
    removed from the head and from trailers."""
    a = mesh.http_backend("a")
    p = mesh.proxy(single_listener([route("a")], [cluster("a", [a])]))
    forged = "spiffe://swiftmesh.local/service/admin"
    r = curl(p.url("/"), "-H", f"swiftmesh-client-identity: {forged}")
    assert r.status == 200
    assert "swiftmesh-client-identity" not in seen(r.json())
    host, port = p.listener()
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall((f"POST /trailers HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n"
                   "Trailer: swiftmesh-client-identity\r\nConnection: close\r\n\r\n"
                   f"2\r\nhi\r\n0\r\nswiftmesh-client-identity: {forged}\r\n\r\n").encode())
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert forged.encode() not in answer, "the backend echoes what it received; the forged identity must not be there"


def test_tcp_health_check_of_a_tls_endpoint_needs_a_good_handshake(mesh, pki):
    backend_cert = pki["other_ca"].issue("backend", dns=("backend.test",))
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(backend_cert.cert, backend_cert.key)
    b = mesh.http_backend("untrusted-backend", ssl_context=server_context)
    c = cluster("b", [b], tls={"caCertificates": str(pki["ca"].cert)},
                healthCheck={"interval": "100ms", "timeout": "1s", "unhealthyThreshold": 1, "tcp": {}})
    p = mesh.proxy(single_listener([route("b")], [c]))

    def health():
        clusters = p.admin_json("/clusters")["clusters"]
        return next(c for c in clusters if c["name"] == "b")["endpoints"][0]["health"]

    wait_until(lambda: health() == "unhealthy", timeout=10, message="the endpoint with an untrusted certificate fails its TCP probe")


def test_cluster_checks_the_endpoint_identity(mesh, pki):
    user = pki["ca"].issue("user", uris=("spiffe://swiftmesh.local/service/user",))
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(user.cert, user.key)
    b = mesh.http_backend("user", ssl_context=server_context)
    ca = str(pki["ca"].cert)
    right = cluster("right", [b], tls={"caCertificates": ca, "identities": ["spiffe://swiftmesh.local/service/user"]})
    wrong = cluster("wrong", [b], tls={"caCertificates": ca, "identities": ["spiffe://swiftmesh.local/service/alive"]})
    p = mesh.proxy(single_listener(
        [route("right", match={"pathPrefix": "/right"}), route("wrong", match={"pathPrefix": "/wrong"})], [right, wrong]))
    assert curl(p.url("/right")).status == 200
    r = curl(p.url("/wrong"))
    assert (r.status, r.header("swiftmesh-proxy-error")) == (502, "connect_failure")
    assert b.count_path("/wrong") == 0, "no request goes to an endpoint with the wrong identity"
