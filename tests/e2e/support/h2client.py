"""A strict HTTP/2 client: the h2 package's connection state machine
(from PyPI), which raises on anything the proxy sends that RFC 9113
forbids, driven over one h2c connection with bounded waits."""
from __future__ import annotations

import socket
import time

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest


class H2Client:
    """One h2c connection driven by h2's state machine, with bounded waits."""

    def __init__(self, host: str, port: int, window: int | None = None, timeout: float = 10.0,
                 validate: bool = True):
        """validate=False lets the client send header blocks h2 would refuse (for hostile-input tests)."""
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8", validate_outbound_headers=validate))
        self.conn.initiate_connection()
        if window is not None:
            self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        self.deadline = time.monotonic() + timeout
        self.flush()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def events(self) -> list:
        """The events of the next bytes the proxy sends; fails past the deadline."""
        self.sock.settimeout(max(0.1, self.deadline - time.monotonic()))
        data = self.sock.recv(65536)
        assert data, "the proxy closed the connection"
        events = self.conn.receive_data(data)
        self.flush()
        return events

    def close(self) -> None:
        self.sock.close()

    def get(self, path: str, extra: list[tuple[str, str]] = ()) -> tuple[dict, bytes]:
        """A GET, reading the response while returning credit for each DATA
        frame as it arrives, as a client with a small window does."""
        stream = self.conn.get_next_available_stream_id()
        self.conn.send_headers(stream, [(":method", "GET"), (":scheme", "http"), (":path", path),
                                        (":authority", "proxy"), *extra], end_stream=True)
        self.flush()
        headers: dict = {}
        body = bytearray()
        while True:
            for event in self.events():
                if isinstance(event, h2.events.ResponseReceived) and event.stream_id == stream:
                    headers = dict(event.headers)
                elif isinstance(event, h2.events.DataReceived) and event.stream_id == stream:
                    body += event.data
                    self.conn.acknowledge_received_data(event.flow_controlled_length, stream)
                    self.flush()
                elif isinstance(event, h2.events.StreamReset) and event.stream_id == stream:
                    pytest.fail(f"stream reset with {event.error_code}")
                elif isinstance(event, h2.events.StreamEnded) and event.stream_id == stream:
                    return headers, bytes(body)
