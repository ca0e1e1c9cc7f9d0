"""A client of the control plane's Identity service
(proto/swiftmesh/v1/identity.proto) over grpcio. Its two messages are small
enough to encode by hand, so the tests need no generated code."""
from __future__ import annotations

from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

METHOD = "/swiftmesh.v1.Identity/IssueCertificate"


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _string_field(number: int, text: str) -> bytes:
    data = text.encode()
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def encode_request(service: str, csr_pem: str, join_token: str) -> bytes:
    return _string_field(1, service) + _string_field(2, csr_pem) + _string_field(3, join_token)


def decode_response(data: bytes) -> dict:
    names = {1: "certificate_pem", 2: "trust_bundle_pem", 3: "identity", 4: "not_after_unix_ms"}
    out: dict = {}
    i = 0

    def varint() -> int:
        nonlocal i
        value, shift = 0, 0
        while True:
            byte = data[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    while i < len(data):
        key = varint()
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value: object = varint()
        elif wire_type == 2:
            length = varint()
            value = data[i:i + length].decode()
            i += length
        else:
            raise ValueError(f"unexpected wire type {wire_type}")
        if number in names:
            out[names[number]] = value
    return out


# The name the control plane's serving certificate carries, whatever its address.
SERVER_NAME = "control-plane.swiftmesh"


def secure_channel(control_plane) -> grpc.Channel:
    """A channel to the control plane's sidecar API over TLS, verified
    against the mesh's root, as a sidecar's."""
    credentials = grpc.ssl_channel_credentials(root_certificates=control_plane.root_file.read_bytes())
    return grpc.secure_channel(control_plane.address, credentials, options=[("grpc.ssl_target_name_override", SERVER_NAME)])


def issue_certificate(control_plane, service: str, csr_pem: str, join_token: str = "", timeout: float = 10.0) -> dict:
    """The response as a dict; raises grpc.RpcError when refused."""
    with secure_channel(control_plane) as channel:
        call = channel.unary_unary(METHOD)
        return decode_response(call(encode_request(service, csr_pem, join_token), timeout=timeout))


def csr_for(common_name: str = "anything") -> tuple[ec.EllipticCurvePrivateKey, str]:
    """A P-256 key and a certificate signing request over it, PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    request = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])).sign(key, hashes.SHA256())
    return key, request.public_bytes(serialization.Encoding.PEM).decode()


def mesh_certificate_files(control_plane, service: str, join_token: str, directory: Path) -> dict[str, Path]:
    """A certificate for `service` from `control_plane`, as
    a sidecar of that service gets it, written to files for curl and
    openssl: {"cert", "key", "root"}."""
    key, csr = csr_for(service)
    answer = issue_certificate(control_plane, service, csr, join_token)
    directory.mkdir(parents=True, exist_ok=True)
    files = {name: directory / f"{service}-{name}.pem" for name in ("cert", "key", "root")}
    files["cert"].write_text(answer["certificate_pem"])
    files["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    files["root"].write_text(answer["trust_bundle_pem"])
    return files
