"""A threaded HTTP/1.1 keep-alive backend that names itself and echoes what it
received as JSON.

Query parameters change the answer:
  sleep=S         wait S seconds before answering (slow upstream)
  status=N        answer with status N
  size=N          answer N bytes of application/octet-stream (large bodies)
  chunks=N        stream N chunks with Transfer-Encoding: chunked ...
  chunk_size=M    ... of M bytes each (default 1024) ...
  chunk_delay=S   ... S seconds apart (default 0)
  cut=1           ... then reset the connection instead of ending the body
  close=1         close the connection without answering (upstream reset)
  pad_header=1    add `X-Padded: padded` written with trailing whitespace
                  (optional whitespace in HTTP/1.1, not part of the value)
Every answer has `x-backend: <name>`. With an `ssl_context` the backend
serves TLS, and the JSON echo says what the handshake carried under `tls`:
the server name the client asked for (`sni`) and the URI names of its
certificate (`peerURIs`). `HTTPBackend.delay` slows every answer;
`HTTPBackend.fail_status` answers every request with that status instead.
"""
from __future__ import annotations

import hashlib
import json
import socket
import ssl
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional
from urllib.parse import parse_qs, urlsplit


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], backend: "HTTPBackend"):
        self.backend = backend
        self.request_queue_size = backend.backlog
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        context = self.backend.ssl_context
        if context is not None:
            # The handshake runs in the request's thread (`_Handler.setup`), so
            # a client that never finishes one cannot stall accepting.
            sock = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        # peers (the proxy) closing or resetting connections is routine here
        pass

    def process_request(self, request: socket.socket, client_address: Any) -> None:
        self.backend._track(request)
        super().process_request(request, client_address)


def _read_chunked(rfile: Any) -> bytes:
    out = bytearray()
    while True:
        line = rfile.readline(65537)
        if not line:
            raise ConnectionError("eof in chunked body")
        size = int(line.split(b";")[0].strip(), 16)
        if size == 0:
            while True:  # trailers
                t = rfile.readline(65537)
                if t in (b"\r\n", b"\n", b""):
                    return bytes(out)
        out += rfile.read(size)
        rfile.readline(65537)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY: head and body are separate writes; with Nagle plus the
    # peer's delayed ACK every keep-alive request would cost 40 ms.
    disable_nagle_algorithm = True
    server_version = "e2e-backend"

    def version_string(self) -> str:
        # the default appends " Python/x.y" (or a trailing space): keep the
        # value a clean token, strict HTTP/2 peers refuse trailing whitespace
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence
        pass

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(10)
            self.request.do_handshake()
            self.request.settimeout(None)
        super().setup()

    def _tls_record(self) -> Optional[dict]:
        conn = self.connection
        if not isinstance(conn, ssl.SSLSocket):
            return None
        peer = conn.getpeercert() or {}
        return {
            "sni": getattr(conn, "sni", None),
            "version": conn.version(),
            "peerURIs": [v for k, v in peer.get("subjectAltName", ()) if k == "URI"],
        }

    def _handle(self) -> None:
        backend: HTTPBackend = self.server.backend  # type: ignore[attr-defined]
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        chunked_in = "chunked" in te
        if chunked_in:
            body = _read_chunked(self.rfile)
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        query = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
        record = {
            "backend": backend.name,
            "method": self.command,
            "path": self.path,
            "httpVersion": self.request_version,
            "headers": [[k.lower(), v] for k, v in self.headers.items()],
            "bodyLength": len(body),
            "bodySha256": hashlib.sha256(body).hexdigest(),
            "chunkedRequest": chunked_in,
        }
        tls = self._tls_record()
        if tls is not None:
            record["tls"] = tls
        backend._begin(record)
        try:
            if backend.fail_status is not None:
                self._send(backend.fail_status, b"failing on purpose\n", "text/plain")
                return
            if query.get("close") == "1":
                self.close_connection = True
                try:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if backend.delay:
                time.sleep(backend.delay)
            if "sleep" in query:
                time.sleep(float(query["sleep"]))
            status = int(query.get("status", "200"))
            if "chunks" in query:
                self._stream(status, int(query["chunks"]), int(query.get("chunk_size", "1024")),
                             float(query.get("chunk_delay", "0")), cut=query.get("cut") == "1")
            elif "size" in query:
                payload = _pattern(int(query["size"]))
                self._send(status, payload, "application/octet-stream")
            else:
                self._send(status, json.dumps(record).encode(), "application/json")
        finally:
            backend._end()

    def end_headers(self) -> None:
        if "pad_header=1" in self.path:
            self._headers_buffer.append(b"X-Padded: padded   \r\n")
        super().end_headers()

    def _send(self, status: int, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-backend", self.server.backend.name)  # type: ignore[attr-defined]
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _stream(self, status: int, chunks: int, size: int, delay: float, cut: bool = False) -> None:
        """`chunks` chunks of `size` bytes; with `cut`, the connection is
        reset after them instead of ending the body."""
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-backend", self.server.backend.name)  # type: ignore[attr-defined]
        self.end_headers()
        for i in range(chunks):
            piece = bytes([ord("a") + i % 26]) * size
            self.wfile.write(f"{size:x}\r\n".encode() + piece + b"\r\n")
            self.wfile.flush()
            if delay:
                time.sleep(delay)
        if cut:
            self.close_connection = True
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _handle


def _pattern(n: int) -> bytes:
    unit = b"0123456789abcdefghijklmnopqrstuvwxyz"
    return (unit * (n // len(unit) + 1))[:n]


def pattern(n: int) -> bytes:
    """The body a backend sends for `?size=n`."""
    return _pattern(n)


class HTTPBackend:
    def __init__(self, name: str, host: str = "127.0.0.1", port: int = 0, delay: float = 0.0,
                 ssl_context: Optional[ssl.SSLContext] = None, backlog: int = 256):
        self.name = name
        # the listen backlog: connections the kernel holds until the accept loop takes them
        self.backlog = backlog
        self.ssl_context = ssl_context
        if ssl_context is not None:
            def remember_sni(sock: Any, server_name: Optional[str], _context: Any) -> None:
                sock.sni = server_name
            ssl_context.sni_callback = remember_sni
        # seconds every answer waits (a slow instance), on top of ?sleep=
        self.delay = delay
        # when set, every request is answered with this status
        self.fail_status: Optional[int] = None
        self.host = host
        self._requested_port = port
        self._lock = threading.Lock()
        self.requests: list[dict] = []
        self.inflight = 0
        self.max_inflight = 0
        self.connections = 0
        self._sockets: list[socket.socket] = []
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def count_path(self, prefix: str) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r["path"].startswith(prefix))

    def start(self) -> "HTTPBackend":
        self._server = _Server((self.host, self._requested_port), self)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"http-backend-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            socks, self._sockets = self._sockets, []
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread:
            self._thread.join(timeout=5)
        self._server = None

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self.connections += 1
            self._sockets.append(sock)

    def _begin(self, record: dict) -> None:
        with self._lock:
            self.requests.append(record)
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)

    def _end(self) -> None:
        with self._lock:
            self.inflight -= 1
