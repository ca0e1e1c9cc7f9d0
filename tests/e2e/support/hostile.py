"""Hostile peers for the per-client limits (test_limits.py, bench/hostile_limits.py):
clients that make the proxy hold something (streams, buffered bytes, cluster
slots, answers nobody reads, time) and record what the proxy did about it:
responses, resets, GOAWAY, close, and when.

- `H2Peer`: one h2c connection driven by the `h2` package's state machine,
  with raw frames for what h2 will not send, that never returns flow-control
  credit unless told to and records every event with its time.
- `send_unread`: writes without ever reading (a small SO_RCVBUF), until the
  proxy stops taking bytes.
- `trickle`: sends bytes one at a time at an interval (slowloris), watching
  for the proxy's answer or close between bytes.
- `RssSampler`: the proxy's resident set (VmRSS) sampled in a thread, with
  its peak.
Every wait here is bounded by a deadline the caller gives."""
from __future__ import annotations

import errno
import select
import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Optional

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from .rawhttp import (
    END_HEADERS, END_STREAM, H2_PREFACE_AND_SETTINGS, h2_frame, h2_frames, hpack_literal_block, parse_head, request_bytes)

MIB = 1 << 20

# HTTP/2 frame types and settings (RFC 9113 section 6).
FRAME_HEADERS, FRAME_RST_STREAM, FRAME_SETTINGS, FRAME_GOAWAY, FRAME_CONTINUATION = 0x1, 0x3, 0x4, 0x7, 0x9
SETTINGS_ACK = 0x1
SETTINGS_MAX_CONCURRENT_STREAMS = 0x3


def error_name(code: Optional[int]) -> str:
    if code is None:
        return "-"
    try:
        return h2.errors.ErrorCodes(code).name
    except ValueError:
        return f"0x{code:x}"


# ---------------------------------------------------------------- memory

def rss_bytes(pid: int) -> int:
    """VmRSS of `pid` from /proc/PID/status, in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


class RssSampler:
    """Samples a process's VmRSS every `interval` seconds in a thread;
    `peak` is the largest sample, `last_rise` when the peak last grew."""

    def __init__(self, pid: int, interval: float = 0.02):
        self.pid = pid
        self.interval = interval
        self.baseline = rss_bytes(pid)
        self.peak = self.baseline
        self.current = self.baseline
        self.last_rise = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rss-{pid}", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                value = rss_bytes(self.pid)
            except (OSError, RuntimeError):
                return  # the process is gone
            self.current = value
            if value > self.peak:
                self.peak = value
                self.last_rise = time.monotonic()
            self._stop.wait(self.interval)

    def start(self) -> "RssSampler":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def __enter__(self) -> "RssSampler":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def growth(self) -> int:
        return self.peak - self.baseline

    def settled(self, quiet: float) -> bool:
        """True once the peak has not grown for `quiet` seconds."""
        return time.monotonic() - self.last_rise >= quiet


def mib(n: float) -> str:
    return f"{n / MIB:.1f}"


# ---------------------------------------------------------------- HTTP/2

def h2_headers_frame(stream: int, path: str, method: str = "GET", authority: str = "e2e.test",
                     end_stream: bool = True, end_headers: bool = True,
                     extra: Iterable[tuple[str, str]] = ()) -> bytes:
    """A request HEADERS frame built by hand (literal HPACK fields, no
    dynamic table), so it can be sent any number of times, whole or in
    pieces, without a state machine."""
    fields = [(b":method", method.encode()), (b":scheme", b"http"), (b":path", path.encode()),
              (b":authority", authority.encode())] + [(k.encode(), v.encode()) for k, v in extra]
    flags = (END_STREAM if end_stream else 0) | (END_HEADERS if end_headers else 0)
    return h2_frame(FRAME_HEADERS, flags, stream, hpack_literal_block(fields))


@dataclass
class StreamRecord:
    """What the proxy did on one stream, times in seconds since the peer connected."""
    headers: Optional[dict] = None
    headers_at: Optional[float] = None
    trailers: Optional[dict] = None
    data_bytes: int = 0
    ended_at: Optional[float] = None
    reset: Optional[int] = None
    reset_at: Optional[float] = None

    @property
    def status(self) -> Optional[int]:
        return int(self.headers[":status"]) if self.headers and ":status" in self.headers else None

    def header(self, name: str) -> Optional[str]:
        for block in (self.headers or {}, self.trailers or {}):
            if name in block:
                return block[name]
        return None


class H2Peer:
    """One h2c connection (prior knowledge) that does only what it is told:
    it never returns flow-control credit unless `auto_credit`, never reads
    unless asked (`poll`, `wait_for`), and records everything the proxy sends
    per stream, plus GOAWAY and the close, each with its time."""

    def __init__(self, host: str, port: int, initial_window: Optional[int] = None,
                 rcvbuf: Optional[int] = None, auto_credit: bool = False, timeout: float = 10.0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            # Before connect, so the window scale the handshake agrees on is small too.
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.t0 = time.monotonic()
        self.auto_credit = auto_credit
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8", validate_inbound_headers=False))
        self.conn.initiate_connection()
        if initial_window is not None:
            self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: initial_window})
        self.streams: dict[int, StreamRecord] = {}
        self.server_settings: dict[int, int] = {}
        self.settings_at: Optional[float] = None
        self.goaway: Optional[tuple[int, int, bytes]] = None  # error code, last stream id, debug data
        self.goaway_at: Optional[float] = None
        self.closed_at: Optional[float] = None
        self.closed_by_reset = False
        self.protocol_error: Optional[str] = None
        self.bytes_received = 0
        self.flush()

    # ---------------------------------------------------------- sending
    def now(self) -> float:
        return time.monotonic() - self.t0

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data and self.closed_at is None:
            try:
                self.sock.sendall(data)
            except OSError:
                self._closed(reset=True)

    def request(self, path: str, method: str = "GET", end_stream: bool = True,
                extra: Iterable[tuple[str, str]] = (), authority: str = "e2e.test") -> int:
        """Sends one request's HEADERS (with END_STREAM unless told not to); returns the stream id."""
        stream = self.conn.get_next_available_stream_id()
        self.conn.send_headers(stream, [(":method", method), (":scheme", "http"), (":path", path),
                                        (":authority", authority), *extra], end_stream=end_stream)
        self.streams[stream] = StreamRecord()
        self.flush()
        return stream

    def open_streams(self, count: int, path: str, method: str = "GET", end_stream: bool = True,
                     extra: Iterable[tuple[str, str]] = ()) -> list[int]:
        """`count` requests in one write (the proxy reads them together)."""
        ids = []
        for _ in range(count):
            stream = self.conn.get_next_available_stream_id()
            self.conn.send_headers(stream, [(":method", method), (":scheme", "http"), (":path", path),
                                            (":authority", "e2e.test"), *extra], end_stream=end_stream)
            self.streams[stream] = StreamRecord()
            ids.append(stream)
        self.flush()
        return ids

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    # ---------------------------------------------------------- reading
    def _closed(self, reset: bool = False) -> None:
        if self.closed_at is None:
            self.closed_at = self.now()
            self.closed_by_reset = reset

    def _record(self, stream: int) -> StreamRecord:
        return self.streams.setdefault(stream, StreamRecord())

    def _handle(self, events: list) -> None:
        t = self.now()
        for event in events:
            if isinstance(event, h2.events.RemoteSettingsChanged):
                for code, setting in event.changed_settings.items():
                    self.server_settings[int(code)] = setting.new_value
                self.settings_at = self.settings_at if self.settings_at is not None else t
            elif isinstance(event, h2.events.ResponseReceived):
                r = self._record(event.stream_id)
                r.headers, r.headers_at = dict(event.headers), t
            elif isinstance(event, h2.events.TrailersReceived):
                self._record(event.stream_id).trailers = dict(event.headers)
            elif isinstance(event, h2.events.DataReceived):
                self._record(event.stream_id).data_bytes += len(event.data)
                if self.auto_credit and event.flow_controlled_length:
                    try:
                        self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    except h2.exceptions.StreamClosedError:
                        pass
            elif isinstance(event, h2.events.StreamEnded):
                self._record(event.stream_id).ended_at = t
            elif isinstance(event, h2.events.StreamReset):
                r = self._record(event.stream_id)
                r.reset, r.reset_at = int(event.error_code), t
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.goaway = (int(event.error_code), event.last_stream_id, event.additional_data or b"")
                self.goaway_at = t

    def poll(self, timeout: float) -> bool:
        """Reads whatever the proxy sends within `timeout` (one read at most);
        False once the connection is closed."""
        if self.closed_at is not None:
            return False
        ready, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        if not ready:
            return True
        try:
            data = self.sock.recv(1 << 20)
        except (ConnectionResetError, BrokenPipeError):
            self._closed(reset=True)
            return False
        except socket.timeout:
            return True
        if not data:
            self._closed()
            return False
        self.bytes_received += len(data)
        if self.protocol_error is None:
            try:
                self._handle(self.conn.receive_data(data))
            except h2.exceptions.ProtocolError as error:
                self.protocol_error = f"{type(error).__name__}: {error}"
        self.flush()
        return True

    def wait_for(self, predicate: Callable[["H2Peer"], bool], timeout: float) -> bool:
        """Reads until `predicate(self)` holds (True), the connection closes or
        `timeout` passes (False)."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate(self):
                return True
            left = deadline - time.monotonic()
            if left <= 0 or not self.poll(min(left, 0.1)) and not predicate(self):
                return predicate(self)

    def handshake(self, timeout: float = 5.0) -> dict[int, int]:
        """Reads until the proxy's SETTINGS arrived (h2 acknowledges them); returns them."""
        if not self.wait_for(lambda p: p.settings_at is not None, timeout):
            raise AssertionError(f"no SETTINGS from the proxy within {timeout}s")
        return self.server_settings

    @property
    def max_concurrent_streams(self) -> Optional[int]:
        return self.server_settings.get(SETTINGS_MAX_CONCURRENT_STREAMS)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "H2Peer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------- summaries
    def statuses(self, streams: Optional[Iterable[int]] = None) -> dict[object, int]:
        """How many streams got each status (None: no response), with
        ("reset", CODE) for streams reset before a response."""
        counts: dict[object, int] = {}
        for sid in (streams if streams is not None else self.streams):
            r = self.streams.get(sid, StreamRecord())
            key: object = r.status if r.status is not None else (
                ("reset", error_name(r.reset)) if r.reset is not None else None)
            counts[key] = counts.get(key, 0) + 1
        return counts

    def summary(self) -> str:
        """One line: statuses, resets, DATA received, GOAWAY, close."""
        parts = []
        labels: dict[str, int] = {}
        for r in self.streams.values():
            if r.status is not None:
                reason = r.header("swiftmesh-proxy-error")
                label = f"{r.status} {reason}" if reason else str(r.status)
            else:
                label = f"RST {error_name(r.reset)} before headers" if r.reset is not None else "no answer"
            labels[label] = labels.get(label, 0) + 1
        for label in sorted(labels, key=lambda k: -labels[k]):
            parts.append(f"{labels[label]}x {label}")
        resets_after = [r for r in self.streams.values() if r.reset is not None and r.status is not None]
        if resets_after:
            codes = sorted({error_name(r.reset) for r in resets_after})
            parts.append(f"{len(resets_after)} RST ({'/'.join(codes)}) after headers")
        cut = [r for r in self.streams.values() if r.reset is not None and r.headers
               and r.headers.get("content-length", "").isdigit() and r.data_bytes < int(r.headers["content-length"])]
        if cut:
            parts.append(f"{len(cut)} bodies cut short by the RST")
        data = sum(r.data_bytes for r in self.streams.values())
        if data:
            parts.append(f"{data} DATA bytes")
        if self.goaway:
            parts.append(f"GOAWAY {error_name(self.goaway[0])} at {self.goaway_at:.1f}s")
        if self.protocol_error:
            parts.append(f"h2 refused: {self.protocol_error[:60]}")
        parts.append(f"closed{' (reset)' if self.closed_by_reset else ''} at {self.closed_at:.1f}s"
                     if self.closed_at is not None else f"open at {self.now():.1f}s")
        return ", ".join(parts)


def h2_handshake_raw(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """On a raw socket: the client preface and empty SETTINGS, then reads
    until the proxy's SETTINGS came and acknowledges them. Returns what was
    read (possibly the start of further frames)."""
    sock.sendall(H2_PREFACE_AND_SETTINGS)
    got = b""
    deadline = time.monotonic() + timeout
    while not any(t == FRAME_SETTINGS and not f & SETTINGS_ACK for t, f, _, _ in h2_frames(got)):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no SETTINGS from the proxy within {timeout}s")
        sock.settimeout(left)
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("the proxy closed the connection before its SETTINGS")
        got += chunk
    sock.sendall(h2_frame(FRAME_SETTINGS, SETTINGS_ACK, 0, b""))
    return got


def h2_goaway_came(data: bytes) -> bool:
    """`trickle`'s `answered` for HTTP/2: a GOAWAY among the frames (SETTINGS and its ACK are not an answer)."""
    return goaway_of(data) is not None


def goaway_of(data: bytes) -> Optional[tuple[int, int]]:
    """(error code, last stream id) of the first GOAWAY among the frames in `data`."""
    for ftype, _, _, payload in h2_frames(data):
        if ftype == FRAME_GOAWAY and len(payload) >= 8:
            return int.from_bytes(payload[4:8], "big"), int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
    return None


# ---------------------------------------------------------------- never reading

def raw_socket(host: str, port: int, rcvbuf: Optional[int] = None, timeout: float = 10.0) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect((host, port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


@dataclass
class UnreadResult:
    sent: int              # bytes the proxy's side took
    requests: int          # whole requests among them
    stalled: bool          # the proxy stopped taking bytes for `stall` seconds
    seconds: float
    error: Optional[str] = None  # the connection failed while sending (reset, EPIPE)

    def describe(self) -> str:
        how = (f"connection failed ({self.error})" if self.error else
               "proxy stopped reading" if self.stalled else "all taken")
        return f"sent {mib(self.sent)} MiB ({self.requests} requests) in {self.seconds:.1f}s, {how}"


def send_unread(sock: socket.socket, requests: Iterator[bytes], total: int, stall: float = 1.0,
                deadline: float = 15.0) -> UnreadResult:
    """Writes requests from `requests` without ever reading the socket, until
    `total` bytes are taken, the proxy takes nothing for `stall` seconds, the
    connection fails, or `deadline` seconds pass."""
    sock.setblocking(False)
    start = time.monotonic()
    sent = count = 0
    pending = b""
    pending_is_request_end = False
    last_progress = start
    error: Optional[str] = None
    stalled = False
    try:
        while sent < total and time.monotonic() - start < deadline:
            if not pending:
                pending = next(requests)
                pending_is_request_end = True
            _, writable, _ = select.select([], [sock], [], 0.05)
            if not writable:
                if time.monotonic() - last_progress >= stall:
                    stalled = True
                    break
                continue
            try:
                n = sock.send(pending)
            except BlockingIOError:
                continue
            except OSError as exc:
                error = errno.errorcode.get(exc.errno or 0, str(exc))
                break
            sent += n
            pending = pending[n:]
            last_progress = time.monotonic()
            if not pending and pending_is_request_end:
                count += 1
    finally:
        sock.setblocking(True)
    return UnreadResult(sent, count, stalled, time.monotonic() - start, error)


def h2_compact_get(stream: int, path: bytes, authority: bytes = b"e2e.test") -> bytes:
    """A GET's HEADERS frame (END_STREAM) in as few bytes as HPACK allows
    without a dynamic table: `:method GET` and `:scheme http` indexed (2, 6),
    `:path` and `:authority` literal with indexed names (4, 1)."""
    assert len(path) < 127 and len(authority) < 127
    block = b"\x82\x86\x04" + bytes([len(path)]) + path + b"\x01" + bytes([len(authority)]) + authority
    return h2_frame(FRAME_HEADERS, END_STREAM | END_HEADERS, stream, block)


def h1_requests(path: str) -> Iterator[bytes]:
    """The same pipelined GET, forever."""
    request = request_bytes("GET", path)
    while True:
        yield request


def h2_requests(path: str, first_stream: int = 1) -> Iterator[bytes]:
    """GETs of `path` (compact HEADERS frames, END_STREAM) on streams 1, 3, 5, ..., forever."""
    stream = first_stream
    encoded = path.encode()
    while True:
        yield h2_compact_get(stream, encoded)
        stream += 2


# ---------------------------------------------------------------- slowloris

@dataclass
class TrickleResult:
    sent: int                       # bytes sent before the proxy answered or closed
    total: int                      # bytes there were to send
    received: bytes                 # everything the proxy sent
    first_reply_at: Optional[float]  # seconds from the first byte sent
    closed_at: Optional[float]
    closed_by_reset: bool = False
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return self.sent == self.total

    def h1_head(self) -> Optional[tuple[int, dict]]:
        return parse_h1_head(self.received)

    def describe_h1(self) -> str:
        head = self.h1_head()
        what = "no answer" if head is None else (
            f"{head[0]} {head[1].get('swiftmesh-proxy-error', '')}".strip() + f" at {self.first_reply_at:.1f}s")
        return f"{what}, {self.close_text()} ({self.sent}/{self.total} bytes sent)"

    def describe_h2(self) -> str:
        goaway = goaway_of(self.received)
        what = "no frames" if goaway is None else f"GOAWAY {error_name(goaway[0])} at {self.first_reply_at:.1f}s"
        return f"{what}, {self.close_text()} ({self.sent}/{self.total} bytes sent)"

    def close_text(self) -> str:
        if self.closed_at is None:
            return f"still open at {self.seconds:.1f}s"
        return f"closed{' (reset)' if self.closed_by_reset else ''} at {self.closed_at:.1f}s"


def parse_h1_head(raw: bytes) -> Optional[tuple[int, dict]]:
    """(status, headers with lowercase names) of the first HTTP/1.1 response head in `raw`."""
    if b"\r\n\r\n" not in raw:
        return None
    try:
        status, _, headers = parse_head(raw.split(b"\r\n\r\n", 1)[0])
    except ValueError:
        return None
    return status, dict(headers)


def trickle(sock: socket.socket, data: bytes, interval: float, max_seconds: float,
            keep_waiting: bool = True, answered: Callable[[bytes], bool] = bool) -> TrickleResult:
    """Sends `data` one byte every `interval` seconds (the attack's own
    pace), reading whatever the proxy sends in between. Stops sending once
    the proxy answers (`answered(received)`: by default any byte; for HTTP/2
    pass `h2_goaway_came`) or closes; with `keep_waiting`, after that (or after
    the last byte) waits for the close. Never runs past `max_seconds`."""
    start = time.monotonic()
    received = b""
    first_reply: Optional[float] = None
    closed: Optional[float] = None
    by_reset = False
    sent = 0
    next_send = start

    def read_some(timeout: float) -> None:
        nonlocal received, first_reply, closed, by_reset
        ready, _, _ = select.select([sock], [], [], max(0.0, timeout))
        if not ready:
            return
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            closed, by_reset = time.monotonic() - start, True
            return
        if not chunk:
            closed = time.monotonic() - start
            return
        received += chunk
        if first_reply is None and answered(received):
            first_reply = time.monotonic() - start

    while closed is None and time.monotonic() - start < max_seconds:
        now = time.monotonic()
        if sent < len(data) and first_reply is None and now >= next_send:
            try:
                sock.sendall(data[sent:sent + 1])
            except OSError:
                closed, by_reset = now - start, True
                break
            sent += 1
            next_send += interval
            continue
        if not keep_waiting and (first_reply is not None or sent == len(data)):
            break
        wait = next_send - now if sent < len(data) and first_reply is None else 0.1
        read_some(min(wait, max_seconds - (now - start)))
    return TrickleResult(sent, len(data), received, first_reply, closed, by_reset, time.monotonic() - start)


def wait_closed(sock: socket.socket, timeout: float) -> tuple[bytes, Optional[float]]:
    """Reads until the peer closes (returns what came and when, in seconds
    from the call) or `timeout` passes (then None)."""
    start = time.monotonic()
    got = b""
    while True:
        left = timeout - (time.monotonic() - start)
        if left <= 0:
            return got, None
        ready, _, _ = select.select([sock], [], [], left)
        if not ready:
            continue
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return got, time.monotonic() - start
        if not chunk:
            return got, time.monotonic() - start
        got += chunk


# ---------------------------------------------------------------- others

@dataclass
class Bystander:
    """A normal client's request on a fresh connection, during an attack."""
    status: int
    reason: str
    seconds: float
    error: Optional[str] = None

    def describe(self) -> str:
        if self.error:
            return f"{self.error} after {self.seconds:.1f}s"
        return f"{self.status}{' ' + self.reason if self.reason else ''} in {self.seconds * 1000:.0f} ms"


def bystander_get(host: str, port: int, path: str, timeout: float = 5.0) -> Bystander:
    """One HTTP/1.1 GET on a fresh connection; never raises."""
    import http.client
    start = time.monotonic()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return Bystander(resp.status, resp.getheader("swiftmesh-proxy-error") or "", time.monotonic() - start)
    except (OSError, http.client.HTTPException) as exc:
        return Bystander(0, "", time.monotonic() - start, error=type(exc).__name__)
    finally:
        conn.close()


def describe_bystanders(results: list[Bystander]) -> str:
    """e.g. "3x 200 (slowest 4 ms)" or "2x 503 overflow, 1x 200 (slowest 9 ms)"."""
    grouped: dict[str, int] = {}
    for r in results:
        key = r.error or f"{r.status}{' ' + r.reason if r.reason else ''}"
        grouped[key] = grouped.get(key, 0) + 1
    slowest = max((r.seconds for r in results), default=0.0)
    return ", ".join(f"{n}x {k}" for k, n in grouped.items()) + f" (slowest {slowest * 1000:.0f} ms)"
