"""The proxy's HTTP/2 connection layer against a strict peer: the h2
package's connection state machine (from PyPI), which raises on anything
the proxy sends that RFC 9113 forbids, such as DATA beyond the window it
offered. curl, grpcio and nginx cover the everyday paths elsewhere; these
tests push the edges those clients never reach."""
from __future__ import annotations

import json
import socket
import time

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest

from support.config import cluster, route, single_listener
from support.http_backend import pattern


class H2Client:
    """One h2c connection driven by h2's state machine, with bounded waits."""

    def __init__(self, host: str, port: int, window: int | None = None, timeout: float = 10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
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


@pytest.fixture
def h1_proxy(mesh):
    a = mesh.http_backend("a")
    return mesh.proxy(single_listener([route("a", match={"pathPrefix": "/"})], [cluster("a", [a])]))


def test_response_never_exceeds_a_small_client_window(h1_proxy):
    """A client offering 1,000-byte stream windows gets a 300 kB body in
    pieces, each within the credit it returned: h2 fails the test on any
    DATA frame past the window."""
    client = H2Client(h1_proxy.host, h1_proxy.port, window=1000)
    try:
        size = 300_000
        headers, body = client.get(f"/big?size={size}")
        assert headers[":status"] == "200"
        assert body == pattern(size)
    finally:
        client.close()


def test_request_header_block_in_continuation_frames(h1_proxy):
    """A header block larger than a frame arrives as HEADERS plus
    CONTINUATION frames; the proxy decodes it whole and forwards the field."""
    client = H2Client(h1_proxy.host, h1_proxy.port)
    try:
        big = "c" * 40_000
        headers, body = client.get("/continued", [("x-big", big)])
        assert headers[":status"] == "200"
        forwarded = dict(json.loads(body)["headers"])
        assert forwarded["x-big"] == big
    finally:
        client.close()


def test_ping_is_answered_and_the_connection_serves_many_streams(h1_proxy):
    client = H2Client(h1_proxy.host, h1_proxy.port)
    try:
        client.conn.ping(b"swiftmsh")
        client.flush()
        acked = False
        while not acked:
            acked = any(isinstance(e, h2.events.PingAckReceived) and e.ping_data == b"swiftmsh"
                        for e in client.events())
        for i in range(20):
            headers, _ = client.get(f"/n/{i}")
            assert headers[":status"] == "200"
    finally:
        client.close()
