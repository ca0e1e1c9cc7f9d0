#!/usr/bin/env python3
"""The mutual-TLS hop between two sidecars, measured: what encryption costs a
request, against the same hop in plaintext and against HAProxy doing the same.

Four setups, each two proxies in a row with one event-loop thread each, in
front of the anchors' nginx h2c backend; h2load speaks h2c to the first proxy
(as an app speaks to its sidecar), the first proxy speaks HTTP/2 to the
second (as sidecars do), the second h2c to the backend:

  swiftmesh-plain   A -> h2c -> B
  swiftmesh-mtls    A -> h2 over mutual TLS 1.3 (identity checked) -> B
  haproxy-plain     A -> h2c -> B
  haproxy-mtls      A -> h2 over mutual TLS 1.3 (verify required both ways) -> B

Each round measures every setup once (rotating the order); the report takes
medians. This is a benchmark, not a test. It prints a table and, with
--write-docs, rewrites the mTLS section of docs/benchmarks.md.

Usage: bench/mtls_hop.py [--rounds 3] [--duration 10] [--write-docs]
       [--binary .build/release/swiftmesh]
It starts the anchors (../shared/bench/anchors.sh) unless they run, and
stops what it started.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.util
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ANCHORS = Path(os.environ.get("ANCHORS", REPO.parent / "shared/bench/anchors.sh"))
BACKEND_H2 = 18081
H2_CLIENTS, H2_STREAMS = 10, 10
TRUST_DOMAIN = "swiftmesh.local"


def ensure_tools() -> None:
    missing = [p for p, tool in (("haproxy", "haproxy"), ("nghttp2-client", "h2load"), ("curl", "curl"))
               if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode != 0]
    if missing:
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True)
    if importlib.util.find_spec("cryptography") is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "cryptography"], check=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{process.args[0]} exited with {process.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port} after {timeout}s")


def make_certificates(directory: Path) -> dict[str, Path]:
    """A root and a leaf for each side (P-256, as the mesh's), with the
    SPIFFE ID and a DNS name (HAProxy checks DNS names)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench root")])
    root = (x509.CertificateBuilder().subject_name(root_name).issuer_name(root_name)
            .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(root_key, hashes.SHA256()))
    files = {"root": directory / "root.pem"}
    files["root"].write_bytes(root.public_bytes(serialization.Encoding.PEM))
    for side in ("a", "b"):
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, side)])).issuer_name(root_name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                               critical=False)
                .add_extension(x509.SubjectAlternativeName([
                    x509.UniformResourceIdentifier(f"spiffe://{TRUST_DOMAIN}/service/{side}"),
                    x509.DNSName(f"{side}.mesh")]), critical=False)
                .sign(root_key, hashes.SHA256()))
        cert_pem = leaf.public_bytes(serialization.Encoding.PEM)
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        files[f"{side}-cert"] = directory / f"{side}.pem"
        files[f"{side}-key"] = directory / f"{side}-key.pem"
        files[f"{side}-haproxy"] = directory / f"{side}-haproxy.pem"
        files[f"{side}-cert"].write_bytes(cert_pem)
        files[f"{side}-key"].write_bytes(key_pem)
        files[f"{side}-haproxy"].write_bytes(cert_pem + key_pem)
    return files


def swiftmesh_configs(tls: bool, a_port: int, b_port: int, certs: dict[str, Path]) -> tuple[str, str]:
    upstream_tls = (f", tls: {{ caCertificates: {certs['root']}, certificate: {certs['a-cert']}, "
                    f"privateKey: {certs['a-key']}, identities: [spiffe://{TRUST_DOMAIN}/service/b], "
                    f"minimumVersion: \"1.3\" }}") if tls else ""
    listener_tls = (f"\n    tls: {{ certificate: {certs['b-cert']}, privateKey: {certs['b-key']}, "
                    f"clientCertificate: required, caCertificates: {certs['root']}, minimumVersion: \"1.3\" }}") if tls else ""
    a = f"""listeners:
  - name: outbound_b
    listen: 127.0.0.1:{a_port}
    routes: [ {{ cluster: b }} ]
clusters:
  - {{ name: b, protocol: http2, endpoints: [127.0.0.1:{b_port}]{upstream_tls} }}
"""
    b = f"""listeners:
  - name: inbound
    listen: 127.0.0.1:{b_port}{listener_tls}
    routes: [ {{ cluster: app }} ]
clusters:
  - {{ name: app, protocol: http2, endpoints: [127.0.0.1:{BACKEND_H2}] }}
"""
    return a, b


def haproxy_configs(tls: bool, a_port: int, b_port: int, certs: dict[str, Path]) -> tuple[str, str]:
    common = """global
  nbthread 1
  maxconn 4000
  ssl-default-bind-options ssl-min-ver TLSv1.3
  ssl-default-server-options ssl-min-ver TLSv1.3
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse always
"""
    server_tls = (f" ssl crt {certs['a-haproxy']} ca-file {certs['root']} verify required verifyhost b.mesh "
                  f"sni str(b.mesh) alpn h2") if tls else " proto h2"
    bind_tls = f" ssl crt {certs['b-haproxy']} ca-file {certs['root']} verify required alpn h2" if tls else " proto h2"
    a = common + f"""frontend fa
  bind 127.0.0.1:{a_port} proto h2
  default_backend ba
backend ba
  server b 127.0.0.1:{b_port}{server_tls}
"""
    b = common + f"""frontend fb
  bind 127.0.0.1:{b_port}{bind_tls}
  default_backend bb
backend bb
  server app 127.0.0.1:{BACKEND_H2} proto h2
"""
    return a, b


class Setup:
    def __init__(self, name: str, commands: list[list[str]], ports: list[int], entry: int):
        self.name, self.commands, self.ports, self.entry = name, commands, ports, entry
        self.processes: list[subprocess.Popen] = []

    def start(self, logs: Path) -> None:
        for index, command in enumerate(self.commands):
            log = open(logs / f"{self.name}-{index}.log", "wb")
            self.processes.append(subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log))
        for port, process in zip(self.ports, self.processes):
            wait_for_port(port, process)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def h2load(port: int, seconds: int) -> float:
    """Requests/s of one run; every request must succeed."""
    out = subprocess.run(["h2load", "-t1", f"-c{H2_CLIENTS}", f"-m{H2_STREAMS}", "-D", str(seconds),
                          f"http://127.0.0.1:{port}/"], capture_output=True, text=True, timeout=seconds + 60).stdout
    done = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored", out)
    codes = re.search(r"status codes: \d+ 2xx, \d+ 3xx, (\d+) 4xx, (\d+) 5xx", out)
    rate = re.search(r"finished in [\d.]+s, ([\d.]+) req/s", out)
    if not (done and codes and rate) or int(done.group(1)) == 0 or any(
            int(n) for n in (done.group(2), done.group(3), codes.group(1), codes.group(2))):
        raise SystemExit(f"h2load through :{port} had failures:\n{out}")
    return float(rate.group(1))


def backend_running() -> bool:
    return subprocess.run(["curl", "-s", "--max-time", "2", "--http2-prior-knowledge", f"http://127.0.0.1:{BACKEND_H2}/"],
                          capture_output=True).stdout.startswith(b"hello from backend")


SECTION_START = "<!-- mtls-hop:start -->"
SECTION_END = "<!-- mtls-hop:end -->"


def report(medians: dict[str, float], rounds: dict[str, list[float]], command: str, duration: int) -> str:
    def row(name: str, what: str) -> str:
        runs = ", ".join(f"{r:,.0f}" for r in rounds[name])
        return f"| {name} | {what} | {medians[name]:,.0f} | {runs} |"
    sm_cost = medians["swiftmesh-mtls"] / medians["swiftmesh-plain"]
    ha_cost = medians["haproxy-mtls"] / medians["haproxy-plain"]
    return "\n".join([
        SECTION_START,
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with `{command}` on {os.cpu_count()} cores: "
        f"two proxies in a row, one thread each, h2load `-t1 -c{H2_CLIENTS} -m{H2_STREAMS} -D {duration}` into the "
        "first over h2c, the anchors' nginx h2c backend behind the second.",
        "",
        "| setup | hop between the proxies | requests/s (median) | rounds |",
        "| --- | --- | ---: | --- |",
        row("swiftmesh-plain", "h2c"),
        row("swiftmesh-mtls", "h2, mutual TLS 1.3, identity checked"),
        row("haproxy-plain", "h2c"),
        row("haproxy-mtls", "h2, mutual TLS 1.3, verify required"),
        "",
        f"- SwiftMesh's mTLS hop against its plaintext hop: **{sm_cost:.2f}x** (HAProxy's: {ha_cost:.2f}x).",
        f"- SwiftMesh's mTLS hop against HAProxy's: **{medians['swiftmesh-mtls'] / medians['haproxy-mtls']:.2f}x** "
        f"(plaintext: {medians['swiftmesh-plain'] / medians['haproxy-plain']:.2f}x).",
        SECTION_END,
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds measured per setup and round")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--binary", default=os.environ.get("SWIFTMESH_BIN", str(REPO / ".build/release/swiftmesh")))
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    ensure_tools()
    started_anchors = False
    if not backend_running():
        subprocess.run(["bash", str(ANCHORS), "start"], check=True, capture_output=True)
        started_anchors = True
    setups: list[Setup] = []
    try:
        if not backend_running():
            raise SystemExit("the anchors' h2c backend does not answer on 127.0.0.1:18081")
        work = Path(tempfile.mkdtemp(prefix="swiftmesh-mtls-bench-"))
        certs = make_certificates(work)
        for kind in ("swiftmesh", "haproxy"):
            for tls in (False, True):
                name = f"{kind}-{'mtls' if tls else 'plain'}"
                a_port, b_port = free_port(), free_port()
                configs = (swiftmesh_configs if kind == "swiftmesh" else haproxy_configs)(tls, a_port, b_port, certs)
                commands = []
                for side, text in zip("ab", configs):
                    path = work / f"{name}-{side}.{'yaml' if kind == 'swiftmesh' else 'cfg'}"
                    path.write_text(text)
                    commands.append([args.binary, "proxy", "--config", str(path), "--threads", "1", "--log-level", "warning"]
                                    if kind == "swiftmesh" else ["haproxy", "-db", "-f", str(path)])
                setup = Setup(name, commands[::-1], [b_port, a_port], a_port)
                setups.append(setup)
                setup.start(work)
        rounds: dict[str, list[float]] = {s.name: [] for s in setups}
        for round_index in range(args.rounds):
            for i in range(len(setups)):
                setup = setups[(i + round_index) % len(setups)]
                h2load(setup.entry, args.warmup)
                rate = h2load(setup.entry, args.duration)
                rounds[setup.name].append(rate)
                print(f"round {round_index + 1}  {setup.name:16} {rate:>10,.0f} req/s", file=sys.stderr)
        medians = {name: statistics.median(values) for name, values in rounds.items()}
    finally:
        for setup in setups:
            setup.stop()
        if started_anchors:
            subprocess.run(["bash", str(ANCHORS), "stop"], capture_output=True)
    command = ("bench/mtls_hop.py " + " ".join(sys.argv[1:])).strip()
    text = report(medians, rounds, command, args.duration)
    print(text)
    if args.write_docs:
        docs = REPO / "docs/benchmarks.md"
        current = docs.read_text()
        if SECTION_START in current:
            before, rest = current.split(SECTION_START, 1)
            after = rest.split(SECTION_END, 1)[1]
            docs.write_text(before + text + after)
        else:
            docs.write_text(current.rstrip("\n") + "\n\n## The mutual-TLS hop\n\n" + text + "\n")


if __name__ == "__main__":
    main()
