#!/usr/bin/env python3
"""The control plane's push, measured: INSTANCES registered instances (100
services), SUBSCRIBERS subscribed sidecars, and for each of CHANGES registry
changes the time from the change's request to the moment every subscriber
has a snapshot with it. The subscribers are lightweight, in this one process:
each is a Subscribe stream of its own (its own HTTP/2 connection, as a real
sidecar's) that calls svc-000 and four other services and acknowledges every
snapshot. Half the changes register an instance of svc-000, half remove it.
Also the control plane's RSS, idle with the registry loaded and at its peak.

This is a benchmark, not a test. It prints a table and, with --write-docs,
rewrites the control-plane section of docs/benchmarks.md.

Usage: bench/control_plane_push.py [--instances 1000] [--subscribers 100]
       [--changes 200] [--write-docs] [--binary .build/release/swiftmesh]
It installs what it needs (grpcio, grpcio-tools) from PyPI when missing.
"""
from __future__ import annotations

import argparse
import asyncio
import http.client
import importlib
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The mesh's root, read once the control plane made it: what subscribers verify it with.
ROOT_PEM: list[bytes] = [b""]
PROTO = REPO / "proto"


def ensure_packages() -> None:
    missing = [p for p, module in (("grpcio", "grpc"), ("grpcio-tools", "grpc_tools"))
               if importlib.util.find_spec(module) is None]
    if missing:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *missing], check=True)


def generate_stubs(into: Path) -> None:
    from grpc_tools import protoc
    status = protoc.main(["protoc", f"-I{PROTO}", f"--python_out={into}", f"--grpc_python_out={into}",
                          str(PROTO / "swiftmesh/v1/sidecar_discovery.proto")])
    if status != 0:
        raise SystemExit("protoc failed")
    sys.path.insert(0, str(into))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class API:
    def __init__(self, port: int):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def call(self, method: str, path: str, body: dict | None = None) -> int:
        self.connection.request(method, path, body=json.dumps(body) if body is not None else None)
        response = self.connection.getresponse()
        response.read()
        return response.status


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the control plane exited with {process.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit("the control plane did not listen in time")


class Tracker:
    """Which subscribers have seen the change in flight, and when."""

    def __init__(self, subscribers: int):
        self.subscribers = subscribers
        self.address: str | None = None
        self.present = True
        self.seen: dict[int, float] = {}
        self.done = asyncio.Event()
        self.snapshots = 0

    def expect(self, address: str, present: bool) -> None:
        self.address, self.present, self.seen = address, present, {}
        self.done = asyncio.Event()

    def snapshot(self, subscriber: int, at: float, addresses: set[str]) -> None:
        self.snapshots += 1
        if self.address is None or subscriber in self.seen:
            return
        if (self.address in addresses) == self.present:
            self.seen[subscriber] = at
            if len(self.seen) == self.subscribers:
                self.done.set()


async def subscriber(index: int, address: str, upstreams: list[str], tracker: Tracker, ready: asyncio.Event,
                     counter: list[int], pb2, pb2_grpc) -> None:
    import grpc
    # The sidecar API runs TLS with a certificate from the mesh's root, for this fixed name.
    credentials = grpc.ssl_channel_credentials(root_certificates=ROOT_PEM[0])
    channel = grpc.aio.secure_channel(address, credentials,
                                      options=[("grpc.ssl_target_name_override", "control-plane.swiftmesh")])
    stub = pb2_grpc.SidecarDiscoveryStub(channel)
    outbox: asyncio.Queue = asyncio.Queue()
    await outbox.put(pb2.SidecarMessage(hello=pb2.Hello(sidecar_id=f"bench-{index}", upstreams=upstreams)))

    async def requests():
        while True:
            yield await outbox.get()

    first = True
    async for message in stub.Subscribe(requests()):
        at = time.monotonic()
        snapshot = message.snapshot
        addresses = {f"{i.address}:{i.port}" for u in snapshot.upstreams if u.service == "svc-000" for i in u.instances}
        tracker.snapshot(index, at, addresses)
        await outbox.put(pb2.SidecarMessage(ack=pb2.Ack(version=snapshot.version)))
        if first:
            first = False
            counter[0] += 1
            if counter[0] == tracker.subscribers:
                ready.set()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def run(args: argparse.Namespace, pb2, pb2_grpc) -> dict:
    grpc_port, http_port = free_port(), free_port()
    data_dir = tempfile.mkdtemp(prefix="swiftmesh-push-bench-")
    process = subprocess.Popen(
        [args.binary, "control-plane", "--listen", f"127.0.0.1:{grpc_port}", "--http", f"127.0.0.1:{http_port}",
         # --dev: the benchmark registers through the HTTP API without the admin token.
         "--data-dir", data_dir, "--dev", "--log-level", "warning"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=sys.stderr)
    tasks: list[asyncio.Task] = []
    try:
        wait_for_port(grpc_port, process)
        wait_for_port(http_port, process)
        ROOT_PEM[0] = (Path(data_dir) / "ca" / "root.pem").read_bytes()
        api = API(http_port)
        services = [f"svc-{i:03d}" for i in range(100)]
        started = time.monotonic()
        for n in range(args.instances):
            service = services[n % len(services)]
            status = api.call("POST", f"/api/v1/services/{service}/instances",
                              {"address": f"10.{1 + n // 62500}.{n // 250 % 250}.{n % 250 + 1}:8080", "protocol": "http2"})
            assert status == 201, status
        register_seconds = time.monotonic() - started

        tracker = Tracker(args.subscribers)
        ready, counter = asyncio.Event(), [0]
        rng = random.Random(1)
        for index in range(args.subscribers):
            upstreams = ["svc-000"] + rng.sample(services[1:], 4)
            tasks.append(asyncio.create_task(subscriber(index, f"127.0.0.1:{grpc_port}", upstreams, tracker, ready,
                                                        counter, pb2, pb2_grpc)))
        await asyncio.wait_for(ready.wait(), 60)
        idle_rss = rss_kib(process.pid, "VmRSS")

        loop = asyncio.get_running_loop()
        latencies: dict[str, list[float]] = {"register": [], "remove": []}
        per_subscriber: list[float] = []
        for change in range(args.changes):
            address = f"10.250.{change // 250}.{change % 250 + 1}:9000"
            for present in (True, False):
                tracker.expect(address, present)
                sent = time.monotonic()
                if present:
                    status = await loop.run_in_executor(None, api.call, "POST", "/api/v1/services/svc-000/instances",
                                                        {"address": address, "protocol": "http2"})
                else:
                    status = await loop.run_in_executor(None, api.call, "DELETE",
                                                        f"/api/v1/services/svc-000/instances/{address}")
                assert status in (200, 201), status
                await asyncio.wait_for(tracker.done.wait(), 30)
                latencies["register" if present else "remove"].append(max(tracker.seen.values()) - sent)
                per_subscriber += [at - sent for at in tracker.seen.values()]
        return {
            "instances": args.instances, "subscribers": args.subscribers, "changes": 2 * args.changes,
            "register_seconds": register_seconds,
            "all_p50_ms": 1000 * percentile(latencies["register"] + latencies["remove"], 50),
            "all_p99_ms": 1000 * percentile(latencies["register"] + latencies["remove"], 99),
            "register_p50_ms": 1000 * percentile(latencies["register"], 50),
            "remove_p50_ms": 1000 * percentile(latencies["remove"], 50),
            "one_p50_ms": 1000 * percentile(per_subscriber, 50),
            "one_p99_ms": 1000 * percentile(per_subscriber, 99),
            "idle_rss_mib": idle_rss / 1024, "peak_rss_mib": rss_kib(process.pid, "VmHWM") / 1024,
            "snapshots": tracker.snapshots,
        }
    finally:
        for task in tasks:
            task.cancel()
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


SECTION_START = "<!-- control-plane-push:start -->"
SECTION_END = "<!-- control-plane-push:end -->"


def report(result: dict, command: str) -> str:
    return "\n".join([
        SECTION_START,
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with `{command}`: "
        f"{result['instances']} registered instances in 100 services, {result['subscribers']} subscribed sidecars, "
        f"{result['changes']} changes (half registrations, half removals of an instance of the service every "
        f"subscriber calls).",
        "",
        "| from a change to | p50 | p99 |",
        "| --- | ---: | ---: |",
        f"| every subscriber having it | {result['all_p50_ms']:.2f} ms | {result['all_p99_ms']:.2f} ms |",
        f"| one subscriber having it | {result['one_p50_ms']:.2f} ms | {result['one_p99_ms']:.2f} ms |",
        "",
        f"Registering the {result['instances']} instances took {result['register_seconds']:.2f} s over one HTTP "
        f"connection. Control plane RSS: {result['idle_rss_mib']:.1f} MiB with the registry loaded and every "
        f"sidecar subscribed, {result['peak_rss_mib']:.1f} MiB at its peak.",
        SECTION_END,
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--changes", type=int, default=100, help="registrations, each followed by its removal")
    parser.add_argument("--binary", default=os.environ.get("SWIFTMESH_BIN", str(REPO / ".build/release/swiftmesh")))
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    ensure_packages()
    with tempfile.TemporaryDirectory() as stubs:
        generate_stubs(Path(stubs))
        from swiftmesh.v1 import sidecar_discovery_pb2 as pb2, sidecar_discovery_pb2_grpc as pb2_grpc
        result = asyncio.run(run(args, pb2, pb2_grpc))
    command = "bench/control_plane_push.py " + " ".join(sys.argv[1:])
    text = report(result, command.strip())
    print(text)
    if args.write_docs:
        docs = REPO / "docs/benchmarks.md"
        content = docs.read_text()
        if SECTION_START in content:
            before, rest = content.split(SECTION_START, 1)
            content = before + text + rest.split(SECTION_END, 1)[1]
        else:
            content = content.rstrip() + "\n\n## Control plane: push to sidecars\n\n" + text + "\n"
        docs.write_text(content)


if __name__ == "__main__":
    main()
