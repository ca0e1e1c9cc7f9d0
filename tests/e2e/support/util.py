"""Bounded waits, child processes, a tiny YAML writer, and curl. (Ports: support/ports.py.)"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional


def stop_child(proc: Optional[subprocess.Popen], timeout: float = 5.0) -> None:
    """SIGTERM, SIGKILL if it has not exited within `timeout`; always reaps."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def accept_connections(sock: socket.socket, stop: threading.Event,
                       on_connection: Callable[[socket.socket], None]) -> None:
    """Accepts on `sock` until `stop` is set or the socket closes, passing
    each connection on. `sock` has a short timeout, so `stop` is seen."""
    while not stop.is_set():
        try:
            conn, _ = sock.accept()
        except socket.timeout:
            continue
        except OSError:
            return
        on_connection(conn)


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.05,
               message: str = "condition") -> Any:
    """Polls `predicate` until it returns a truthy value (returned) or `timeout`
    seconds pass (AssertionError naming `message` and the last exception)."""
    deadline = time.monotonic() + timeout
    last_exc: Optional[BaseException] = None
    last_value: Any = None
    while True:
        try:
            last_value = predicate()
            if last_value:
                return last_value
            last_exc = None
        except Exception as exc:  # noqa: BLE001 - reported below
            last_exc = exc
        if time.monotonic() >= deadline:
            detail = f"; last error: {last_exc!r}" if last_exc else f"; last value: {last_value!r}"
            raise AssertionError(f"timed out after {timeout}s waiting for {message}{detail}")
        time.sleep(interval)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def connect_refused(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when a TCP connect to host:port is actively refused."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


# ---------------------------------------------------------------- YAML writer

def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        # A JSON string is a valid YAML double-quoted scalar.
        return json.dumps(value)
    raise TypeError(f"cannot write {type(value).__name__} as YAML scalar")


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, (dict, list))


def _block(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if _is_scalar(item):
                lines.append(f"{pad}{key}: {_scalar(item)}")
            elif not item:
                lines.append(f"{pad}{key}: {'{}' if isinstance(item, dict) else '[]'}")
            else:
                lines.append(f"{pad}{key}:")
                lines.extend(_block(item, indent + 2))
    elif isinstance(value, list):
        for item in value:
            if _is_scalar(item):
                lines.append(f"{pad}- {_scalar(item)}")
            elif not item:
                lines.append(f"{pad}- {'{}' if isinstance(item, dict) else '[]'}")
            else:
                inner = _block(item, indent + 2)
                inner[0] = f"{pad}- " + inner[0][indent + 2:]
                lines.extend(inner)
    else:
        lines.append(pad + _scalar(value))
    return lines


def to_yaml(value: Any) -> str:
    """Block-style YAML for dicts, lists, strings, numbers, booleans and None."""
    return "\n".join(_block(value, 0)) + "\n"


# ---------------------------------------------------------------- curl

@dataclass
class CurlResult:
    returncode: int
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    info: dict
    stderr: str
    # Fields of a trailer section after the body (HTTP/2 trailers, chunked trailers).
    trailers: list[tuple[str, str]] = field(default_factory=list)

    def header(self, name: str) -> Optional[str]:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def json(self) -> Any:
        return json.loads(self.body)


def _fields(lines: list[str]) -> list[tuple[str, str]]:
    fields = []
    for line in lines:
        if ":" in line:
            k, v = line.split(":", 1)
            fields.append((k.strip().lower(), v.strip()))
    return fields


def _trailers(raw: bytes) -> list[tuple[str, str]]:
    """curl -D writes trailers after the last head, as a block without a status line."""
    blocks = [b for b in raw.replace(b"\r\n", b"\n").split(b"\n\n") if b.strip()]
    if not blocks or blocks[-1].startswith(b"HTTP/"):
        return []
    return _fields(blocks[-1].decode("latin-1").split("\n"))


def _parse_header_blocks(raw: bytes) -> list[tuple[int, list[tuple[str, str]]]]:
    blocks = []
    for block in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        lines = [l for l in block.decode("latin-1").split("\n") if l]
        if not lines or not lines[0].startswith("HTTP/"):
            continue
        status = int(lines[0].split()[1])
        headers = []
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers.append((k.strip().lower(), v.strip()))
        blocks.append((status, headers))
    return blocks


def curl(url: str, *args: str, timeout: float = 30.0, data_file: Optional[str] = None) -> CurlResult:
    """Runs curl once for one URL; returns status, headers of the final
    response, body and curl's write-out JSON (http_version, num_connects, ...)."""
    with tempfile.TemporaryDirectory(prefix="curl-") as d:
        hdr = os.path.join(d, "headers")
        body = os.path.join(d, "body")
        cmd = ["curl", "-sS", "--max-time", str(timeout), "-D", hdr, "-o", body,
               "-w", "%{json}", *args, url]
        if data_file:
            cmd[1:1] = ["--data-binary", "@" + data_file]
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout + 10)
        raw_headers = open(hdr, "rb").read() if os.path.exists(hdr) else b""
        payload = open(body, "rb").read() if os.path.exists(body) else b""
    try:
        info = json.loads(proc.stdout.decode() or "{}")
    except json.JSONDecodeError:
        info = {}
    blocks = _parse_header_blocks(raw_headers)
    status, headers = blocks[-1] if blocks else (0, [])
    return CurlResult(proc.returncode, status, headers, payload, info, proc.stderr.decode(errors="replace"),
                      _trailers(raw_headers))


# ---------------------------------------------------------------- keep-alive client

class KeepAliveClient:
    """HTTP/1.1 requests on one persistent connection (http.client), counting
    the distinct sockets used so a test can assert they all shared one."""

    def __init__(self, host: str, port: int, timeout: float = 10.0):
        import http.client
        self.conn = http.client.HTTPConnection(host, port, timeout=timeout)
        self._sockets: list = []

    def request(self, method: str, path: str, body: Optional[bytes] = None,
                headers: Optional[dict] = None) -> tuple[int, dict, bytes]:
        self.conn.request(method, path, body=body, headers=headers or {})
        if self.conn.sock is not None and all(s is not self.conn.sock for s in self._sockets):
            self._sockets.append(self.conn.sock)
        resp = self.conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data

    def get(self, path: str, headers: Optional[dict] = None) -> tuple[int, dict, bytes]:
        return self.request("GET", path, headers=headers)

    @property
    def connections_used(self) -> int:
        return len(self._sockets)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "KeepAliveClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def shares(counts: dict, total: Optional[int] = None) -> dict:
    total = total if total is not None else sum(counts.values())
    return {k: v / total for k, v in counts.items()}


def established_to(port: int) -> int:
    """TCP connections on this machine in state ESTABLISHED whose remote
    port is `port` (IPv4 loopback peers), read from /proc/net/tcp."""
    count = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            cols = line.split()
            remote, state = cols[2], cols[3]
            if state == "01" and int(remote.split(":")[1], 16) == port:
                count += 1
    return count
