"""DNS peers: dnsmasq serving names from a hosts file we rewrite, a tiny DNS
query client to see what dnsmasq answers, and a scriptable in-process DNS
responder (for "not answering yet" states)."""
from __future__ import annotations

import os
import random
import signal
import socket
import struct
import subprocess
import threading
from pathlib import Path
from typing import Optional

from .ports import free_port
from .util import stop_child, wait_until

QTYPE_A = 1


def build_query(name: str, qtype: int = QTYPE_A, qid: Optional[int] = None) -> bytes:
    qid = random.randint(0, 0xFFFF) if qid is None else qid
    header = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)  # RD
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\x00"
    return header + qname + struct.pack("!HH", qtype, 1)


def _skip_name(data: bytes, offset: int) -> int:
    while True:
        length = data[offset]
        if length == 0:
            return offset + 1
        if length & 0xC0 == 0xC0:
            return offset + 2
        offset += 1 + length


def parse_response(data: bytes) -> tuple[int, int, list[str]]:
    """(id, rcode, A-record addresses) of a DNS response."""
    qid, flags, qd, an, _, _ = struct.unpack("!HHHHHH", data[:12])
    offset = 12
    for _ in range(qd):
        offset = _skip_name(data, offset) + 4
    addrs = []
    for _ in range(an):
        offset = _skip_name(data, offset)
        rtype, _cls, _ttl, rdlen = struct.unpack("!HHIH", data[offset:offset + 10])
        offset += 10
        if rtype == QTYPE_A and rdlen == 4:
            addrs.append(socket.inet_ntoa(data[offset:offset + 4]))
        offset += rdlen
    return qid, flags & 0x000F, addrs


def query_a(server: tuple[str, int], name: str, timeout: float = 1.0) -> tuple[int, list[str]]:
    """(rcode, sorted addresses) of an A query."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        q = build_query(name)
        s.sendto(q, server)
        while True:
            data, _ = s.recvfrom(4096)
            qid, rcode, addrs = parse_response(data)
            if qid == struct.unpack("!H", q[:2])[0]:
                return rcode, sorted(addrs)


class Dnsmasq:
    """dnsmasq in the foreground on 127.0.0.1:<free UDP port>, answering only
    from a hosts file (`records`: name -> [IPv4]); names under .test that are
    not in the file get NXDOMAIN. Changes: set_records() rewrites the file,
    sends SIGHUP and waits until dnsmasq answers the new records.

    With `local=False` dnsmasq is not the authority for .test and has no
    upstream: what the file does not answer (AAAA of an IPv4-only name, an
    unknown name) gets REFUSED, as from many resolvers."""

    def __init__(self, workdir: Path, records: dict[str, list[str]], local: bool = True):
        self.local = local
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.hosts = self.dir / "hosts"
        self.log = self.dir / "dnsmasq.log"
        self.records = {k: list(v) for k, v in records.items()}
        self.port = 0
        self.proc: Optional[subprocess.Popen] = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _write(self) -> None:
        lines = [f"{ip} {name}" for name, ips in self.records.items() for ip in ips]
        tmp = self.hosts.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.hosts)

    def start(self, timeout: float = 10.0) -> "Dnsmasq":
        self._write()
        last_error = ""
        for _attempt in range(5):
            self.port = free_port(kind=socket.SOCK_DGRAM)
            cmd = [
                "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
                "--no-resolv", "--no-hosts", f"--addn-hosts={self.hosts}",
                "--listen-address=127.0.0.1", "--bind-interfaces", f"--port={self.port}",
                *(["--local=/test/"] if self.local else []), "--local-ttl=0", "--cache-size=0",
                "--user=root", "--group=root", f"--pid-file={self.dir / 'dnsmasq.pid'}",
                f"--log-facility={self.log}", "--log-queries",
            ]
            stderr_path = self.dir / "dnsmasq.stderr"
            with open(stderr_path, "ab") as err:
                self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL)
            try:
                self._wait_answers(timeout)
                return self
            except AssertionError:
                last_error = stderr_path.read_text(errors="replace")
                self.stop()
        raise RuntimeError(f"dnsmasq did not start: {last_error}")

    def _matches(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError("dnsmasq exited")
        for name, ips in self.records.items():
            rcode, addrs = query_a(("127.0.0.1", self.port), name, timeout=0.5)
            if addrs != sorted(ips):
                return False
        return True

    def _wait_answers(self, timeout: float) -> None:
        wait_until(self._matches, timeout, interval=0.05, message="dnsmasq to answer the hosts file")

    def set_records(self, records: dict[str, list[str]], timeout: float = 10.0) -> None:
        self.records = {k: list(v) for k, v in records.items()}
        self._write()
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)
        self._wait_answers(timeout)

    def stop(self) -> None:
        if self.proc is None:
            return
        stop_child(self.proc)
        self.proc = None


class MiniDNS:
    """An in-process UDP DNS responder on 127.0.0.1. While `answering` is
    False it reads and drops every query (a resolver that never replies)."""

    def __init__(self, records: dict[str, list[str]], answering: bool = True):
        self.records = {k.rstrip(".").lower(): list(v) for k, v in records.items()}
        self.answering = answering
        self.queries = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mini-dns", daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "MiniDNS":
        self._thread.start()
        return self

    def _answer(self, query: bytes) -> bytes:
        qid, flags, qd, _, _, _ = struct.unpack("!HHHHHH", query[:12])
        end = _skip_name(query, 12)
        labels, off = [], 12
        while query[off]:
            labels.append(query[off + 1:off + 1 + query[off]].decode(errors="replace"))
            off += 1 + query[off]
        qtype, _ = struct.unpack("!HH", query[end:end + 4])
        question = query[12:end + 4]
        name = ".".join(labels).lower()
        ips = self.records.get(name)
        answers = b""
        rcode = 0 if ips is not None else 3
        if ips and qtype == QTYPE_A:
            for ip in ips:
                answers += b"\xc0\x0c" + struct.pack("!HHIH", QTYPE_A, 1, 0, 4) + socket.inet_aton(ip)
        count = len(ips) if ips and qtype == QTYPE_A else 0
        header = struct.pack("!HHHHHH", qid, 0x8180 | rcode, 1, count, 0, 0)
        return header + question + answers

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            self.queries += 1
            if not self.answering:
                continue
            try:
                self._sock.sendto(self._answer(data), peer)
            except Exception:  # noqa: BLE001 - a bad query gets no answer
                pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()
