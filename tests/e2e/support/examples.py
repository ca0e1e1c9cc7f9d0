"""The demo's example services (`swiftmesh example user|alive|gateway`) as
child processes on ports the kernel handed out."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from .proxy import SwiftmeshProcess, binary_path
from .ports import free_port
from .util import port_open, wait_until


class Example(SwiftmeshProcess):
    def __init__(self, workdir: Path, name: str, *args: str):
        super().__init__(workdir, name)
        self.port = free_port()
        self.args = args

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [str(binary_path()), "example", *self.args, "--listen", self.address]

    def start(self) -> "Example":
        self.launch()
        wait_until(lambda: self._check_alive() or port_open("127.0.0.1", self.port), 20,
                   message=f"{self.name} to listen")
        return self


def instance(workdir: Path, service: str, name: str) -> Example:
    """A started user or alive instance."""
    return Example(workdir, name, service, "--instance", name).start()


def gateway(workdir: Path, user: str, alive: Optional[str] = None) -> Example:
    """A started gateway calling `user` and `alive` (host:port, or several
    comma-separated); without `alive`, its /alive answers 404."""
    args = ("--user", user) + (("--alive", alive) if alive else ())
    return Example(workdir, "gateway", "gateway", *args).start()
