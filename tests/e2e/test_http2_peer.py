"""The proxy's HTTP/2 connection layer against a strict peer: the h2
package's connection state machine (from PyPI), which raises on anything
the proxy sends that RFC 9113 forbids, such as DATA beyond the window it
offered. curl, grpcio and nginx cover the everyday paths elsewhere; these
tests push the edges those clients never reach."""
from __future__ import annotations

import json

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest

from support.config import cluster, route, single_listener
from support.h2client import H2Client
from support.http_backend import pattern


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
