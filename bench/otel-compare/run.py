#!/usr/bin/env python3
"""SwiftMesh's span recorder against swift-otel (swift-distributed-tracing's
tracer with swift-otel's batch span processor and OTLP/HTTP exporter), the
same spans on one event loop at fixed rates. Prints, per library and rate,
the medians over rounds of: nanoseconds per span on the loop, the whole
process's CPU per span (export included), and the share of spans the
receiver got. The first build fetches and compiles swift-otel (about
10 minutes on 2 cores); CI never builds this package.

usage: python3 bench/otel-compare/run.py [--rates 5000,20000] [--seconds 3] [--rounds 3]
"""
from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="5000,20000")
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    # As scripts/build: the proxy is compiled without exclusivity checks, so both sides are.
    subprocess.run(["swift", "build", "-c", "release", "-Xswiftc", "-enforce-exclusivity=unchecked"],
                   cwd=HERE, check=True)
    binary = os.path.join(HERE, ".build", "release", "otelbench")
    port = free_port()
    sink = subprocess.Popen([sys.executable, os.path.join(HERE, "sink.py"), str(port)], stdout=subprocess.PIPE, text=True)
    try:
        if sink.stdout.readline().strip() != "ready":
            sys.exit("the receiver did not start")
        rows = []
        for rate in [int(r) for r in args.rates.split(",")]:
            results: dict[str, list[dict[str, float]]] = {"ours": [], "otel": []}
            for _ in range(args.rounds):
                for mode in results:  # interleaved, so drift hits both alike
                    out = subprocess.run([binary, mode, str(port), str(rate), str(args.seconds)],
                                         capture_output=True, text=True, timeout=300, check=True).stdout
                    fields = dict(re.findall(r"(\w+)=([\d.]+)", out.splitlines()[-1]))
                    results[mode].append({k: float(v) for k, v in fields.items()})
            for mode, runs in results.items():
                def median(key: str) -> float:
                    return statistics.median(r[key] for r in runs)
                rows.append((mode, rate, median("recording_ns_per_span"), median("process_cpu_ns_per_span"),
                             statistics.median(r["received"] / r["produced"] for r in runs)))
        print("| library | spans/s | loop µs per span | process CPU µs per span | spans received |")
        print("|---|---:|---:|---:|---:|")
        for mode, rate, loop_ns, cpu_ns, received in rows:
            name = "SwiftMesh SpanRecorder" if mode == "ours" else "swift-otel 1.6.0"
            print(f"| {name} | {rate:,} | {loop_ns / 1000:.1f} | {cpu_ns / 1000:.1f} | {received:.0%} |")
    finally:
        sink.terminate()
        try:
            sink.wait(timeout=5)
        except subprocess.TimeoutExpired:
            sink.kill()
            sink.wait()


if __name__ == "__main__":
    main()
