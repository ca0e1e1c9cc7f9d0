"""docs/mesh.md "Running it on one machine", run as written: its shell
blocks are read from the document (so the document cannot drift from what
works) and pasted, in order, into one bash in a network namespace of its
own, where the document's fixed ports are free. Between blocks the test
only reads what a reader would see, and waits where a reader would glance
at the output before going on."""
from __future__ import annotations

import json
import re
from pathlib import Path

from support.doc_shell import NamespacedShell, shell_blocks
from support.proxy import binary_path
from support.util import wait_until

DOC = Path(__file__).resolve().parents[2] / "docs" / "mesh.md"


def test_running_the_mesh_on_one_machine_as_documented(tmp_path):
    blocks = shell_blocks(DOC, "## Running it on one machine")
    start_control_plane, start_users, start_gateway, look, canary, see_split, stop = blocks
    with NamespacedShell(tmp_path, str(binary_path().parent)) as shell:
        shell.run(start_control_plane, 60)
        shell.run(start_users, 60)
        called = json.loads(shell.run(start_gateway, 60).strip().splitlines()[-1])
        assert called["id"] == 7 and called["servedBy"] in {"user-1", "user-2", "user-3"}, called
        assert called["caller"] == "spiffe://swiftmesh.local/service/gateway"

        seen = shell.run(look, 60)
        assert re.search(r"^user\s+3\s", seen, re.MULTILINE), seen
        assert len(re.findall(r"^user\s+127\.0\.0\.1:1500[123]\s+http2\s+healthy", seen, re.MULTILINE)) == 3, seen
        assert re.search(r"^swiftmesh top", seen, re.MULTILINE), seen

        assert "servicepolicy/user created" in shell.run(canary, 30)

        # A reader sees `created`; the gateway's sidecar applies it a moment later.
        def split_applied() -> bool:
            config = json.loads(shell.run("curl -s 127.0.0.1:15100/config", 10).strip())
            outbound = next(listener for listener in config["listeners"] if listener["name"] == "outbound_user")
            return "split" in outbound["routes"][0]

        wait_until(split_applied, 15, message="the gateway's sidecar to apply the canary policy")
        split = shell.run(see_split, 120)
        served = {name: int(count) for count, name in re.findall(r'^\s*(\d+) "servedBy":"(user-\d)"', split, re.MULTILINE)}
        assert sum(served.values()) == 200, split
        # 10% of 200 calls: 20 expected; these bounds are 4 standard deviations out.
        assert 3 <= served.get("user-3", 0) <= 37, served
        assert re.search(r"^user\s+user\s+1\s", split, re.MULTILINE), split

        # What the route matched, once the gateway's sidecar reported it.
        def matched() -> bool:
            return "routes[0]=200 other=0" in shell.run("swiftmesh get policies", 10)

        wait_until(matched, 15, message="get policies to count the canary route's 200 calls")
        shell.run(stop, 60)
