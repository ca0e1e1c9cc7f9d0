"""The control plane and sidecars as child processes (`swiftmesh
control-plane`, `swiftmesh sidecar`), on ports the kernel handed out."""
from __future__ import annotations

import http.client
import json
import os
import subprocess
from pathlib import Path
from typing import Any, Optional

from .proxy import SwiftmeshProcess, binary_path, run_cli
from .ports import free_port
from .util import port_open, wait_until


def _log_level() -> list[str]:
    level = os.environ.get("SWIFTMESH_E2E_LOG_LEVEL")
    return ["--log-level", level] if level else []


class ControlPlane(SwiftmeshProcess):
    """`swiftmesh control-plane`. Its data dir and port survive `restart`,
    so a restarted control plane is the same one to its sidecars."""

    def __init__(self, workdir: Path, name: str = "control-plane", heartbeat: str = "200ms",
                 extra_args: tuple[str, ...] = ()):
        super().__init__(workdir, name)
        self.port = free_port()
        self.http_port = free_port()
        self.data_dir = self.dir / "data"
        self.heartbeat = heartbeat
        self.extra_args = extra_args

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def command(self) -> list[str]:
        return [str(binary_path()), "control-plane", "--listen", self.address, "--http", f"127.0.0.1:{self.http_port}",
                "--data-dir", str(self.data_dir), "--heartbeat-interval", self.heartbeat, *self.extra_args, *_log_level()]

    def start(self, timeout: float = 20.0) -> "ControlPlane":
        self.launch()
        wait_until(lambda: self._check_alive() or (port_open("127.0.0.1", self.port)
                                                   and port_open("127.0.0.1", self.http_port)),
                   timeout, message=f"{self.name} to listen")
        return self

    @property
    def root_file(self) -> Path:
        """The mesh's root certificate: given with --ca-cert, or made in the data dir."""
        args = list(self.extra_args)
        return Path(args[args.index("--ca-cert") + 1]) if "--ca-cert" in args else self.data_dir / "ca" / "root.pem"

    @property
    def admin_token_file(self) -> Path:
        """Made by the control plane on first start (not with --dev)."""
        return self.data_dir / "admin-token"

    @property
    def admin_token(self) -> Optional[str]:
        try:
            return self.admin_token_file.read_text().strip()
        except FileNotFoundError:
            return None

    def cli(self, *args: str, input_text: Optional[str] = None, admin: bool = True) -> subprocess.CompletedProcess:
        """`swiftmesh ARGS --control-plane <this one's HTTP API>`, with the
        admin token unless `admin` is False."""
        token_args = ("--admin-token-file", str(self.admin_token_file)) if admin and self.admin_token else ()
        return run_cli(*args, "--control-plane", self.api_url, *token_args, input_text=input_text)

    def join_token(self, service: str, ttl: str = "1h") -> str:
        """`swiftmesh token create --service SERVICE`: what a sidecar of that
        service needs for its certificate."""
        made = self.cli("token", "create", "--service", service, "--ttl", ttl)
        assert made.returncode == 0, made.stderr
        return made.stdout.strip()

    def api(self, method: str, path: str, body: Optional[str] = None, admin: bool = True) -> tuple[int, Any]:
        """One HTTP API request: (status, decoded JSON body), with the admin
        token unless `admin` is False."""
        connection = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=10)
        headers = {"Authorization": f"Bearer {self.admin_token}"} if admin and self.admin_token else {}
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, json.loads(response.read() or b"null")
        finally:
            connection.close()


class Sidecar(SwiftmeshProcess):
    """`swiftmesh sidecar` for one instance: `app` is the address its app
    listens on (its protocol found out by the sidecar unless `app_protocol`
    says); each upstream gets a local port (`upstream_port`). `token`, the
    join token, reaches it as SWIFTMESH_TOKEN; `control_plane_ca` is the
    mesh's root, which the control plane must prove itself with."""

    def __init__(self, workdir: Path, name: str, control_plane: str, service: str, app: str,
                 control_plane_ca: Path, app_protocol: Optional[str] = None, upstreams: tuple[str, ...] = (),
                 labels: Optional[dict] = None, extra_args: tuple[str, ...] = (), token: Optional[str] = None):
        super().__init__(workdir, name)
        self.control_plane_ca = control_plane_ca
        if token:
            self.env["SWIFTMESH_TOKEN"] = token
        self.control_plane = control_plane
        self.service = service
        self.app = app
        self.app_protocol = app_protocol
        self.inbound_port = free_port()
        self.admin_port = free_port()
        self.upstream_ports = {upstream: free_port() for upstream in upstreams}
        self.labels = labels or {}
        self.extra_args = extra_args

    @property
    def admin(self) -> tuple[str, int]:
        return "127.0.0.1", self.admin_port

    @property
    def inbound(self) -> str:
        return f"127.0.0.1:{self.inbound_port}"

    def upstream_port(self, service: str) -> int:
        return self.upstream_ports[service]

    def command(self) -> list[str]:
        cmd = [str(binary_path()), "sidecar", "--control-plane", self.control_plane,
               "--control-plane-ca", str(self.control_plane_ca), "--service", self.service,
               "--app", self.app, "--inbound", self.inbound, "--admin", f"127.0.0.1:{self.admin_port}"]
        if self.app_protocol:
            cmd += ["--app-protocol", self.app_protocol]
        for upstream, port in self.upstream_ports.items():
            cmd += ["--upstream", f"{upstream}=127.0.0.1:{port}"]
        for key, value in self.labels.items():
            cmd += ["--label", f"{key}={value}"]
        return cmd + _log_level() + list(self.extra_args)

    def start(self, wait_ready: bool = True, timeout: float = 20.0) -> "Sidecar":
        self.launch()
        if wait_ready:
            wait_until(self._ready, timeout, message=f"{self.name} admin /ready == 200")
        else:
            wait_until(lambda: self._admin_status("/ready") is not None, timeout, message=f"{self.name} admin listener")
        return self

    def endpoints(self, cluster: str) -> list[str]:
        """The addresses the sidecar balances `cluster` over, from /clusters."""
        clusters: list[dict[str, Any]] = self.admin_json("/clusters")["clusters"]
        found = next((c for c in clusters if c["name"] == cluster), None)
        return sorted(e["address"] for e in found["endpoints"]) if found else []


def gateway_and_two_users(mesh: Any) -> tuple[ControlPlane, Sidecar]:
    """A control plane, two user instances with sidecars, and a gateway
    sidecar (the test is its app) that knows both: the live-traffic tests' mesh."""
    cp = mesh.control_plane(heartbeat="200ms")
    users = [mesh.sidecar(f"user-{n}-sidecar", cp, "user", mesh.http_backend(f"user-{n}")) for n in (1, 2)]
    gw = mesh.sidecar("gateway-sidecar", cp, "gateway", f"127.0.0.1:{free_port()}", upstreams=("user",),
                      app_protocol="http1")
    wait_until(lambda: sorted(gw.endpoints("user")) == sorted(u.inbound for u in users), 10,
               message="the gateway to know both user instances")
    return cp, gw


def service_policy(service: str, routes: list[dict], name: Optional[str] = None) -> str:
    """A ServicePolicy for `swiftmesh apply -f -`, as JSON (which YAML reads as is)."""
    return json.dumps({"apiVersion": "swiftmesh.dev/v1alpha1", "kind": "ServicePolicy",
                       "metadata": {"name": name or service}, "spec": {"service": service, "routes": routes}})
