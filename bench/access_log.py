#!/usr/bin/env python3
"""What access logging costs: the same SwiftMesh proxy (one event-loop
thread) with the access log off and on (every request, one JSON line each,
appended to a file), measured in alternating runs with h2load (h2c) and wrk
(HTTP/1.1 keep-alive) against the anchors' nginx backend.

The target: with logs on, requests/s fall by at most 10%. This is a
benchmark, not a test. It prints the medians and, with --write-docs,
rewrites the access-log section of docs/benchmarks.md.

Usage: bench/access_log.py [--rounds 3] [--duration 10] [--write-docs]
       [--binary .build/release/swiftmesh]
It starts the anchors (../shared/bench/anchors.sh) unless they run, and
stops what it started.
"""
from __future__ import annotations

import argparse
import datetime
import os
import re
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ANCHORS = Path(os.environ.get("ANCHORS", REPO.parent / "shared/bench/anchors.sh"))
BACKEND_H1, BACKEND_H2 = 18080, 18081


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def start_proxy(binary: str, directory: Path, name: str, log: Path | None) -> tuple[subprocess.Popen, int, int]:
    h1, h2 = free_port(), free_port()
    config = directory / f"{name}.yaml"
    access = f"accessLog: {{ path: {log} }}\n" if log else ""
    config.write_text(
        access
        + "listeners:\n"
        + f"  - {{ name: h1, listen: 127.0.0.1:{h1}, routes: [ {{ match: {{ pathPrefix: / }}, cluster: h1 }} ] }}\n"
        + f"  - {{ name: h2, listen: 127.0.0.1:{h2}, routes: [ {{ match: {{ pathPrefix: / }}, cluster: h2 }} ] }}\n"
        + "clusters:\n"
        + f"  - {{ name: h1, protocol: http1, endpoints: [127.0.0.1:{BACKEND_H1}] }}\n"
        + f"  - {{ name: h2, protocol: http2, endpoints: [127.0.0.1:{BACKEND_H2}] }}\n")
    process = subprocess.Popen([binary, "proxy", "--config", str(config), "--threads", "1", "--log-level", "error"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not (listening(h1) and listening(h2)):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{name}: the proxy did not start")
        time.sleep(0.05)
    return process, h1, h2


def h2load(port: int, duration: int) -> float:
    out = subprocess.run(["h2load", "-t1", "-c10", "-m10", "-D", str(duration), f"http://127.0.0.1:{port}/"],
                         capture_output=True, text=True).stdout
    if not re.search(r"requests: .* 0 failed, 0 errored", out):
        raise SystemExit(f"h2load reported failures:\n{out}")
    return float(re.search(r"finished in [\d.]+s, ([\d.]+) req/s", out).group(1))


def wrk(port: int, duration: int) -> float:
    out = subprocess.run(["wrk", "-t1", "-c50", f"-d{duration}s", f"http://127.0.0.1:{port}/"],
                         capture_output=True, text=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"wrk reported errors:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--binary", default=str(REPO / ".build/release/swiftmesh"))
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()

    started_anchors = not listening(BACKEND_H2)
    if started_anchors:
        subprocess.run([str(ANCHORS), "start"], check=True, capture_output=True)
    results: dict[tuple[str, str], list[float]] = {}
    (REPO / "bench/results").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=REPO / "bench/results") as temp:
        directory = Path(temp)
        log = directory / "access.log"
        proxies = {"off": start_proxy(args.binary, directory, "off", None),
                   "on": start_proxy(args.binary, directory, "on", log)}
        try:
            for round_number in range(args.rounds):
                order = ["off", "on"] if round_number % 2 == 0 else ["on", "off"]
                for protocol, run in (("h2c", h2load), ("http1", wrk)):
                    for setup in order:
                        _, h1, h2 = proxies[setup]
                        rate = run(h2 if protocol == "h2c" else h1, args.duration)
                        results.setdefault((protocol, setup), []).append(rate)
                        print(f"round {round_number + 1}  {protocol:5}  log {setup:3}  {rate:10,.0f} req/s", flush=True)
            lines = sum(1 for _ in log.open())
        finally:
            for process, _, _ in proxies.values():
                process.terminate()
                process.wait(20)
    if started_anchors:
        subprocess.run([str(ANCHORS), "stop"], capture_output=True)

    rows = []
    for protocol in ("h2c", "http1"):
        off, on = (statistics.median(results[(protocol, s)]) for s in ("off", "on"))
        # Each round's ratio comes from back-to-back runs under the same
        # conditions; the headline is their median, as in bench/run.sh.
        ratios = [b / a for a, b in zip(results[(protocol, "off")], results[(protocol, "on")])]
        rows.append((protocol, off, on, statistics.median(ratios), ", ".join(f"{r:.2f}" for r in ratios)))
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = (f"Measured {when} with `bench/access_log.py --write-docs` on {os.cpu_count()} cores: one SwiftMesh "
            f"proxy (`--threads 1`) with the access log off and on (every request, appended to a file; "
            f"{lines:,} lines written), alternating runs of {args.duration} s, h2load `-c10 -m10` and wrk `-c50`.\n\n"
            "| protocol | log off (req/s, median) | log on (req/s, median) | on / off (median of rounds) | rounds |\n"
            "| --- | ---: | ---: | ---: | --- |\n"
            + "".join(f"| {p} | {off:,.0f} | {on:,.0f} | **{ratio:.2f}x** | {r} |\n" for p, off, on, ratio, r in rows))
    print()
    print(text)
    if args.write_docs:
        docs = REPO / "docs/benchmarks.md"
        current = docs.read_text()
        start, end = "<!-- access-log:start -->\n", "<!-- access-log:end -->"
        before, rest = current.split(start, 1)
        after = rest.split(end, 1)[1]
        docs.write_text(before + start + text + end + after)


if __name__ == "__main__":
    main()
