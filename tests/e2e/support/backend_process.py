"""A gRPC backend (`grpc_peer.GrpcBackend`) in a process of its own, so that
a test can SIGKILL it the way an instance crashes: its sockets vanish
without a goodbye. The child prints its port on the first line of stdout
and exits when its stdin closes, so it never outlives the suite."""
from __future__ import annotations

import select
import subprocess
import sys
from pathlib import Path
from typing import Optional

from .proxy import LIVE

E2E_DIR = Path(__file__).resolve().parents[1]


class BackendProcess:
    def __init__(self, name: str):
        self.name = name
        self.port = 0
        self.proc: Optional[subprocess.Popen] = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> "BackendProcess":
        self.proc = subprocess.Popen([sys.executable, "-m", "support.backend_process", self.name],
                                     cwd=E2E_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        LIVE.add(self.proc)
        assert self.proc.stdout is not None
        # The child prints its port as one line; one that dies closes stdout,
        # which makes it readable too.
        readable, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline().strip() if readable else ""
        if not line.isdigit():
            self.stop()
            raise RuntimeError(f"backend process {self.name} did not start (printed {line!r})")
        self.port = int(line)
        return self

    def kill(self) -> None:
        """SIGKILL and reap: connections to it reset, new ones are refused."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(10)
        finally:
            LIVE.discard(self.proc)
            self.proc = None


def main() -> None:
    from .grpc_peer import GrpcBackend

    backend = GrpcBackend(sys.argv[1]).start()
    print(backend.port, flush=True)
    sys.stdin.read()
    backend.stop()


if __name__ == "__main__":
    main()
