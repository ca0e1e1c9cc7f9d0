"""Mutual TLS between sidecars, with no certificate handed out by hand: each
sidecar makes its own key and gets its service's certificate from the
control plane with its join token; its inbound listener takes mutual TLS 1.3
from the mesh only (strict, the default) or plaintext too (permissive);
callers check that an instance proves its service's identity; certificates
renew under load without losing a request. Peers: curl, openssl s_client,
h2load."""
from __future__ import annotations

import json
import re
import subprocess

from support.certs import Authority
from support.identity_client import mesh_certificate_files
from support.proxy import metric_sum
from support.util import curl, wait_until

HEARTBEAT = "200ms"
GATEWAY_ID = "spiffe://swiftmesh.local/service/gateway"
USER_ID = "spiffe://swiftmesh.local/service/user"


def user_instance(mesh, control_plane, name: str = "user-1", **kwargs):
    backend = mesh.http_backend(name)
    return backend, mesh.sidecar(f"{name}-sidecar", control_plane, "user", backend, **kwargs)


def gateway(mesh, control_plane, **kwargs):
    """The caller's sidecar; the test is its app."""
    return mesh.sidecar("gateway-sidecar", control_plane, "gateway", mesh.unused_address(),
                        upstreams=("user",), app_protocol="http1", **kwargs)


def headers_seen(response) -> dict[str, str]:
    return {name: value for name, value in response.json()["headers"]}


def s_client(address: str, *args: str, request: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", "s_client", "-connect", address, *args], input=request,
                          capture_output=True, timeout=20)


def http_over_tls(address: str, files: dict, *extra: str) -> subprocess.CompletedProcess:
    """One HTTP/1.1 request through openssl s_client presenting `files`
    (no host name check: a mesh certificate names a SPIFFE ID, not a host)."""
    request = f"GET /direct HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n".encode()
    return s_client(address, "-CAfile", str(files["root"]), "-cert", str(files["cert"]), "-key", str(files["key"]),
                    "-alpn", "http/1.1", "-verify_return_error", "-quiet", *extra, request=request)


def test_sidecars_call_each_other_in_mutual_tls_and_the_app_learns_the_caller(mesh):
    cp = mesh.control_plane(heartbeat=HEARTBEAT)
    _, user = user_instance(mesh, cp)
    gw = gateway(mesh, cp)
    wait_until(lambda: gw.endpoints("user") == [user.inbound], timeout=5, message="the gateway to know user")
    r = curl(f"http://127.0.0.1:{gw.upstream_port('user')}/who", "-H", f"swiftmesh-client-identity: {USER_ID}")
    assert r.status == 200, r.stderr
    assert headers_seen(r)["swiftmesh-client-identity"] == GATEWAY_ID, "set from the verified certificate, never the app's"
    cluster = next(c for c in gw.admin_json("/config")["clusters"] if c["name"] == "user")
    assert cluster["tls"]["identities"] == [USER_ID] and cluster["tls"]["minimumVersion"] == "1.3"
    assert cluster["tls"]["privateKey"] == "(in memory)"
    # The key never leaves the sidecar: not in its config, its log, or the control plane's state.
    for text in (json.dumps(gw.admin_json("/config")), gw.stderr_text(), user.stderr_text()):
        assert "PRIVATE KEY" not in text
    assert "certificate received" in user.stderr_text() and USER_ID in user.stderr_text()
    # Each end counts the call its way: outbound to the user service at the
    # gateway, inbound at the user instance, over one verified TLS connection.
    outbound = gw.metrics()
    assert metric_sum(outbound, "swiftmesh_requests_total", direction="outbound", destination_service="user",
                      status_class="2xx") == 1
    assert metric_sum(outbound, "swiftmesh_upstream_connections_total", cluster="user", result="success") >= 1
    assert metric_sum(outbound, "swiftmesh_upstream_tls_handshakes_total", cluster="user", result="success") >= 1
    assert metric_sum(outbound, "swiftmesh_upstream_tls_handshakes_total", cluster="user", result="failure") == 0
    inbound = user.metrics()
    assert metric_sum(inbound, "swiftmesh_requests_total", direction="inbound", destination_service="user",
                      status_class="2xx") == 1
    assert metric_sum(inbound, "swiftmesh_downstream_tls_handshakes_total", result="success") >= 1


def test_a_strict_inbound_listener_takes_only_certificates_of_the_mesh(mesh, tmp_path):
    cp = mesh.control_plane(heartbeat=HEARTBEAT)
    backend, user = user_instance(mesh, cp)
    plain = curl(f"http://{user.inbound}/plaintext", "--http1.1", timeout=5)
    assert plain.returncode != 0 or plain.status == 0, "plaintext must not reach the app"
    mesh_files = mesh_certificate_files(cp, "gateway", cp.join_token("gateway"), tmp_path / "mesh")
    # A mesh certificate: TLS 1.3, h2 offered, and the app sees the caller.
    handshake = s_client(user.inbound, "-CAfile", str(mesh_files["root"]), "-cert", str(mesh_files["cert"]),
                         "-key", str(mesh_files["key"]), "-alpn", "h2")
    summary = handshake.stdout.decode(errors="replace")
    assert "New, TLSv1.3" in summary and "ALPN protocol: h2" in summary, summary
    ok = http_over_tls(user.inbound, mesh_files)
    assert b"HTTP/1.1 200" in ok.stdout, ok.stderr.decode(errors="replace")
    assert f'"swiftmesh-client-identity", "{GATEWAY_ID}"' in ok.stdout.decode()
    # TLS 1.2 is refused between sidecars.
    old = http_over_tls(user.inbound, mesh_files, "-tls1_2")
    assert b"HTTP/1.1 200" not in old.stdout
    # No certificate, another authority's, an expired one of the mesh: refused.
    no_cert = s_client(user.inbound, "-CAfile", str(mesh_files["root"]), "-alpn", "http/1.1", "-quiet",
                       request=b"GET /no-certificate HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert b"HTTP/1.1 200" not in no_cert.stdout
    other = Authority(tmp_path / "other", "other").issue("gateway", uris=(GATEWAY_ID,))
    refused = http_over_tls(user.inbound, {"root": mesh_files["root"], "cert": other.cert, "key": other.key})
    assert b"HTTP/1.1 200" not in refused.stdout
    mesh_root = Authority.from_files(tmp_path / "expired", "mesh", cp.data_dir / "ca" / "root.pem",
                                     cp.data_dir / "ca" / "root-key.pem")
    expired = mesh_root.issue("gateway", uris=(GATEWAY_ID,), expired=True)
    refused = http_over_tls(user.inbound, {"root": mesh_files["root"], "cert": expired.cert, "key": expired.key})
    assert b"HTTP/1.1 200" not in refused.stdout
    assert backend.count_path("/direct") == 1, "only the mesh certificate got through"
    assert backend.count_path("/plaintext") == backend.count_path("/no-certificate") == 0
    assert user.alive
    # The TLS 1.2 attempt, the other authority's and the expired certificate
    # at least; whether a missing certificate fails the handshake or the first read is TLS 1.3's choice.
    samples = user.metrics()
    assert metric_sum(samples, "swiftmesh_downstream_tls_handshakes_total", result="failure") >= 3
    assert metric_sum(samples, "swiftmesh_downstream_tls_handshakes_total", result="success") >= 2


def test_a_permissive_inbound_listener_takes_plaintext_too(mesh, tmp_path):
    cp = mesh.control_plane(heartbeat=HEARTBEAT)
    backend, user = user_instance(mesh, cp, extra_args=("--inbound-tls", "permissive"))
    plain = curl(f"http://{user.inbound}/plain", "--http1.1")
    assert plain.status == 200 and "swiftmesh-client-identity" not in headers_seen(plain)
    mesh_files = mesh_certificate_files(cp, "gateway", cp.join_token("gateway"), tmp_path / "mesh")
    secure = http_over_tls(user.inbound, mesh_files)
    assert b"HTTP/1.1 200" in secure.stdout and GATEWAY_ID.encode() in secure.stdout


def test_a_sidecar_without_a_valid_join_token_gets_no_certificate_and_no_traffic(mesh):
    cp = mesh.control_plane(heartbeat=HEARTBEAT)
    unnamed = mesh.sidecar("user-1-sidecar", cp, "user", mesh.http_backend("user-1"), token="", wait_ready=False)
    wrong = mesh.sidecar("user-2-sidecar", cp, "user", mesh.http_backend("user-2"), token=cp.join_token("alive"),
                         wait_ready=False)
    for sidecar, reason in ((unnamed, b"pass --token or set SWIFTMESH_TOKEN"), (wrong, b"for service alive, not user")):
        wait_until(lambda: reason in sidecar.admin_get("/ready")[2], timeout=10,
                   message=f"{sidecar.name} to say why it has no certificate")
        assert sidecar.admin_get("/ready")[0] == 503
    status, body = cp.api("GET", "/api/v1/services/user/instances")
    assert status == 404 or body.get("instances") == [], "no certificate, no registration"


def test_a_development_control_plane_issues_certificates_without_tokens(mesh):
    cp = mesh.control_plane(heartbeat=HEARTBEAT, extra_args=("--dev",))
    _, user = user_instance(mesh, cp)
    gw = gateway(mesh, cp)
    wait_until(lambda: gw.endpoints("user") == [user.inbound], timeout=5, message="the gateway to know user")
    r = curl(f"http://127.0.0.1:{gw.upstream_port('user')}/dev")
    assert r.status == 200 and headers_seen(r)["swiftmesh-client-identity"] == GATEWAY_ID


def test_certificates_renew_under_load_without_losing_a_request(mesh):
    cp = mesh.control_plane(heartbeat=HEARTBEAT, extra_args=("--certificate-lifetime", "10s"))
    sidecars = [user_instance(mesh, cp, f"user-{i}")[1] for i in (1, 2)]
    gw = gateway(mesh, cp)
    wait_until(lambda: gw.endpoints("user") == sorted(s.inbound for s in sidecars), timeout=5,
               message="the gateway to know both instances")
    # 10s certificates renew every ~6.7s: 16s of load crosses at least two renewals of every sidecar.
    load = subprocess.run(["h2load", "-D", "16", "-c", "4", "-m", "4", "--h1",
                           f"http://127.0.0.1:{gw.upstream_port('user')}/load"],
                          capture_output=True, text=True, timeout=60)
    assert load.returncode == 0, load.stderr
    done = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored",
                     load.stdout)
    assert done, load.stdout
    total, _, finished, succeeded, failed, errored = map(int, done.groups())
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", load.stdout)
    assert failed == 0 and errored == 0 and codes and int(codes.group(1)) == succeeded == finished > 0, load.stdout
    for sidecar in sidecars + [gw]:
        received = sidecar.stderr_text().count("certificate received")
        assert received >= 3, f"{sidecar.name} renewed {received - 1} times"


def test_a_sidecar_talks_only_to_a_control_plane_that_proves_itself(mesh, tmp_path):
    """The sidecar API runs TLS: a sidecar given another root sends nothing,
    not its join token, to a control plane it cannot verify."""
    cp = mesh.control_plane(heartbeat=HEARTBEAT)
    stranger = Authority(tmp_path / "other", "other")
    sidecar = mesh.sidecar("user-1-sidecar", cp, "user", mesh.http_backend("user-1"), control_plane_ca=stranger.cert,
                           wait_ready=False)
    wait_until(lambda: b"no certificate from the control plane" in sidecar.admin_get("/ready")[2], timeout=10,
               message="the sidecar to give up on an unverified control plane")
    assert "certificate issued" not in cp.stderr_text() and "sidecar subscribed" not in cp.stderr_text()
    plain = subprocess.run(["curl", "-sS", "--max-time", "5", "--http2-prior-knowledge", f"http://{cp.address}/"],
                           capture_output=True)
    assert plain.returncode != 0, "the sidecar API takes no plaintext"
