"""Debian's chromium, headless, loading the control plane's dashboard."""
from __future__ import annotations

import subprocess
from pathlib import Path


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess:
    """Headless chromium; virtual time lets the page's polling run several
    rounds, and waits for its fetches, before the DOM or screenshot is taken."""
    return subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         f"--user-data-dir={profile}", "--virtual-time-budget=7000", *args],
        capture_output=True, text=True, timeout=90)


def dashboard_dom(profile: Path, api_url: str) -> str:
    """The dashboard's DOM after a few polls of the control plane."""
    dom = chromium(profile, "--dump-dom", f"{api_url}/dashboard")
    assert dom.returncode == 0, dom.stderr[-2000:]
    return dom.stdout
