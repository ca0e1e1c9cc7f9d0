"""HTTP/1.1 over a raw socket: for pipelining, malformed requests, Expect:
100-continue and anything a well-behaved client library refuses to send."""
from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass
class RawResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    interim: list[int] = field(default_factory=list)
    # The trailer section of a chunked body, names lowercased.
    trailers: list[tuple[str, str]] = field(default_factory=list)

    def header(self, name: str) -> Optional[str]:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def header_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    def json(self) -> Any:
        return json.loads(self.body)


class ConnectionClosed(Exception):
    pass


class RawHTTP:
    """One TCP connection; bytes in, parsed responses out."""

    def __init__(self, host: str, port: int, timeout: float = 10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = b""

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "RawHTTP":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionClosed("peer closed the connection")
        self.buf += chunk

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(marker, 1)
        return head

    def _read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def _read_to_close(self) -> bytes:
        while True:
            try:
                self._fill()
            except ConnectionClosed:
                break
        data, self.buf = self.buf, b""
        return data

    def read_head(self) -> tuple[int, str, list[tuple[str, str]]]:
        return parse_head(self._read_until(b"\r\n\r\n"))

    def read_response(self, method: str = "GET", stop_after_interim: bool = False) -> RawResponse:
        """Reads one response (after any 1xx interim responses, which are
        recorded in `interim`). With stop_after_interim, returns the first
        interim response as is."""
        interim: list[int] = []
        while True:
            status, reason, headers = self.read_head()
            if 100 <= status < 200 and status != 101:
                interim.append(status)
                if stop_after_interim:
                    return RawResponse(status, reason, headers, b"", interim)
                continue
            break
        lookup = {k: v for k, v in headers}
        trailers: list[tuple[str, str]] = []
        if method == "HEAD" or status in (204, 304):
            body = b""
        elif "chunked" in lookup.get("transfer-encoding", "").lower():
            body, trailers = self._read_chunked()
        elif "content-length" in lookup:
            body = self._read_exact(int(lookup["content-length"]))
        else:
            body = self._read_to_close()
        return RawResponse(status, reason, headers, body, interim, trailers)

    def _read_chunked(self) -> tuple[bytes, list[tuple[str, str]]]:
        out = b""
        while True:
            size_line = self._read_until(b"\r\n")
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                # trailers until the empty line
                trailers: list[tuple[str, str]] = []
                while True:
                    line = self._read_until(b"\r\n")
                    if not line:
                        return out, trailers
                    name, _, value = line.decode("latin-1").partition(":")
                    trailers.append((name.strip().lower(), value.strip()))
            out += self._read_exact(size)
            self._read_exact(2)

    def closed_by_peer(self, timeout: float = 5.0) -> bool:
        """True when the peer closes (EOF or reset) within `timeout` with no
        further bytes beyond what is already buffered."""
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False


def parse_head(head: bytes) -> tuple[int, str, list[tuple[str, str]]]:
    """(status, reason, headers with lowercase names) of a response head
    (its bytes up to the blank line); ValueError for a bad status line."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ValueError(f"bad status line {lines[0]!r}")
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        k, _, v = line.partition(":")
        headers.append((k.strip().lower(), v.strip()))
    return int(parts[1]), (parts[2] if len(parts) > 2 else ""), headers


def request_bytes(method: str, path: str, headers: Optional[list[tuple[str, str]]] = None,
                  body: bytes = b"", host: str = "e2e.test") -> bytes:
    """A well-formed HTTP/1.1 request; Content-Length added when there is a body
    and none was given."""
    headers = list(headers or [])
    names = {k.lower() for k, _ in headers}
    if "host" not in names:
        headers.insert(0, ("Host", host))
    if body and "content-length" not in names and "transfer-encoding" not in names:
        headers.append(("Content-Length", str(len(body))))
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    return head.encode("latin-1") + body


def one_request(host: str, port: int, raw: bytes, method: str = "GET", timeout: float = 10.0) -> RawResponse:
    with RawHTTP(host, port, timeout) as conn:
        conn.send(raw)
        return conn.read_response(method)


def h2_frames(data: bytes):
    """(type, flags, stream, payload) of the HTTP/2 frames in `data`."""
    offset = 0
    while len(data) >= offset + 9:
        length = int.from_bytes(data[offset:offset + 3], "big")
        ftype, flags = data[offset + 3], data[offset + 4]
        stream = int.from_bytes(data[offset + 5:offset + 9], "big") & 0x7FFFFFFF
        yield ftype, flags, stream, data[offset + 9:offset + 9 + length]
        offset += 9 + length


# ---------------------------------------------------------------- HTTP/2 frames by hand

END_STREAM, END_HEADERS = 0x1, 0x4


def h2_frame(ftype: int, flags: int, stream: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + stream.to_bytes(4, "big") + payload


# A client's connection preface followed by an empty SETTINGS frame.
H2_PREFACE_AND_SETTINGS = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(0x4, 0, 0, b"")


def hpack_literal_block(fields: list[tuple[bytes, bytes]]) -> bytes:
    """Literal fields without indexing and without Huffman coding (RFC 7541
    6.2.2), the one HPACK shape that can carry bytes a client library refuses."""
    block = b""
    for name, value in fields:
        assert len(name) < 127 and len(value) < 127
        block += b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value
    return block
