"""The swiftmesh binary as a child process: config written to a temp dir,
stderr captured to a file, readiness by a bounded poll of the admin /ready,
and a stop that always reaps the process."""
from __future__ import annotations

import copy
import http.client
import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any, Optional, Union

from .ports import free_port
from .util import port_open, to_yaml, wait_until

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_BIN = REPO_ROOT / ".build" / "release" / "swiftmesh"

# Every live child process of the suite, so a session-end hook can reap
# whatever a crashed fixture left behind.
LIVE: set[subprocess.Popen] = set()


def binary_path() -> Path:
    return Path(os.environ.get("SWIFTMESH_BIN") or DEFAULT_BIN)


def run_cli(*args: str, timeout: float = 30.0, input_text: Optional[str] = None) -> subprocess.CompletedProcess:
    """Runs the binary to completion (e.g. `validate FILE`), with `input_text` as its standard input."""
    return subprocess.run([str(binary_path()), *args], capture_output=True, text=True, timeout=timeout,
                          input=input_text, stdin=None if input_text is not None else subprocess.DEVNULL)


def http_get(host: str, port: int, path: str, timeout: float = 5.0,
             headers: Optional[dict] = None) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


class SwiftmeshProcess:
    """One swiftmesh process of any subcommand: stderr captured to a file in
    its work dir, the admin API at `admin`, and a stop that always reaps it.
    Subclasses say what to run (`command`) and when it has started."""

    def __init__(self, workdir: Path, name: str):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.stderr_path = self.dir / f"{name}.stderr.log"
        self.proc: Optional[subprocess.Popen] = None
        self.returncode: Optional[int] = None
        # Added to the test's environment.
        self.env: dict[str, str] = {}

    def command(self) -> list[str]:
        raise NotImplementedError

    @property
    def admin(self) -> tuple[str, int]:
        raise NotImplementedError

    def launch(self) -> None:
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(self.command(), stdout=err, stderr=err, stdin=subprocess.DEVNULL,
                                         cwd=self.dir, env={**os.environ, **self.env} if self.env else None)
        LIVE.add(self.proc)

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise ProxyExited(f"{self.name} exited with {self.proc.returncode}; stderr:\n{self.stderr_tail()}")

    def _admin_status(self, path: str) -> Optional[int]:
        self._check_alive()
        host, port = self.admin
        try:
            return http_get(host, port, path, timeout=1.0)[0]
        except OSError:
            return None

    def _ready(self) -> bool:
        return self._admin_status("/ready") == 200

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        self.returncode = self.proc.wait(timeout)
        LIVE.discard(self.proc)
        return self.returncode

    def kill(self) -> None:
        """SIGKILL and reap: the process vanishes without a goodbye."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        self.stop()

    def stop(self, timeout: float = 10.0) -> Optional[int]:
        """SIGTERM, then SIGKILL after `timeout`; always reaps. Idempotent."""
        if self.proc is None:
            return self.returncode
        try:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(10)
            self.returncode = self.proc.returncode
        finally:
            LIVE.discard(self.proc)
        return self.returncode

    # ------------------------------------------------------------ admin
    def admin_get(self, path: str, timeout: float = 5.0) -> tuple[int, dict, bytes]:
        host, port = self.admin
        return http_get(host, port, path, timeout=timeout)

    def admin_json(self, path: str) -> Any:
        status, _, body = self.admin_get(path)
        assert status == 200, f"admin {path}: {status} {body[:500]!r}"
        return json.loads(body)

    def metrics(self) -> list[tuple[str, dict, float]]:
        status, _, body = self.admin_get("/metrics")
        assert status == 200, f"admin /metrics: {status}"
        return parse_prometheus(body.decode())

    # ------------------------------------------------------------ logs
    def stderr_text(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stderr_tail(self, limit: int = 20000) -> str:
        text = self.stderr_text()
        return text if len(text) <= limit else "...\n" + text[-limit:]


class Proxy(SwiftmeshProcess):
    """One `swiftmesh proxy` process.

    `config` is a dict (written as YAML) or YAML text. In a dict config a
    listener without `listen` gets 127.0.0.1:<free port>, and an `admin`
    section is added when absent."""

    def __init__(self, workdir: Path, config: Union[dict, str], name: str = "proxy",
                 threads: Optional[int] = None, log_level: Optional[str] = None,
                 extra_args: tuple[str, ...] = ()):
        super().__init__(workdir, name)
        self.config_path = self.dir / f"{name}.yaml"
        self.threads = threads
        self.log_level = log_level or os.environ.get("SWIFTMESH_E2E_LOG_LEVEL")
        self.extra_args = extra_args
        self.config: Union[dict, str] = self._complete(config)
        self.write_config(self.config)

    # ------------------------------------------------------------ config
    def _complete(self, config: Union[dict, str]) -> Union[dict, str]:
        if isinstance(config, str):
            return config
        config = copy.deepcopy(config)
        if "admin" not in config:
            config["admin"] = {"listen": f"127.0.0.1:{free_port()}"}
        ordered = {"admin": config.pop("admin")}
        ordered.update(config)
        for listener in ordered.get("listeners", []):
            if "listen" not in listener:
                listener["listen"] = f"127.0.0.1:{free_port()}"
        return ordered

    def write_config(self, config: Union[dict, str]) -> None:
        """Writes the config file atomically (a reload never sees half a file)."""
        if not isinstance(config, str):
            config = self._complete(config)
            self.config = config
            text = to_yaml(config)
        else:
            text = config
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.config_path)

    def _addr(self, listen: str) -> tuple[str, int]:
        host, _, port = listen.rpartition(":")
        return host.strip("[]"), int(port)

    @property
    def admin(self) -> tuple[str, int]:
        assert isinstance(self.config, dict), "admin address needs a dict config"
        return self._addr(self.config["admin"]["listen"])

    def listener(self, name: Optional[str] = None) -> tuple[str, int]:
        """(host, port) of the named listener (default: the first)."""
        assert isinstance(self.config, dict)
        for listener in self.config["listeners"]:
            if name is None or listener["name"] == name:
                return self._addr(listener["listen"])
        raise KeyError(name)

    @property
    def port(self) -> int:
        return self.listener()[1]

    @property
    def host(self) -> str:
        return self.listener()[0]

    def url(self, path: str = "/", listener: Optional[str] = None) -> str:
        host, port = self.listener(listener)
        return f"http://{host}:{port}{path}"

    # ------------------------------------------------------------ process
    def command(self) -> list[str]:
        cmd = [str(binary_path()), "proxy", "--config", str(self.config_path)]
        if self.threads:
            cmd += ["--threads", str(self.threads)]
        if self.log_level:
            cmd += ["--log-level", self.log_level]
        return cmd + list(self.extra_args)

    def start(self, wait: Optional[str] = "ready", timeout: float = 20.0) -> "Proxy":
        """wait: "ready" (admin /ready == 200), "admin" (admin answers at all),
        "listeners" (every listener port accepts), or None."""
        self.launch()
        if wait == "ready":
            wait_until(self._ready, timeout, message=f"{self.name} admin /ready == 200")
        elif wait == "admin":
            wait_until(lambda: self._admin_status("/ready") is not None, timeout,
                       message=f"{self.name} admin listener")
        elif wait == "listeners":
            wait_until(self._listeners_open, timeout, message=f"{self.name} listeners to accept")
        return self

    def _listeners_open(self) -> bool:
        self._check_alive()
        assert isinstance(self.config, dict)
        return all(port_open(*self._addr(l["listen"])) for l in self.config["listeners"])

    def reload(self) -> None:
        self.signal(signal.SIGHUP)


class ProxyExited(AssertionError):
    pass


def _parse_labels(text: str) -> dict:
    labels: dict = {}
    i = 0
    while i < len(text):
        eq = text.index("=", i)
        key = text[i:eq].strip().lstrip(",").strip()
        assert text[eq + 1] == '"', text
        j = eq + 2
        value = ""
        while text[j] != '"':
            if text[j] == "\\":
                nxt = text[j + 1]
                value += {"n": "\n", "\\": "\\", '"': '"'}.get(nxt, nxt)
                j += 2
            else:
                value += text[j]
                j += 1
        labels[key] = value
        i = j + 1
        while i < len(text) and text[i] in ", ":
            i += 1
    return labels


def parse_prometheus(text: str) -> list[tuple[str, dict, float]]:
    """Samples of a Prometheus text exposition: (name, labels, value)."""
    samples = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "{" in line:
            name, rest = line.split("{", 1)
            labels_text, _, tail = rest.rpartition("}")
            labels = _parse_labels(labels_text)
        else:
            name, _, tail = line.partition(" ")
            labels = {}
        value = tail.strip().split()[0]
        samples.append((name.strip(), labels, float(value)))
    return samples


def metric_sum(samples: list[tuple[str, dict, float]], name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    return sum(v for n, l, v in samples if n == name and all(l.get(k) == val for k, val in labels.items()))


def metric_present(samples: list[tuple[str, dict, float]], name: str, **labels: str) -> bool:
    return any(n == name and all(l.get(k) == val for k, val in labels.items()) for n, l, _ in samples)
