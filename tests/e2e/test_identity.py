"""The control plane as the mesh's certificate authority, and the tokens
that guard it: the root made on first start (key mode 0600) or given as
files, the admin token the mutating HTTP API asks for, join tokens from
`swiftmesh token create`, certificates issued over gRPC (a grpcio client)
only for the service a token grants, and --dev."""
from __future__ import annotations

import datetime
import stat

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from support.certs import Authority
from support.identity_client import csr_for, issue_certificate

POLICY = """apiVersion: swiftmesh.dev/v1alpha1
kind: ServicePolicy
metadata: { name: user }
spec: { service: user, loadBalancing: random }
"""


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def key_file_of(authority: Authority, file_mode: int):
    """The authority's key as a PEM file with `file_mode`."""
    path = authority.dir / f"{authority.name}-ca-key.pem"
    path.write_bytes(authority.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
    path.chmod(file_mode)
    return path


def root_of(cp) -> x509.Certificate:
    status, body = cp.api("GET", "/api/v1/ca", admin=False)
    assert status == 200, body
    assert "PRIVATE KEY" not in body["rootCertificate"]
    return x509.load_pem_x509_certificate(body["rootCertificate"].encode())


def test_first_start_makes_a_root_and_an_admin_token(mesh):
    cp = mesh.control_plane()
    key_file = cp.data_dir / "ca" / "root-key.pem"
    assert mode(key_file) == 0o600
    assert mode(cp.admin_token_file) == 0o600
    root = root_of(cp)
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(root.public_key(), ec.EllipticCurvePublicKey) and root.public_key().curve.name == "secp256r1"
    uris = root.extensions.get_extension_for_class(x509.SubjectAlternativeName).value \
        .get_values_for_type(x509.UniformResourceIdentifier)
    assert uris == ["spiffe://swiftmesh.local"]
    token = cp.admin_token
    cp.stop()
    cp.start()
    assert root_of(cp) == root, "a restart keeps the root"
    assert cp.admin_token == token, "and the admin token"
    assert "PRIVATE KEY" not in cp.stderr_text() and token not in cp.stderr_text()


def test_changes_need_the_admin_token(mesh):
    cp = mesh.control_plane()
    status, body = cp.api("POST", "/api/v1/resources", POLICY, admin=False)
    assert status == 401 and "admin token" in body["error"], body
    status, _ = cp.api("GET", "/api/v1/resources", admin=False)
    assert status == 200, "reading needs no token"
    refused = cp.cli("apply", "-f", "-", input_text=POLICY, admin=False)
    assert refused.returncode == 1 and "admin token" in refused.stderr, refused.stderr
    applied = cp.cli("apply", "-f", "-", input_text=POLICY)
    assert applied.returncode == 0, applied.stderr


def test_join_tokens_are_shown_once_and_never_kept(mesh):
    cp = mesh.control_plane()
    made = cp.cli("token", "create", "--service", "user", "--ttl", "2h")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("smj_") and "service user" in made.stderr
    assert cp.cli("token", "create", "--service", "user", admin=False).returncode == 1
    for path in cp.data_dir.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), f"{path} holds the token"
    assert token not in cp.stderr_text()


def test_dev_mode_asks_for_nothing_and_says_so(mesh):
    cp = mesh.control_plane(extra_args=("--dev",))
    assert not cp.admin_token_file.exists()
    status, body = cp.api("POST", "/api/v1/resources", POLICY)
    assert status == 200, body
    assert "DEVELOPMENT MODE" in cp.stderr_text()


def test_a_given_root_and_trust_domain(mesh, tmp_path):
    given = Authority(tmp_path / "given", "corp")
    key_file = key_file_of(given, 0o600)
    cp = mesh.control_plane(extra_args=("--ca-cert", str(given.cert), "--ca-key", str(key_file),
                                        "--trust-domain", "corp.example"))
    assert root_of(cp) == given.certificate
    assert not (cp.data_dir / "ca").exists(), "a given root is used where it is"


def test_a_key_others_can_read_is_refused(mesh, tmp_path):
    given = Authority(tmp_path / "given", "corp")
    key_file = key_file_of(given, 0o644)
    cp = mesh.control_plane(start=False, extra_args=("--ca-cert", str(given.cert), "--ca-key", str(key_file)))
    cp.launch()
    assert cp.wait_exit(20) == 1
    assert "chmod 600" in cp.stderr_text()


def test_a_sidecar_gets_its_service_certificate_with_a_join_token(mesh):
    cp = mesh.control_plane()
    token = cp.cli("token", "create", "--service", "user").stdout.strip()
    key, csr = csr_for("admin")
    answer = issue_certificate(cp, "user", csr, token)
    assert answer["identity"] == "spiffe://swiftmesh.local/service/user"
    cert = x509.load_pem_x509_certificate(answer["certificate_pem"].encode())
    root = root_of(cp)
    assert x509.load_pem_x509_certificate(answer["trust_bundle_pem"].encode()) == root
    root.public_key().verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
    assert cert.public_key().public_numbers() == key.public_key().public_numbers(), "over the sidecar's own key"
    uris = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value \
        .get_values_for_type(x509.UniformResourceIdentifier)
    assert uris == ["spiffe://swiftmesh.local/service/user"], "the name is the token's service, not the CSR's"
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    lifetime = cert.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc)
    # Certificate times have whole seconds: the end may round up by one.
    assert datetime.timedelta(hours=23, minutes=58) < lifetime <= datetime.timedelta(hours=24, seconds=1)
    assert answer["not_after_unix_ms"] == int(cert.not_valid_after_utc.timestamp() * 1000)
    log = cp.stderr_text()
    assert "certificate issued" in log and token not in log


def test_a_token_for_one_service_gets_no_certificate_for_another(mesh):
    cp = mesh.control_plane()
    token = cp.cli("token", "create", "--service", "user").stdout.strip()
    _, csr = csr_for()
    for service, presented in (("alive", token), ("user", ""), ("user", "smj_made-up")):
        with pytest.raises(grpc.RpcError) as refused:
            issue_certificate(cp, service, csr, presented)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, (service, refused.value.details())
    with pytest.raises(grpc.RpcError) as bad:
        issue_certificate(cp, "user", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", token)
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "join token for another service" in cp.stderr_text()
    assert token not in cp.stderr_text()


def test_dev_mode_issues_without_a_token_and_lifetimes_follow_the_flag(mesh):
    cp = mesh.control_plane(extra_args=("--dev", "--certificate-lifetime", "2m"))
    _, csr = csr_for()
    answer = issue_certificate(cp, "gateway", csr)
    cert = x509.load_pem_x509_certificate(answer["certificate_pem"].encode())
    lifetime = cert.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc)
    assert datetime.timedelta(seconds=100) < lifetime <= datetime.timedelta(minutes=2, seconds=1)
