"""An HTTP/2 endpoint (h2c, the `h2` package) that refuses its first
streams with RST_STREAM(REFUSED_STREAM) and answers the rest 200 "ok":
what a server at its stream limit, or one restarting, does, and no
ordinary server does on demand."""
from __future__ import annotations

import socket
import threading
from typing import Optional

import h2.config
import h2.connection
import h2.errors
import h2.events

from support.util import accept_connections


class RefusingH2Endpoint:
    def __init__(self, refusals: int, host: str = "127.0.0.1"):
        self.refusals = refusals
        self.host = host
        # (connection number, stream id, "refused" or "answered"), in order.
        self.streams: list[tuple[int, int, str]] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind((host, 0))
        self._sock.listen(16)
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._connections = 0

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> "RefusingH2Endpoint":
        thread = threading.Thread(target=self._accept, name="refusing-h2-endpoint", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def _accept(self) -> None:
        accept_connections(self._sock, self._stop, self._accepted)

    def _accepted(self, conn: socket.socket) -> None:
        self._connections += 1
        thread = threading.Thread(target=self._serve, args=(conn, self._connections), daemon=True)
        thread.start()
        self._threads.append(thread)

    def _serve(self, conn: socket.socket, number: int) -> None:
        h2conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        h2conn.initiate_connection()
        conn.settimeout(0.2)
        with conn:
            try:
                conn.sendall(h2conn.data_to_send())
                while not self._stop.is_set():
                    try:
                        data = conn.recv(65536)
                    except socket.timeout:
                        continue
                    if not data:
                        return
                    for event in h2conn.receive_data(data):
                        if isinstance(event, h2.events.RequestReceived):
                            self._answer(h2conn, number, event.stream_id)
                    conn.sendall(h2conn.data_to_send())
            except OSError:
                return

    def _answer(self, h2conn: h2.connection.H2Connection, number: int, stream_id: int) -> None:
        if self.refusals > 0:
            self.refusals -= 1
            self.streams.append((number, stream_id, "refused"))
            h2conn.reset_stream(stream_id, error_code=h2.errors.ErrorCodes.REFUSED_STREAM)
            return
        self.streams.append((number, stream_id, "answered"))
        h2conn.send_headers(stream_id, [(":status", "200"), ("content-length", "2")])
        h2conn.send_data(stream_id, b"ok", end_stream=True)

    def stop(self) -> None:
        self._stop.set()
        self._sock.close()
        for thread in self._threads:
            thread.join(5)
