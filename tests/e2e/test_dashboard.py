"""The dashboard on the control plane's HTTP port, loaded by a real browser
(Debian's chromium, headless) against a running mesh: the DOM shows the
services and who calls whom, it updates itself, and a screenshot is kept
as a test artifact (tests/e2e/artifacts/dashboard.png)."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

from support.browser import chromium
from support.mesh import gateway_and_two_users
from support.util import KeepAliveClient, curl, wait_until

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def test_the_dashboard_shows_services_and_calls_and_updates_live(mesh, tmp_path):
    cp, gw = gateway_and_two_users(mesh)
    with KeepAliveClient("127.0.0.1", gw.upstream_port("user")) as client:
        for _ in range(30):
            assert client.get("/ok")[0] == 200
    wait_until(lambda: any(e["from"] == "gateway" and e["to"] == "user"
                           for e in cp.api("GET", "/api/v1/traffic", admin=False)[1]["edges"]),
               15, message="the control plane to see gateway -> user")

    root = curl(f"{cp.api_url}/")
    assert root.status == 303 and root.header("location") == "/dashboard"
    page = curl(f"{cp.api_url}/dashboard")
    assert page.status == 200 and page.header("content-type").startswith("text/html")
    assert curl(f"{cp.api_url}/dashboard/dashboard.js").header("content-type").startswith("text/javascript")

    dom = chromium(tmp_path / "profile-dom", "--dump-dom", f"{cp.api_url}/dashboard")
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    for service in ("user", "gateway"):
        assert re.search(rf'<tr data-service="{service}"[ >]', html), html[:3000]
        assert re.search(rf'<g class="node \w+" data-service="{service}">', html), html[:3000]
    assert re.search(r'<g class="edge ok" data-from="gateway" data-to="user">', html), \
        "an edge from gateway to user, green: every call succeeded"
    assert "2/2" in html, "both user instances up"
    updates = int(re.search(r'data-updates="(\d+)"', html).group(1))
    assert updates >= 2, "the page polled the control plane more than once"

    ARTIFACTS.mkdir(exist_ok=True)
    shot = tmp_path / "dashboard.png"
    taken = chromium(tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1280,900",
                     f"{cp.api_url}/dashboard")
    assert taken.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", taken.stderr[-2000:]
    shutil.copy(shot, ARTIFACTS / "dashboard.png")
