"""Ports for processes that must be told theirs up front, and ports that
must stay unused.

Why not "bind port 0, read the port, close": the kernel may hand that port
out again at once, to a Python peer binding port 0 or to any outgoing
connection, and a proxy told to listen there, or an endpoint meant to be
dead, then meets someone else's socket. So:

- `free_port()` hands out ports from a window *outside* the kernel's
  ephemeral range (which bind(0) and outgoing connections draw from), each
  port once per test session (from a random start, so that two sessions on
  one machine do not walk it in step), checked bindable when handed out. Nothing
  else on the machine is given these ports by the kernel, and no two callers
  get the same one.
- `UnusedPort` holds a port bound but never listening for as long as it is
  open: a connection to it is refused and nobody else can bind it. Tests
  use it (through `mesh.unused_address()`) for an endpoint that must be
  dead or an address nobody may answer on.

With pytest-xdist, each worker takes its own slice of the window.
"""
from __future__ import annotations

import os
import random
import socket
import threading
from typing import Optional

# The window is this wide at most; a session uses a few thousand ports.
_WINDOW = 16384
# Never below this: well-known and registered services live down there.
_LOWEST = 10000


def _ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(part) for part in f.read().split())
            return low, high
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def _reserved_window() -> Optional[range]:
    """Ports outside the ephemeral range, or None when it covers nearly everything."""
    low, high = _ephemeral_range()
    if low - _LOWEST >= 2048:
        return range(max(_LOWEST, low - _WINDOW), low)
    if 65535 - high >= 2048:
        return range(high + 1, min(65536, high + 1 + _WINDOW))
    return None


def _worker_slice(window: range) -> range:
    """This pytest-xdist worker's part of the window (all of it without xdist)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    size = len(window) // max(count, 1)
    start = window.start + index * size
    return range(start, start + size)


def _bindable(port: int, host: str, kind: int) -> bool:
    # No SO_REUSEADDR: a port in TIME_WAIT or bound by anyone is skipped.
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


class _Allocator:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        window = _reserved_window()
        self._slice = None if window is None else _worker_slice(window)
        # A random start, so that two sessions on one machine (two
        # checkouts testing at once) do not walk the window in step.
        self._next = 0 if self._slice is None else random.randrange(self._slice.start, self._slice.stop)
        self._taken = 0

    def take(self, host: str, kind: int) -> int:
        with self._lock:
            if self._slice is None:
                # The ephemeral range covers the whole port space: no window
                # the kernel leaves alone, so fall back to its choice.
                with socket.socket(socket.AF_INET, kind) as s:
                    s.bind((host, 0))
                    return s.getsockname()[1]
            while self._taken < len(self._slice):
                port = self._next
                self._taken += 1
                self._next = self._next + 1 if self._next + 1 < self._slice.stop else self._slice.start
                if _bindable(port, host, kind):
                    return port
            raise RuntimeError(f"the test session used every port of {self._slice.start}-{self._slice.stop - 1}")


_ALLOCATOR = _Allocator()


def free_port(host: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
    """A port nobody uses, that the kernel will not hand out and this
    session has not handed out before: for processes that must be told a
    port up front (the proxy, nginx, dnsmasq). Python peers bind port 0
    themselves and report the port."""
    return _ALLOCATOR.take(host, kind)


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` different ports, as `free_port` gives them."""
    return [free_port(host) for _ in range(count)]


class UnusedPort:
    """A port bound and never listening while this is open: connecting to
    it is refused, and no other socket can bind it."""

    def __init__(self, host: str = "127.0.0.1"):
        self.host = host
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind((host, free_port(host)))
        self.port: int = self._socket.getsockname()[1]

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def close(self) -> None:
        self._socket.close()

    def __enter__(self) -> "UnusedPort":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
