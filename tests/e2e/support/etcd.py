"""A real etcd cluster on loopback (Debian's etcd-server): `members`
processes on ports the kernel handed out, each with its data in the test's
directory, reaped when the test ends."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import urllib.request
from pathlib import Path
from typing import Optional

from .proxy import LIVE
from .ports import free_ports
from .util import stop_child, wait_until


class EtcdMember:
    def __init__(self, cluster: "EtcdCluster", index: int, client_port: int, peer_port: int):
        self.name = f"etcd-{index}"
        self.client_port = client_port
        self.peer_port = peer_port
        self.data_dir = cluster.data_root / self.name
        self.log = cluster.directory / f"{self.name}.log"
        self.proc: Optional[subprocess.Popen] = None

    @property
    def client_address(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    def start(self, initial_cluster: str) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                ["etcd", "--name", self.name, "--data-dir", str(self.data_dir),
                 "--listen-client-urls", f"http://{self.client_address}",
                 "--advertise-client-urls", f"http://{self.client_address}",
                 "--listen-peer-urls", self.peer_url, "--initial-advertise-peer-urls", self.peer_url,
                 "--initial-cluster", initial_cluster, "--initial-cluster-state", "new",
                 "--initial-cluster-token", "swiftmesh-e2e",
                 # Loopback: elections in a fifth of the default time.
                 "--heartbeat-interval", "100", "--election-timeout", "1000"],
                stdout=log, stderr=subprocess.STDOUT)
        LIVE.add(self.proc)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.client_address}/health", timeout=1) as response:
                return b'"health":"true"' in response.read()
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL: the member vanishes the way a crashed node does."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc is not None:
            LIVE.discard(self.proc)

    def stop(self) -> None:
        if self.proc is None:
            return
        stop_child(self.proc, 10)
        LIVE.discard(self.proc)


class EtcdCluster:
    def __init__(self, directory: Path, members: int = 3):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        # The members' data in memory where there is /dev/shm: etcd syncs
        # every write to disk, which a busy test machine makes slow.
        shm = Path("/dev/shm")
        self.data_root = Path(tempfile.mkdtemp(prefix="swiftmesh-etcd-", dir=shm if shm.is_dir() else directory))
        ports = free_ports(2 * members)
        self.members = [EtcdMember(self, index, ports[2 * index], ports[2 * index + 1]) for index in range(members)]

    def start(self, timeout: float = 30.0) -> "EtcdCluster":
        initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        for member in self.members:
            member.start(initial)
        wait_until(lambda: all(m.healthy() for m in self.members), timeout,
                   message=f"etcd members healthy (logs in {self.directory})")
        return self

    @property
    def store(self) -> str:
        """`--store` for the control plane: every member."""
        return "etcd://" + ",".join(m.client_address for m in self.members)

    def stop(self) -> None:
        for member in self.members:
            member.stop()
        shutil.rmtree(self.data_root, ignore_errors=True)
