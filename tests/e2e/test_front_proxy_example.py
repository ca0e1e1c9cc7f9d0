"""examples/front-proxy and the numbers docs/tutorial.md shows: behind an
L4 balancer (HAProxy in TCP mode) every call of the gateway's one HTTP/2
connection lands on one user instance; the example's SwiftMesh front proxy
and the gateway's own client-side balancing spread them. The example's
files are used as they are, with their fixed ports swapped for free ones."""
from __future__ import annotations

import http.client
import json
import subprocess
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

from support import examples
from support.proxy import http_get, run_cli
from support.ports import free_port
from support.util import port_open, wait_until

FRONT_PROXY = Path(__file__).resolve().parents[2] / "examples" / "front-proxy"
USER_PORTS = ["127.0.0.1:50051", "127.0.0.1:50052", "127.0.0.1:50053"]
ALIVE_PORTS = ["127.0.0.1:50061", "127.0.0.1:50062"]


def served_by(gateway: examples.Example, calls: int) -> Counter:
    """Who answered `calls` GET /users/{id}, sent one after another on one connection."""
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    counts: Counter = Counter()
    try:
        for i in range(calls):
            conn.request("GET", f"/users/{i % 1000 + 1}")
            response = conn.getresponse()
            body = response.read()
            assert response.status == 200, body
            counts[json.loads(body)["servedBy"]] += 1
    finally:
        conn.close()
    return counts


def start_instances(tmp_path: Path, stack: ExitStack) -> dict[str, str]:
    """The three user and two alive instances; the example's address of each -> the real one."""
    mapping = {}
    for service, fixed in (("user", USER_PORTS), ("alive", ALIVE_PORTS)):
        for index, address in enumerate(fixed, start=1):
            process = examples.instance(tmp_path, service, f"{service}-{index}")
            stack.callback(process.stop)
            mapping[address] = process.address
    return mapping


def rewritten(path: Path, mapping: dict[str, str]) -> str:
    text = path.read_text()
    for old, new in mapping.items():
        text = text.replace(old, new)
    return text


def test_the_example_validates_and_its_scripts_parse():
    assert run_cli("validate", str(FRONT_PROXY / "proxy.yaml")).returncode == 0
    for script in ("run.sh", "spread.sh"):
        assert subprocess.run(["bash", "-n", str(FRONT_PROXY / script)]).returncode == 0


def test_the_front_proxy_balances_every_call(mesh, tmp_path):
    with ExitStack() as stack:
        mapping = start_instances(tmp_path, stack)
        front, admin = free_port(), free_port()
        mapping.update({"127.0.0.1:10000": f"127.0.0.1:{front}", "127.0.0.1:10001": f"127.0.0.1:{admin}"})
        mesh.proxy(rewritten(FRONT_PROXY / "proxy.yaml", mapping), wait=None)
        wait_until(lambda: http_get("127.0.0.1", admin, "/ready")[0] == 200, 20, message="the front proxy")
        gateway = examples.gateway(tmp_path, f"127.0.0.1:{front}", f"127.0.0.1:{front}")
        stack.callback(gateway.stop)
        counts = served_by(gateway, 300)
        assert sorted(counts) == ["user-1", "user-2", "user-3"] and min(counts.values()) >= 60, counts


def test_an_l4_balancer_pins_every_call_to_one_instance(tmp_path):
    with ExitStack() as stack:
        mapping = start_instances(tmp_path, stack)
        user_front, alive_front = free_port(), free_port()
        mapping.update({"127.0.0.1:10000": f"127.0.0.1:{user_front}", "127.0.0.1:10002": f"127.0.0.1:{alive_front}"})
        config = tmp_path / "l4-haproxy.cfg"
        config.write_text(rewritten(FRONT_PROXY / "l4-haproxy.cfg", mapping))
        haproxy = subprocess.Popen(["haproxy", "-f", str(config)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)

        def stop_haproxy() -> None:
            haproxy.terminate()
            try:
                haproxy.wait(10)
            except subprocess.TimeoutExpired:
                haproxy.kill()
                haproxy.wait()
        stack.callback(stop_haproxy)
        wait_until(lambda: port_open("127.0.0.1", user_front), 10, message="haproxy to listen")
        gateway = examples.gateway(tmp_path, f"127.0.0.1:{user_front}", f"127.0.0.1:{alive_front}")
        stack.callback(gateway.stop)
        counts = served_by(gateway, 300)
        assert len(counts) == 1 and sum(counts.values()) == 300, counts


def test_client_side_balancing_spreads_calls_too(tmp_path):
    with ExitStack() as stack:
        mapping = start_instances(tmp_path, stack)
        users = ",".join(mapping[a] for a in USER_PORTS)
        alives = ",".join(mapping[a] for a in ALIVE_PORTS)
        gateway = examples.gateway(tmp_path, users, alives)
        stack.callback(gateway.stop)
        # Round robin over connections the client opens as it goes: wait until it has all three.
        wait_until(lambda: len(served_by(gateway, 30)) == 3, 10, message="the gateway to reach every instance")
        counts = served_by(gateway, 300)
        assert sorted(counts) == ["user-1", "user-2", "user-3"] and min(counts.values()) >= 60, counts
