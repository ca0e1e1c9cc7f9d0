"""An HTTP/1.1 endpoint that answers every request with fixed raw bytes and
keeps the raw bytes of each request it read: for what no server library
sends (trailers that carry framing fields) and what no library reports
(exactly which fields and trailers arrived)."""
from __future__ import annotations

import socket
import threading
from typing import Optional

from support.util import accept_connections


def _read_request(conn: socket.socket) -> bytes:
    """One request: its head, then a Content-Length or chunked body with trailers."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lower = head.lower()
    if b"transfer-encoding: chunked" in lower:
        # The last chunk, then the trailer section up to its empty line.
        # (Enough for the tests' bodies, which never hold "\r\n0\r\n" themselves.)
        while not ((rest.startswith(b"0\r\n") or b"\r\n0\r\n" in rest) and rest.endswith(b"\r\n\r\n")):
            chunk = conn.recv(65536)
            if not chunk:
                break
            rest += chunk
    else:
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(rest) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            rest += chunk
    return head + b"\r\n\r\n" + rest


class RawReplyBackend:
    def __init__(self, reply: bytes, host: str = "127.0.0.1"):
        self.reply = reply
        self.host = host
        self.requests: list[bytes] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind((host, 0))
        self._sock.listen(16)
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> "RawReplyBackend":
        self._thread = threading.Thread(target=self._run, name="raw-reply-backend", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        accept_connections(self._sock, self._stop, self._answer)

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                request = _read_request(conn)
                if request:
                    self.requests.append(request)
                    conn.sendall(self.reply)
            except OSError:
                pass

    def stop(self) -> None:
        self._stop.set()
        self._sock.close()
        if self._thread is not None:
            self._thread.join(5)
