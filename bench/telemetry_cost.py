#!/usr/bin/env python3
"""What access logs and tracing cost: the same SwiftMesh proxy (one
event-loop thread) three ways, with neither, with the access log on (every
request, one JSON line each, appended to a file) and with tracing on (every
request sampled, spans posted over OTLP/HTTP to the anchors' nginx, which
answers 200 and discards them), measured in rotating runs with h2load (h2c)
and wrk (HTTP/1.1 keep-alive) against the anchors' nginx backend.

The target for access logs: at most 10% fewer requests/s. This is a
benchmark, not a test. It prints the medians and, with --write-docs,
rewrites the telemetry section of docs/benchmarks.md.

Usage: bench/telemetry_cost.py [--rounds 3] [--duration 10] [--write-docs]
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
import urllib.request
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


# Each setup's top-level config lines.
SETUPS = {
    "off": lambda directory: "",
    "log": lambda directory: f"accessLog: {{ path: {directory / 'access.log'} }}\n",
    "trace": lambda directory: f"tracing: {{ otlpEndpoint: 'http://127.0.0.1:{BACKEND_H1}/v1/traces' }}\n",
}


def start_proxy(binary: str, directory: Path, name: str) -> tuple[subprocess.Popen, int, int, int]:
    h1, h2, admin = free_port(), free_port(), free_port()
    config = directory / f"{name}.yaml"
    config.write_text(
        SETUPS[name](directory)
        + f"admin: {{ listen: 127.0.0.1:{admin} }}\n"
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
    return process, h1, h2, admin


def spans_counted(admin: int) -> dict[str, int]:
    """swiftmesh_tracing_spans_total by result, from the proxy's /metrics."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=5).read().decode()
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r'swiftmesh_tracing_spans_total\{result="(\w+)"\} (\d+)', text)}


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
        names = list(SETUPS)
        proxies = {name: start_proxy(args.binary, directory, name) for name in names}
        try:
            for round_number in range(args.rounds):
                # Rotated, so no setup always runs first or last.
                order = names[round_number % 3:] + names[:round_number % 3]
                for protocol, run in (("h2c", h2load), ("http1", wrk)):
                    for setup in order:
                        _, h1, h2, _ = proxies[setup]
                        rate = run(h2 if protocol == "h2c" else h1, args.duration)
                        results.setdefault((protocol, setup), []).append(rate)
                        print(f"round {round_number + 1}  {protocol:5}  {setup:5}  {rate:10,.0f} req/s", flush=True)
            lines = sum(1 for _ in (directory / "access.log").open())
            # The last batches leave within a second; every span must have reached the receiver.
            time.sleep(2)
            spans = spans_counted(proxies["trace"][3])
        finally:
            for process, *_ in proxies.values():
                process.terminate()
                process.wait(20)
    if started_anchors:
        subprocess.run([str(ANCHORS), "stop"], capture_output=True)

    rows = []
    for protocol in ("h2c", "http1"):
        off = statistics.median(results[(protocol, "off")])
        row = f"| {protocol} | {off:,.0f} |"
        for setup in ("log", "trace"):
            # Each round's ratio comes from runs seconds apart under the same
            # conditions; the headline is their median, as in bench/run.sh.
            ratios = [b / a for a, b in zip(results[(protocol, "off")], results[(protocol, setup)])]
            row += (f" {statistics.median(results[(protocol, setup)]):,.0f} | **{statistics.median(ratios):.2f}x** "
                    f"({', '.join(f'{r:.2f}' for r in ratios)}) |")
        rows.append(row + "\n")
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = (f"Measured {when} with `bench/telemetry_cost.py --write-docs` on {os.cpu_count()} cores: one SwiftMesh "
            f"proxy (`--threads 1`) with neither, with the access log (every request, appended to a file; "
            f"{lines:,} lines written) and with tracing (every request sampled; {spans.get('exported', 0):,} spans "
            f"exported over OTLP/HTTP, {spans.get('dropped', 0):,} dropped), "
            f"rotating runs of {args.duration} s, h2load `-c10 -m10` and wrk `-c50`.\n\n"
            "| protocol | off (req/s) | access log (req/s) | log / off (rounds) | tracing (req/s) | tracing / off (rounds) |\n"
            "| --- | ---: | ---: | ---: | ---: | ---: |\n"
            + "".join(rows))
    print()
    print(text)
    if args.write_docs:
        docs = REPO / "docs/benchmarks.md"
        current = docs.read_text()
        start, end = "<!-- telemetry:start -->\n", "<!-- telemetry:end -->"
        before, rest = current.split(start, 1)
        after = rest.split(end, 1)[1]
        docs.write_text(before + start + text + end + after)


if __name__ == "__main__":
    main()
