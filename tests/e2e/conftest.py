"""Fixtures for the whole-binary tests.

`mesh` is the one fixture most tests use: it starts peers and proxies on
loopback, and stops every one of them (proxies first) when the test ends,
whatever happened. A failing test's report carries each proxy's stderr."""
from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path
from typing import Any, Optional, Union

import pytest

# grpc-core logs every GOAWAY and reset at INFO; the tests provoke many.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

from support import examples
from support.backend_process import BackendProcess
from support.dns import Dnsmasq, MiniDNS
from support.grpc_peer import GrpcBackend, ResetBackend
from support.http_backend import HTTPBackend
from support.mesh import ControlPlane, Sidecar
from support.nginx import NginxH2C
from support.otlp import OTLPReceiver
from support.ports import UnusedPort
from support.prometheus import Prometheus
from support.proxy import LIVE, Proxy, SwiftmeshProcess, binary_path


class Mesh:
    """Factories for peers and proxies of one test, torn down in reverse order."""

    def __init__(self, tmp_path: Path):
        self.tmp = tmp_path
        self.stack = contextlib.ExitStack()
        self.proxies: list[Proxy] = []
        # Every swiftmesh process (proxies, sidecars, control planes), for the failure report.
        self.processes: list[SwiftmeshProcess] = []
        self._n = 0

    def _dir(self, name: str) -> Path:
        self._n += 1
        d = self.tmp / f"{self._n:02d}-{name}"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def http_backend(self, name: str, host: str = "127.0.0.1", port: int = 0, delay: float = 0.0,
                     ssl_context: Optional[Any] = None) -> HTTPBackend:
        b = HTTPBackend(name, host, port, delay, ssl_context=ssl_context).start()
        self.stack.callback(b.stop)
        return b

    def http_backends(self, *names: str, host: str = "127.0.0.1") -> list[HTTPBackend]:
        return [self.http_backend(n, host) for n in names]

    def grpc_backend(self, name: str, host: str = "127.0.0.1", port: int = 0) -> GrpcBackend:
        b = GrpcBackend(name, host, port).start()
        self.stack.callback(b.stop)
        return b

    def grpc_backends(self, *names: str) -> list[GrpcBackend]:
        return [self.grpc_backend(n) for n in names]

    def grpc_backend_process(self, name: str) -> BackendProcess:
        """A gRPC backend a test can SIGKILL (`kill()`)."""
        b = BackendProcess(name).start()
        self.stack.callback(b.stop)
        return b

    def unused_address(self) -> str:
        """host:port of a port held bound, never listening, until the test
        ends: connecting is refused, and nothing else can take the port (a
        dead endpoint, an app nobody calls, an address nobody answers on)."""
        held = UnusedPort()
        self.stack.callback(held.close)
        return held.address

    def reset_backend(self, protocol: str = "http1", reply: bytes = b"") -> ResetBackend:
        b = ResetBackend(protocol=protocol, reply=reply).start()
        self.stack.callback(b.stop)
        return b

    def nginx_h2c(self, name: str = "nginx", keepalive_requests: int = 100000, locations: str = "") -> NginxH2C:
        n = NginxH2C(self._dir(name), name, keepalive_requests, locations).start()
        self.stack.callback(n.stop)
        return n

    def otlp_receiver(self, fail_with: Optional[int] = None) -> OTLPReceiver:
        """An OTLP/HTTP trace receiver; `fail_with` answers every export with that status."""
        r = OTLPReceiver(fail_with=fail_with).start()
        self.stack.callback(r.stop)
        return r

    def prometheus(self, targets: list[str]) -> Prometheus:
        """A Prometheus server scraping `targets` (host:port of admin listeners) every second."""
        p = Prometheus(self._dir("prometheus"), targets)
        self.stack.callback(p.stop)
        return p.start()

    def dnsmasq(self, records: dict[str, list[str]], local: bool = True) -> Dnsmasq:
        d = Dnsmasq(self._dir("dnsmasq"), records, local)
        self.stack.callback(d.stop)
        return d.start()

    def mini_dns(self, records: dict[str, list[str]], answering: bool = True) -> MiniDNS:
        d = MiniDNS(records, answering).start()
        self.stack.callback(d.stop)
        return d

    def proxy(self, config: Union[dict, str], start: bool = True, wait: Optional[str] = "ready",
              name: Optional[str] = None, timeout: float = 20.0, **kwargs: Any) -> Proxy:
        name = name or f"proxy{len(self.proxies) + 1}"
        p = Proxy(self._dir(name), config, name=name, **kwargs)
        self.proxies.append(p)
        self.processes.append(p)
        self.stack.callback(p.stop)
        if start:
            p.start(wait=wait, timeout=timeout)
        return p

    def example(self, service: str, name: str) -> examples.Example:
        """A started example user or alive instance (`swiftmesh example`)."""
        e = examples.instance(self._dir(name), service, name)
        self.processes.append(e)
        self.stack.callback(e.stop)
        return e

    def example_gateway(self, user: str, alive: Optional[str] = None) -> examples.Example:
        """A started example gateway calling `user` (and `alive`, if given)."""
        e = examples.gateway(self._dir("gateway"), user, alive)
        self.processes.append(e)
        self.stack.callback(e.stop)
        return e

    def control_plane(self, name: str = "control-plane", start: bool = True, **kwargs: Any) -> ControlPlane:
        c = ControlPlane(self._dir(name), name=name, **kwargs)
        self.processes.append(c)
        self.stack.callback(c.stop)
        return c.start() if start else c

    def sidecar(self, name: str, control_plane: Union[ControlPlane, str], service: str, app: Any,
                start: bool = True, wait_ready: bool = True, **kwargs: Any) -> Sidecar:
        """A sidecar for `app` (a backend object or its address), with a join
        token for its service from `control_plane` unless that runs --dev or
        the test gives `token`."""
        address = control_plane if isinstance(control_plane, str) else control_plane.address
        if isinstance(control_plane, ControlPlane):
            kwargs.setdefault("control_plane_ca", control_plane.root_file)
            if control_plane.admin_token and "token" not in kwargs:
                kwargs["token"] = control_plane.join_token(service)
        s = Sidecar(self._dir(name), name, address, service, app if isinstance(app, str) else app.address, **kwargs)
        self.processes.append(s)
        self.stack.callback(s.stop)
        return s.start(wait_ready=wait_ready) if start else s

    def close(self) -> None:
        self.stack.close()


@pytest.fixture(scope="session", autouse=True)
def swiftmesh_binary() -> Path:
    path = binary_path()
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"swiftmesh binary not found at {path} (build it with `swift build -c release` "
                    f"or set SWIFTMESH_BIN)", pytrace=False)
    return path


@pytest.fixture
def mesh(request: pytest.FixtureRequest, tmp_path: Path):
    m = Mesh(tmp_path)
    request.node._mesh = m
    try:
        yield m
    finally:
        m.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        m: Optional[Mesh] = getattr(item, "_mesh", None)
        for p in (m.processes if m else []):
            report.sections.append((f"swiftmesh stderr: {p.name} ({p.stderr_path})", p.stderr_tail() or "(empty)"))
            if isinstance(p, Proxy):
                report.sections.append((f"swiftmesh config: {p.name} ({p.config_path})",
                                        p.config_path.read_text() if p.config_path.exists() else "(missing)"))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Anything a crashed fixture could not stop: kill and reap.
    for proc in list(LIVE):
        if proc.poll() is None:
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        LIVE.discard(proc)
