"""gRPC peers without protoc: generic handlers on raw bytes.

Service `e2e.Echo`:
  Unary         -> JSON {"backend", "len", "metadata"}; metadata `x-sleep: S`
                   delays the answer, `x-fail: CODE_NAME` aborts with that code.
  Echo          -> the request bytes unchanged (large-message round trips).
  ClientStream  -> JSON {"backend", "count", "total", "sha256"} of all requests.
  ServerStream  -> request JSON {"count", "size"}: `count` replies
                   b"<backend>:<i>:" + padding up to `size` bytes.
  Bidi          -> each request echoed as b"<backend>:" + request.
Every call sets initial metadata `x-backend-initial` and trailing metadata
`x-backend` (and echoes `x-echo` as trailing `x-echo-trailer`).
`GrpcBackend.fail_code`, when set, makes every Unary call fail at once with
that status in a trailers-only response, as a sick instance answers (with
`fail_after_headers`, in the trailers after response headers).
The standard grpc.health.v1.Health service is served too (`set_serving`), and
`user.UserService` (GetUser as Unary, ListUsers as ServerStream), the service
of the authorization tests.
"""
from __future__ import annotations

import hashlib
import json
import socket
import struct
import threading
import time
from concurrent import futures
from typing import Iterator, Optional

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from support.util import accept_connections

SERVICE = "e2e.Echo"
USER_SERVICE = "user.UserService"
MAX_MESSAGE = 64 * 1024 * 1024
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.max_send_message_length", MAX_MESSAGE),
    # one connection per channel, no hidden retries that would mask proxy errors
    ("grpc.enable_retries", 0),
    ("grpc.use_local_subchannel_pool", 1),
]


class GrpcBackend:
    def __init__(self, name: str, host: str = "127.0.0.1", port: int = 0, max_workers: int = 32):
        self.name = name
        self.host = host
        self._requested_port = port
        self._max_workers = max_workers
        self._lock = threading.Lock()
        self.calls = 0
        self.calls_by_method: dict[str, int] = {}
        self.inflight = 0
        self.max_inflight = 0
        self.port = 0
        # set to a grpc.StatusCode to fail every Unary call with it
        self.fail_code: Optional[grpc.StatusCode] = None
        # with fail_code: send the response headers first, then fail in the trailers
        self.fail_after_headers = False
        self._server: Optional[grpc.Server] = None
        self._health: Optional[health.HealthServicer] = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    # -- bookkeeping
    def _begin(self, method: str) -> None:
        with self._lock:
            self.calls += 1
            self.calls_by_method[method] = self.calls_by_method.get(method, 0) + 1
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)

    def _end(self) -> None:
        with self._lock:
            self.inflight -= 1

    def _metadata(self, context: grpc.ServicerContext) -> dict[str, str]:
        return {k: v for k, v in context.invocation_metadata() if not k.endswith("-bin")}

    def _trailers(self, context: grpc.ServicerContext, md: dict[str, str]) -> None:
        trailers = [("x-backend", self.name)]
        if "x-echo" in md:
            trailers.append(("x-echo-trailer", md["x-echo"]))
        context.set_trailing_metadata(tuple(trailers))

    # -- handlers
    def _unary(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self._begin("Unary")
        try:
            if self.fail_code is not None:
                if self.fail_after_headers:
                    context.send_initial_metadata((("x-backend-initial", self.name),))
                # otherwise before any metadata: the status goes out trailers-only
                context.abort(self.fail_code, f"{self.name} is failing")
            md = self._metadata(context)
            context.send_initial_metadata((("x-backend-initial", self.name),))
            if "x-sleep" in md:
                time.sleep(float(md["x-sleep"]))
            self._trailers(context, md)
            if "x-fail" in md:
                context.abort(grpc.StatusCode[md["x-fail"]], f"{self.name} failed on purpose")
            return json.dumps({"backend": self.name, "len": len(request), "metadata": md}).encode()
        finally:
            self._end()

    def _echo(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self._begin("Echo")
        try:
            md = self._metadata(context)
            context.send_initial_metadata((("x-backend-initial", self.name),))
            self._trailers(context, md)
            return request
        finally:
            self._end()

    def _client_stream(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
        self._begin("ClientStream")
        try:
            md = self._metadata(context)
            digest = hashlib.sha256()
            count = total = 0
            for msg in requests:
                count += 1
                total += len(msg)
                digest.update(msg)
            self._trailers(context, md)
            return json.dumps({"backend": self.name, "count": count, "total": total,
                               "sha256": digest.hexdigest()}).encode()
        finally:
            self._end()

    def _server_stream(self, request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        self._begin("ServerStream")
        try:
            md = self._metadata(context)
            params = json.loads(request or b"{}")
            count, size = int(params.get("count", 3)), int(params.get("size", 0))
            delay = float(params.get("delay", 0))
            for i in range(count):
                head = f"{self.name}:{i}:".encode()
                yield head + b"." * max(0, size - len(head))
                if delay:
                    time.sleep(delay)
            self._trailers(context, md)
        finally:
            self._end()

    def _bidi(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        self._begin("Bidi")
        try:
            md = self._metadata(context)
            for msg in requests:
                yield self.name.encode() + b":" + msg
            self._trailers(context, md)
        finally:
            self._end()

    def start(self) -> "GrpcBackend":
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=self._max_workers),
            options=[("grpc.max_receive_message_length", MAX_MESSAGE),
                     ("grpc.max_send_message_length", MAX_MESSAGE),
                     ("grpc.so_reuseport", 0)],
        )
        handler = grpc.method_handlers_generic_handler(SERVICE, {
            "Unary": grpc.unary_unary_rpc_method_handler(self._unary),
            "Echo": grpc.unary_unary_rpc_method_handler(self._echo),
            "ClientStream": grpc.stream_unary_rpc_method_handler(self._client_stream),
            "ServerStream": grpc.unary_stream_rpc_method_handler(self._server_stream),
            "Bidi": grpc.stream_stream_rpc_method_handler(self._bidi),
        })
        user_handler = grpc.method_handlers_generic_handler(USER_SERVICE, {
            "GetUser": grpc.unary_unary_rpc_method_handler(self._unary),
            "ListUsers": grpc.unary_stream_rpc_method_handler(self._server_stream),
        })
        server.add_generic_rpc_handlers((handler, user_handler))
        self._health = health.HealthServicer()
        self.set_serving(True)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        self.port = server.add_insecure_port(f"{self.host}:{self._requested_port}")
        if not self.port:
            raise RuntimeError(f"grpc backend {self.name} could not bind {self.host}:{self._requested_port}")
        server.start()
        self._server = server
        return self

    def set_serving(self, serving: bool) -> None:
        """What grpc.health.v1.Health answers, for the server ("") and for e2e.Echo."""
        assert self._health is not None
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for service in ("", SERVICE):
            self._health.set(service, status)

    def stop(self, grace: Optional[float] = None) -> None:
        if self._server is not None:
            self._server.stop(grace).wait(10)
            self._server = None


# ---------------------------------------------------------------- client side

def channel(target: str) -> grpc.Channel:
    return grpc.insecure_channel(target, options=CHANNEL_OPTIONS)


def wait_channel_ready(ch: grpc.Channel, timeout: float = 10.0) -> None:
    grpc.channel_ready_future(ch).result(timeout=timeout)


def unary(ch: grpc.Channel, method: str = "Unary"):
    return ch.unary_unary(f"/{SERVICE}/{method}")


def client_stream(ch: grpc.Channel):
    return ch.stream_unary(f"/{SERVICE}/ClientStream")


def server_stream(ch: grpc.Channel):
    return ch.unary_stream(f"/{SERVICE}/ServerStream")


def bidi(ch: grpc.Channel):
    return ch.stream_stream(f"/{SERVICE}/Bidi")


def call_backend(ch: grpc.Channel, payload: bytes = b"hi", metadata: Optional[list] = None,
                 timeout: float = 10.0) -> str:
    """One Unary call; returns the name of the backend that served it."""
    reply = unary(ch)(payload, metadata=metadata, timeout=timeout)
    return json.loads(reply)["backend"]


class ResetBackend:
    """Accepts TCP connections, waits for a request, then resets the
    connection (RST) without answering: an upstream that dies after the
    connect succeeded and before any response.

    protocol "http1": reset once the request head (CRLF CRLF) has arrived.
    protocol "http2": complete the HTTP/2 handshake (server SETTINGS, ACK),
    then reset once a HEADERS frame has arrived.

    With `reply`, those raw bytes answer the request before the reset: a
    response no well-behaved server library would send."""

    def __init__(self, host: str = "127.0.0.1", protocol: str = "http1", reply: bytes = b""):
        assert protocol in ("http1", "http2")
        self.host = host
        self.protocol = protocol
        self.reply = reply
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, 0))
        self._sock.listen(64)
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self.accepted = 0
        self.requests = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reset-backend", daemon=True)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> "ResetBackend":
        self._thread.start()
        return self

    def _run(self) -> None:
        accept_connections(self._sock, self._stop, self._accepted)

    def _accepted(self, conn: socket.socket) -> None:
        self.accepted += 1
        threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _wait_for_request(self, conn: socket.socket) -> bool:
        buf = b""
        deadline = time.monotonic() + 10
        handshake_sent = False
        while time.monotonic() < deadline and not self._stop.is_set():
            try:
                chunk = conn.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                return False
            buf += chunk
            if self.protocol == "http1":
                if b"\r\n\r\n" in buf:
                    return True
                continue
            if not handshake_sent and len(buf) >= 24:
                # empty SETTINGS, then ACK of the client's SETTINGS
                conn.sendall(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00" + b"\x00\x00\x00\x04\x01\x00\x00\x00\x00")
                handshake_sent = True
            offset = 24
            while len(buf) >= offset + 9:
                length = int.from_bytes(buf[offset:offset + 3], "big")
                if buf[offset + 3] == 0x1:  # HEADERS
                    return True
                offset += 9 + length
        return False

    def _wait_for_close(self, conn: socket.socket) -> None:
        """Until the peer closes or resets, so that it reads `reply` whole."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not self._stop.is_set():
            try:
                if not conn.recv(65536):
                    return
            except socket.timeout:
                continue

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(0.2)
            if self._wait_for_request(conn):
                self.requests += 1
                if self.reply:
                    conn.sendall(self.reply)
                    self._wait_for_close(conn)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(timeout=5)
