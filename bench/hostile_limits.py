#!/usr/bin/env python3
"""What hostile clients can make one proxy hold: each attack against a
fresh `swiftmesh proxy --threads 1` (one listener, a route for /only to one
cluster of one local HTTP/1.1 backend, everything else answered 404
no_route by the proxy itself), with the proxy's resident set (VmRSS) before,
at its peak during, and after the attack, what normal clients on fresh
connections got meanwhile, and what the attacker got (statuses, resets,
GOAWAY, close, and when).

Attacks:
  window0          h2c, N streams each a GET for a 1 MiB body, with
                   SETTINGS_INITIAL_WINDOW_SIZE 0 and never a WINDOW_UPDATE
  open-streams     h2c, N POSTs whose body never comes, against a cluster with
                   circuitBreaker.maxRequests 10
  unread-local-h2  h2c requests the proxy answers itself (404), written
                   without ever reading the socket (SO_RCVBUF 4 KiB)
  unread-local-h1  the same as pipelined HTTP/1.1 on a raw socket
  slowloris-h1     an HTTP/1.1 request head, one byte every 0.5 s
  slowloris-h2     an HTTP/2 HEADERS frame, one byte every 0.5 s
  unfinished-h2    a HEADERS frame without END_HEADERS, CONTINUATION never sent
  silent-body-h1   Content-Length: 100 and no body
  silent-body-h2   a stream's HEADERS without END_STREAM, then no frames
N is what the proxy's SETTINGS_MAX_CONCURRENT_STREAMS allows, at most --streams.

  bench/hostile_limits.py --binary /tmp/swiftmesh-before
  bench/hostile_limits.py --limits '{"requestHeadersTimeout": "2s", "streamIdleTimeout": "3s"}'

--limits adds keys under the listener's `limits:` (a binary that does not
know them refuses the config). Every wait is bounded (--seconds per attack);
every process started is stopped and reaped. Peers: the `h2` package and
raw sockets, from tests/e2e/support. This is a benchmark, not a test: it
fails only when an attack cannot be run.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from support import hostile as h  # noqa: E402
from support.config import cluster, route, single_listener  # noqa: E402
from support.http_backend import HTTPBackend  # noqa: E402
from support.proxy import LIVE, Proxy, metric_sum  # noqa: E402
from support.rawhttp import request_bytes  # noqa: E402

BODY = 1 << 20


@dataclass
class Row:
    attack: str
    before: int
    peak: int
    after: int
    others: str
    attacker: str


class Run:
    """One attack's proxy, backend and RSS sampler."""

    def __init__(self, args: argparse.Namespace, workdir: Path, backend: HTTPBackend, name: str,
                 max_requests: Optional[int] = None):
        self.args = args
        fields = {"circuitBreaker": {"maxRequests": max_requests}} if max_requests else {}
        config = single_listener([route("app", match={"pathPrefix": "/only"})], [cluster("app", [backend], **fields)],
                                 limits=args.limits or None, drainTimeout="0s")
        self.proxy = Proxy(workdir / name, config, name=name, threads=1)
        try:
            self.proxy.start(timeout=30)
            # Warm: one request through the cluster, one answered locally.
            h.bystander_get(self.proxy.host, self.proxy.port, "/only/warm")
            h.bystander_get(self.proxy.host, self.proxy.port, "/nowhere/warm")
            self.pid = self.proxy.proc.pid
            self.sampler = h.RssSampler(self.pid).start()
        except BaseException:
            self.proxy.stop()
            raise

    def others(self, count: int = 3) -> str:
        """`count` normal GETs, each on a fresh connection, one after another."""
        return h.describe_bystanders([h.bystander_get(self.proxy.host, self.proxy.port, "/only/normal", timeout=5)
                                      for _ in range(count)])

    def finish(self, attack: str, others: str, attacker: str, release: Callable[[], None]) -> Row:
        """Closes the attacker (`release`), lets the proxy settle (bounded), stops it."""
        release()
        self.sampler.stop()
        settle_until = time.monotonic() + 3
        after = h.rss_bytes(self.pid)
        while time.monotonic() < settle_until:
            time.sleep(0.2)  # a benchmark's settle period, not synchronization
            after = h.rss_bytes(self.pid)
        held = sum(c["circuitBreaker"]["requests"] for c in self.proxy.admin_json("/clusters")["clusters"])
        if held:
            attacker += f"; {held} cluster requests still in flight 3 s after it left"
        row = Row(attack, self.sampler.baseline, self.sampler.peak, after, others, attacker)
        self.proxy.stop()
        print(f"  {attack}: {h.mib(row.before)} / {h.mib(row.peak)} / {h.mib(row.after)} MiB; "
              f"others: {others}; attacker: {attacker}", file=sys.stderr)
        return row


# ---------------------------------------------------------------- attacks

def no_route_answers(p: Proxy) -> int:
    return int(metric_sum(p.metrics(), "swiftmesh_proxy_errors_total", reason="no_route"))


def window0(run: Run) -> Row:
    p = run.proxy
    peer = h.H2Peer(p.host, p.port, initial_window=0)
    peer.handshake()
    n = min(peer.max_concurrent_streams or run.args.streams, run.args.streams)
    ids = peer.open_streams(n, f"/only/big?size={BODY}")
    peer.wait_for(lambda q: all(q.streams[i].headers or q.streams[i].reset is not None for i in ids) or
                  q.closed_at is not None, timeout=min(5.0, run.args.seconds))
    others = run.others()
    end = time.monotonic() + max(0.0, run.args.seconds - peer.now())
    while time.monotonic() < end and peer.poll(min(0.2, max(0.0, end - time.monotonic()))):
        pass
    attacker = f"N={n}: " + peer.summary()
    return run.finish("window0", others, attacker, peer.close)


def open_streams(run: Run) -> Row:
    p = run.proxy
    # Returns credit for what it reads: the attack is the bodies it never sends.
    peer = h.H2Peer(p.host, p.port, auto_credit=True)
    peer.handshake()
    n = min(peer.max_concurrent_streams or run.args.streams, run.args.streams)
    ids = peer.open_streams(n, "/only/upload", method="POST", end_stream=False,
                            extra=[("content-type", "application/octet-stream")])
    # Answers come at once for the streams turned away; the others wait on their bodies.
    peer.wait_for(lambda q: q.closed_at is not None or sum(
        1 for i in ids if q.streams[i].headers or q.streams[i].reset is not None) >= n - 10, timeout=5)
    peer.wait_for(lambda q: False, timeout=1.0)  # stragglers (bounded)
    breaker = next(c for c in p.admin_json("/clusters")["clusters"] if c["name"] == "app")["circuitBreaker"]
    others = run.others(5)
    reasons = sorted({r.header("swiftmesh-proxy-error") for r in peer.streams.values()
                      if r.header("swiftmesh-proxy-error")})
    attacker = (f"N={n}: {peer.summary()}; reasons {','.join(reasons) or '-'}; "
                f"cluster requests in flight {breaker.get('requests')}/{breaker.get('maxRequests')}")
    return run.finish("open-streams (maxRequests 10)", others, attacker, peer.close)


def unread_local(run: Run, protocol: str) -> Row:
    p = run.proxy
    sock = h.raw_socket(p.host, p.port, rcvbuf=4096)
    if protocol == "h2":
        h.h2_handshake_raw(sock)
        requests = h.h2_requests("/nowhere")
    else:
        requests = h.h1_requests("/nowhere")
    answered_before = no_route_answers(p)
    result = h.send_unread(sock, requests, total=run.args.unread_mib * h.MIB, stall=2.0, deadline=30.0)
    others = run.others()
    # What the proxy read and answered (what it took may sit in its kernel receive buffer).
    answered = no_route_answers(p) - answered_before
    # Afterwards: read what the proxy had queued, to see whether it was still open.
    got, closed = h.wait_closed(sock, timeout=0.5)
    state = f"closed after {len(got)} bytes of answers read" if closed is not None else "still open"
    if protocol == "h2":
        goaway = h.goaway_of(got[-4096:]) if got else None
        if goaway:
            state += f", GOAWAY {h.error_name(goaway[0])}"
    return run.finish(f"unread-local-{protocol}", others,
                      f"{result.describe()}; proxy counted {answered} no_route answers; {state}", sock.close)


def slowloris(run: Run, protocol: str) -> Row:
    p = run.proxy
    sock = h.raw_socket(p.host, p.port)
    if protocol == "h1":
        head = request_bytes("GET", "/only/slow", [("User-Agent", "slowloris"), ("Accept", "*/*"),
                                                     ("X-Padding", "p" * 40)])
        result = h.trickle(sock, head, interval=0.5, max_seconds=run.args.seconds)
        attacker = result.describe_h1()
        name = "slowloris-h1 (1 byte/0.5 s)"
    else:
        h.h2_handshake_raw(sock)
        frame = h.h2_headers_frame(1, "/only/slow", extra=[("user-agent", "slowloris"), ("x-padding", "p" * 40)])
        result = h.trickle(sock, frame, interval=0.5, max_seconds=run.args.seconds, answered=h.h2_goaway_came)
        attacker = result.describe_h2()
        name = "slowloris-h2 (HEADERS, 1 byte/0.5 s)"
    others = run.others()
    return run.finish(name, others, attacker, sock.close)


def unfinished_h2(run: Run) -> Row:
    p = run.proxy
    sock = h.raw_socket(p.host, p.port)
    h.h2_handshake_raw(sock)
    sock.sendall(h.h2_headers_frame(1, "/only/unfinished", end_headers=False))
    start = time.monotonic()
    got, closed = h.wait_closed(sock, timeout=run.args.seconds)
    goaway = h.goaway_of(got)
    attacker = ("no frames" if goaway is None else f"GOAWAY {h.error_name(goaway[0])}") + (
        f", closed at {closed:.1f}s" if closed is not None else f", still open at {time.monotonic() - start:.1f}s")
    others = run.others()
    return run.finish("unfinished-h2 (no CONTINUATION)", others, attacker, sock.close)


def silent_body(run: Run, protocol: str) -> Row:
    p = run.proxy
    if protocol == "h1":
        sock = h.raw_socket(p.host, p.port)
        sock.sendall(request_bytes("POST", "/only/upload", [("Content-Length", "100")]))
        got, closed = h.wait_closed(sock, timeout=run.args.seconds)
        head = h.parse_h1_head(got)
        what = "no answer" if head is None else f"{head[0]} {head[1].get('swiftmesh-proxy-error', '')}".strip()
        attacker = what + (f", closed at {closed:.1f}s" if closed is not None else
                           f", still open at {run.args.seconds:.0f}s")
        others = run.others()
        return run.finish("silent-body-h1 (Content-Length: 100)", others, attacker, sock.close)
    peer = h.H2Peer(p.host, p.port)
    peer.handshake()
    sid = peer.request("/only/upload", method="POST", end_stream=False)
    peer.wait_for(lambda q: q.closed_at is not None or q.streams[sid].ended_at is not None or
                  q.streams[sid].reset is not None, timeout=run.args.seconds)
    r = peer.streams[sid]
    reason = r.header("swiftmesh-proxy-error")
    attacker = peer.summary() + (f"; {reason} at {r.headers_at:.1f}s" if reason else "")
    others = run.others()
    return run.finish("silent-body-h2 (open stream, no frames)", others, attacker, peer.close)


ATTACKS: dict[str, Callable[[Run], Row]] = {
    "window0": window0,
    "open-streams": open_streams,
    "unread-local-h2": lambda run: unread_local(run, "h2"),
    "unread-local-h1": lambda run: unread_local(run, "h1"),
    "slowloris-h1": lambda run: slowloris(run, "h1"),
    "slowloris-h2": lambda run: slowloris(run, "h2"),
    "unfinished-h2": unfinished_h2,
    "silent-body-h1": lambda run: silent_body(run, "h1"),
    "silent-body-h2": lambda run: silent_body(run, "h2"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default=str(REPO / ".build" / "release" / "swiftmesh"))
    parser.add_argument("--streams", type=int, default=1024, help="at most this many streams (window0, open-streams)")
    parser.add_argument("--seconds", type=float, default=12.0, help="how long each attack waits for the proxy to act")
    parser.add_argument("--unread-mib", type=int, default=8, help="MiB of requests the unread attacks try to send")
    parser.add_argument("--limits", type=json.loads, default={}, help="JSON object added under the listener's limits")
    parser.add_argument("--only", default="", help="comma-separated attacks (default all): " + ", ".join(ATTACKS))
    args = parser.parse_args()
    binary = Path(args.binary).resolve()
    if not os.access(binary, os.X_OK):
        raise SystemExit(f"not an executable: {binary}")
    os.environ["SWIFTMESH_BIN"] = str(binary)
    names = [n for n in args.only.split(",") if n] or list(ATTACKS)
    unknown = [n for n in names if n not in ATTACKS]
    if unknown:
        raise SystemExit(f"unknown attacks {unknown}; known: {', '.join(ATTACKS)}")

    workdir = Path(tempfile.mkdtemp(prefix="hostile-limits-"))
    backend = HTTPBackend("app", backlog=4096).start()  # 1024 connections at once
    rows: list[Row] = []
    try:
        for name in names:
            print(f"== {name}", file=sys.stderr)
            run = Run(args, workdir, backend, name, max_requests=10 if name == "open-streams" else None)
            try:
                rows.append(ATTACKS[name](run))
            finally:
                run.sampler.stop()
                run.proxy.stop()
    finally:
        backend.stop()
        for proc in list(LIVE):  # whatever an attack that failed left behind
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
            LIVE.discard(proc)

    print(f"\nHostile clients against {binary} (--threads 1; --streams {args.streams}, --seconds {args.seconds:g}, "
          f"--unread-mib {args.unread_mib}{', --limits ' + json.dumps(args.limits) if args.limits else ''}).")
    print("RSS in MiB (VmRSS): before the attack (after one warm-up request), peak during, after the attacker "
          "left (3 s later). Others: normal GETs on fresh connections during the attack.\n")
    print("| attack | RSS before | peak | after | other clients got | attacker got |")
    print("|---|---:|---:|---:|---|---|")
    for r in rows:
        print(f"| {r.attack} | {h.mib(r.before)} | {h.mib(r.peak)} | {h.mib(r.after)} | {r.others} | {r.attacker} |")
    print(f"\n(proxy logs and configs: {workdir})")


if __name__ == "__main__":
    main()
