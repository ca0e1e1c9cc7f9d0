#!/usr/bin/env python3
"""CPU time per request at a fixed offered rate: the steadiest figure on a
2-core machine, where requests/s at saturation moves with whatever else
the cores do. Each proxy gets the same load (h2load with --rps, HTTP/1.1
keep-alive or h2c) in front of the anchors' nginx backend; its CPU time
(utime + stime from /proc/PID/stat) over the measured window, divided by
the requests completed, is the figure. Rounds alternate the proxies, so a
noisy moment costs every proxy alike; the report takes medians.

Proxies: HAProxy and nginx from ../shared/bench/anchors.sh (started if
needed), and any number of SwiftMesh binaries, one thread each, e.g. the
one before a change and the one after:

  bench/cpu_per_request.py --swiftmesh before=/tmp/old/swiftmesh --swiftmesh after=.build/release/swiftmesh

This is a benchmark, not a test: it fails only when a run cannot be measured.
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ANCHORS = REPO.parent / "shared" / "bench" / "anchors.sh"
ANCHORS_DIR = Path("/tmp/anchors")
BACKEND = {"h1": 18080, "h2c": 18081}
ANCHOR_PORTS = {("haproxy", "h1"): 18091, ("haproxy", "h2c"): 18093, ("nginx", "h1"): 18090, ("nginx", "h2c"): 18092}
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def pids_of(pidfile: Path) -> list[int]:
    """A daemon's master and its workers (nginx), or the one process (HAProxy)."""
    master = int(pidfile.read_text().strip())
    children = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout.split()
    return [master, *map(int, children)]


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SwiftMesh:
    def __init__(self, label: str, binary: str, workdir: Path):
        self.label = label
        self.h1, self.h2c, self.admin = free_port(), free_port(), free_port()
        config = workdir / f"{label}.yaml"
        config.write_text(f"""admin: {{ listen: 127.0.0.1:{self.admin} }}
listeners:
  - {{ name: h1, listen: 127.0.0.1:{self.h1}, routes: [ {{ cluster: h1 }} ] }}
  - {{ name: h2, listen: 127.0.0.1:{self.h2c}, routes: [ {{ cluster: h2 }} ] }}
clusters:
  - {{ name: h1, protocol: http1, endpoints: [127.0.0.1:{BACKEND['h1']}] }}
  - {{ name: h2, protocol: http2, endpoints: [127.0.0.1:{BACKEND['h2c']}] }}
""")
        self.proc = subprocess.Popen([binary, "proxy", "--config", str(config), "--threads", "1"],
                                     stdout=subprocess.DEVNULL, stderr=open(workdir / f"{label}.log", "wb"))
        deadline = time.monotonic() + 30
        while not listening(self.admin) or not listening(self.h2c):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{label}: {binary} did not start (see {workdir}/{label}.log)")
            time.sleep(0.1)

    def port(self, protocol: str) -> int:
        return self.h1 if protocol == "h1" else self.h2c

    def pids(self) -> list[int]:
        return [self.proc.pid]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class Anchor:
    def __init__(self, label: str):
        self.label = label

    def port(self, protocol: str) -> int:
        return ANCHOR_PORTS[(self.label, protocol)]

    def pids(self) -> list[int]:
        return pids_of(ANCHORS_DIR / ("haproxy.pid" if self.label == "haproxy" else "proxy.pid"))

    def stop(self) -> None:
        pass


def load(port: int, protocol: str, clients: int, rate: int, seconds: int) -> int:
    """h2load at `rate` requests/s per client for `seconds`; the requests that succeeded."""
    command = ["h2load", f"http://127.0.0.1:{port}/", "-c", str(clients), "-m", "1", "--rps", str(rate),
               "-D", str(seconds)]
    if protocol == "h1":
        command.insert(1, "--h1")
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60).stdout
    for line in out.splitlines():
        if line.startswith("requests:"):
            # requests: N total, N started, N done, N succeeded, N failed, N errored, N timeout
            words = line.replace(",", "").split()
            return int(words[words.index("succeeded") - 1])
    raise SystemExit(f"h2load printed no requests line:\n{out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--swiftmesh", action="append", default=[], metavar="LABEL=BINARY",
                        help="a SwiftMesh binary to measure (repeatable); default after=.build/release/swiftmesh")
    parser.add_argument("--protocol", choices=["h1", "h2c", "both"], default="both")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rate", type=int, default=1500, help="requests/s per client")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-anchors", action="store_true", help="measure only the SwiftMesh binaries")
    args = parser.parse_args()

    if not listening(BACKEND["h1"]):
        subprocess.run([str(ANCHORS), "start"], check=True, stdout=subprocess.DEVNULL)
    workdir = Path(tempfile.mkdtemp(prefix="cpu-per-request-"))
    binaries = [entry.split("=", 1) for entry in (args.swiftmesh or [f"after={REPO / '.build/release/swiftmesh'}"])]
    proxies = ([] if args.no_anchors else [Anchor("haproxy"), Anchor("nginx")]) \
        + [SwiftMesh(label, binary, workdir) for label, binary in binaries]
    protocols = ["h1", "h2c"] if args.protocol == "both" else [args.protocol]
    offered = args.clients * args.rate
    results: dict[tuple[str, str], list[float]] = {}
    try:
        for round_number in range(1, args.rounds + 1):
            for protocol in protocols:
                for proxy in proxies:
                    port = proxy.port(protocol)
                    load(port, protocol, args.clients, args.rate, 2)  # warm-up, unmeasured
                    pids = proxy.pids()
                    before = sum(cpu_seconds(pid) for pid in pids)
                    done = load(port, protocol, args.clients, args.rate, args.seconds)
                    used = sum(cpu_seconds(pid) for pid in pids) - before
                    micros = used / max(done, 1) * 1e6
                    results.setdefault((proxy.label, protocol), []).append(micros)
                    print(f"round {round_number} {protocol:4} {proxy.label:10} {done:7} requests "
                          f"{used:6.2f} s CPU  {micros:6.1f} us/request", file=sys.stderr)
    finally:
        for proxy in proxies:
            proxy.stop()

    print(f"\nCPU per request at {offered:,} requests/s offered ({args.clients} connections x {args.rate}/s, "
          f"{args.seconds} s, median of {args.rounds} rounds):\n")
    labels = [proxy.label for proxy in proxies]
    print("| protocol | " + " | ".join(labels) + " |")
    print("|---|" + "---:|" * len(labels))
    for protocol in protocols:
        cells = [f"{statistics.median(results[(label, protocol)]):.1f} us" for label in labels]
        print(f"| {protocol} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
