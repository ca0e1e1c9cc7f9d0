"""`swiftmesh demo`: the seed's system in one command (a control plane,
3 user and 2 alive instances and a gateway, each with its sidecar, as
separate processes), with traffic through the gateway. Checked here: the
spread over the instances, zero failed requests while a user instance is
killed, the canary split, the identities the instances saw, and that no
process is left behind, whether the demo ends by itself or by SIGTERM."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import uuid
from pathlib import Path

from support.proxy import binary_path
from support.util import wait_until

GATEWAY = "spiffe://swiftmesh.local/service/gateway"


def processes_marked(marker: str) -> list[int]:
    """Live processes whose environment carries `marker`: the demo and
    everything it started (children inherit the environment)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in environ and state != "Z":
            found.append(int(entry.name))
    return found


def kill_marked(marker: str) -> None:
    """The safety net when a test fails midway: nothing the demo started may outlive the test."""
    for pid in processes_marked(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def run_demo(tmp_path: Path, *args: str, timeout: float = 120) -> tuple[subprocess.CompletedProcess, str]:
    marker = f"SWIFTMESH_DEMO_TEST={uuid.uuid4()}"
    name, value = marker.split("=")
    env = {**os.environ, name: value, "TMPDIR": str(tmp_path)}
    try:
        done = subprocess.run([str(binary_path()), "demo", *args, "-o", "json"], capture_output=True, text=True,
                              timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        kill_marked(marker)
        raise
    return done, marker


def by_instance(summary: dict) -> dict:
    return {row["instance"]: row for row in summary["instances"]}


def test_failover_loses_no_request_and_leaves_no_process(tmp_path):
    done, marker = run_demo(tmp_path, "--duration", "15s", "--scenario", "failover", "--rate", "60")
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["failed"] == 0 and summary["failures"] == {}
    assert summary["requests"] >= 600, summary["requests"]
    [event] = summary["events"]
    assert "killed user-2" in event["what"] and 4 <= event["atSeconds"] <= 7
    rows = by_instance(summary)
    users = [rows[f"user-{i}"] for i in (1, 2, 3)]
    before = sum(u["answersBefore"] for u in users)
    # Balanced per request before the kill: every instance has a fair share.
    assert all(u["answersBefore"] >= before * 0.2 for u in users), [u["answersBefore"] for u in users]
    # After it, the two left share every call.
    assert rows["user-2"]["answersAfter"] <= 2
    assert rows["user-1"]["answersAfter"] > 0 and rows["user-3"]["answersAfter"] > 0
    assert all(rows[f"alive-{i}"]["answers"] > 0 for i in (1, 2))
    # Each instance saw the gateway's identity, proven by mutual TLS to its sidecar.
    assert all(row["callers"] == [GATEWAY] for row in summary["instances"])
    assert processes_marked(marker) == []
    assert not any(tmp_path.glob("swiftmesh-demo-*")), "the demo's directory is removed without --keep"


def test_canary_sends_a_tenth_to_version_two(tmp_path):
    done, marker = run_demo(tmp_path, "--duration", "12s", "--scenario", "canary", "--rate", "100")
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["failed"] == 0
    rows = by_instance(summary)
    after = {name: rows[name]["answersAfter"] for name in ("user-1", "user-2", "user-3")}
    share_v2 = after["user-3"] / sum(after.values())
    # 90/10 from the moment the policy reaches the gateway's sidecar (a push, well under a second).
    assert 0.03 <= share_v2 <= 0.2, after
    assert processes_marked(marker) == []


def start_demo_until_up(tmp_path: Path) -> tuple[subprocess.Popen, str]:
    """`swiftmesh demo` without a duration, returned once it printed its URLs
    (everything is up); stdout is a pipe, stderr is read by a thread."""
    marker = f"{uuid.uuid4()}"
    env = {**os.environ, "SWIFTMESH_DEMO_TEST": marker, "TMPDIR": str(tmp_path)}
    demo = subprocess.Popen([str(binary_path()), "demo", "--rate", "20"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(demo.stderr.readline, "")), daemon=True).start()
    try:
        wait_until(lambda: any(line.startswith("gateway ") for line in lines), 60,
                   message="the demo to print its URLs")
    except BaseException:
        demo.kill()
        demo.wait()
        kill_marked(marker)
        raise
    return demo, marker


def test_sigterm_stops_every_process(tmp_path):
    demo, marker = start_demo_until_up(tmp_path)
    try:
        assert len(processes_marked(marker)) == 1 + 1 + 2 * 6, "the demo, the control plane, 6 apps, 6 sidecars"
        demo.send_signal(signal.SIGTERM)
        # The final table fits in the pipe's buffer: waiting first cannot block on it.
        demo.wait(timeout=60)
        out = demo.stdout.read()
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        kill_marked(marker)
    assert demo.returncode == 0
    assert "requests through the gateway, 0 failed" in out
    wait_until(lambda: processes_marked(marker) == [], 5, message="no process left")


def test_a_killed_demo_takes_its_processes_along(tmp_path):
    """SIGKILL leaves the demo no chance to stop anything: each process it
    started notices its parent is gone and stops itself."""
    demo, marker = start_demo_until_up(tmp_path)
    try:
        demo.kill()
        demo.wait(10)
        # Each polls its parent once a second, then drains as on SIGTERM.
        wait_until(lambda: processes_marked(marker) == [], 20, message="every process to stop by itself")
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        kill_marked(marker)
