"""Live traffic at the control plane: sidecars report their proxies' totals
with every heartbeat, the control plane turns them into requests/s, success
rate and p50/p99 per service and per caller-to-callee edge
(GET /api/v1/traffic), and `swiftmesh top` shows them as a table."""
from __future__ import annotations

import re
import selectors
import subprocess

from support.proxy import binary_path
from support.mesh import gateway_and_two_users
from support.util import KeepAliveClient, wait_until


def test_the_control_plane_shows_each_services_traffic_and_who_calls_whom(mesh):
    cp, gw = gateway_and_two_users(mesh)
    # 40 calls, 10 of which the user app fails with 500 (not retried: the
    # sidecar's default retries take 503 only).
    with KeepAliveClient("127.0.0.1", gw.upstream_port("user")) as client:
        for n in range(40):
            status = client.get("/err?status=500" if n % 4 == 0 else "/ok")[0]
            assert status == (500 if n % 4 == 0 else 200)

    def counted():
        status, body = cp.api("GET", "/api/v1/traffic", admin=False)
        assert status == 200, body
        services = {s["name"]: s for s in body["services"]}
        edges = {(e["from"], e["to"]): e for e in body["edges"]}
        user, edge = services.get("user"), edges.get(("gateway", "user"))
        ready = user and edge and user["successRate"] is not None and edge["successRate"] is not None
        return (body, services, edges) if ready and abs(user["successRate"] - 0.75) < 1e-9 else None

    body, services, edges = wait_until(counted, 15, message="the control plane to report the user service's 75% success")
    assert body["windowSeconds"] == 10
    user = services["user"]
    assert (user["instances"], user["healthyInstances"]) == (2, 2)
    assert user["requestsPerSecond"] > 0 and 0 < user["latencyP50Ms"] <= user["latencyP99Ms"]
    edge = edges[("gateway", "user")]
    assert abs(edge["successRate"] - 0.75) < 1e-9 and edge["requestsPerSecond"] > 0
    # Nobody calls the gateway through the mesh: its row shows its own calls, and says so.
    gateway = services["gateway"]
    assert gateway["instances"] == 1 and gateway["source"] == "outbound" and gateway["successRate"] is not None
    assert user["source"] == "inbound"

    top = cp.cli("top", "--once", admin=False)
    assert top.returncode == 0, top.stderr
    lines = top.stdout.splitlines()
    assert lines[0].startswith("swiftmesh top") and "last 10 s" in lines[0]
    # The exact 75% is checked through the API above. By the time `top` asks,
    # the 10 s window may have slid past some of the calls on a slow machine,
    # so here only the table's shape is checked.
    user_row = next(line.split() for line in lines if line.startswith("user "))
    assert user_row[1] == "2/2" and re.fullmatch(r"\d+\.\d\d%", user_row[3]) and user_row[4].endswith("ms"), user_row
    assert user_row[-1] == "inbound", "where the figures come from: the user instances' inbound listeners"
    edge_row = next(line.split() for line in lines if line.startswith("gateway ") and " user " in line)
    assert edge_row[1] == "user" and re.fullmatch(r"\d+\.\d\d%", edge_row[3]), edge_row


def test_top_refreshes_until_stopped_and_says_when_the_control_plane_is_away(mesh):
    cp = mesh.control_plane(heartbeat="200ms")
    process = subprocess.Popen([str(binary_path()), "top", "--control-plane", cp.api_url, "--interval", "0.2"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    ready = selectors.DefaultSelector()
    ready.register(process.stdout, selectors.EVENT_READ)

    def two_tables() -> bool:
        # top flushes whole tables, so a readable pipe holds whole lines.
        if ready.select(timeout=0.2):
            lines.append(process.stdout.readline())
        return sum("swiftmesh top" in line for line in lines) >= 2

    try:
        wait_until(two_tables, 10, message="two tables from top, piped")
    finally:
        ready.close()
        process.terminate()
        process.wait(10)
    away = subprocess.run([str(binary_path()), "top", "--once", "--control-plane", f"http://{mesh.unused_address()}"],
                          capture_output=True, text=True, timeout=30)
    assert away.returncode == 1 and "cannot reach the control plane" in away.stderr
