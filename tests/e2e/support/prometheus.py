"""A real Prometheus server (Debian's prometheus) that scrapes targets every
second on loopback, and queries through its HTTP API."""
from __future__ import annotations

import json
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Optional

from .proxy import LIVE
from .ports import free_port
from .util import port_open, stop_child, wait_until

_CONFIG = """
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: swiftmesh
    metrics_path: /metrics
    static_configs:
      - targets: [{targets}]
"""


class Prometheus:
    def __init__(self, workdir: Path, targets: list[str]):
        self.dir = Path(workdir)
        self.targets = targets
        self.port = 0
        self.proc: Optional[subprocess.Popen] = None

    def start(self, timeout: float = 30.0) -> "Prometheus":
        self.port = free_port()
        config = self.dir / "prometheus.yml"
        config.write_text(_CONFIG.format(targets=", ".join(f"'{t}'" for t in self.targets)))
        log = open(self.dir / "prometheus.log", "ab")
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={self.dir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        LIVE.add(self.proc)
        wait_until(lambda: self.proc.poll() is None and port_open("127.0.0.1", self.port) and self._ready(),
                   timeout, message="prometheus to be ready")
        return self

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def query(self, expression: str) -> list[dict]:
        """The instant query's result vector: [{"metric": {...}, "value": [time, "text"]}]."""
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
        with urllib.request.urlopen(url, timeout=5) as r:
            body = json.load(r)
        assert body["status"] == "success", body
        return body["data"]["result"]

    def value(self, expression: str) -> Optional[float]:
        """The single sample's value, or None while the query has no result."""
        result = self.query(expression)
        return float(result[0]["value"][1]) if result else None

    def target_health(self) -> list[str]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v1/targets", timeout=5) as r:
            body = json.load(r)
        return [t["health"] for t in body["data"]["activeTargets"]]

    def log_tail(self) -> str:
        path = self.dir / "prometheus.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        if self.proc is None:
            return
        stop_child(self.proc, 10)
        LIVE.discard(self.proc)
        self.proc = None
