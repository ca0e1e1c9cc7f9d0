"""Running a document's shell blocks as a reader would: the ```sh blocks of
one section, read from the file (never copied into the test), pasted one
after the other into one bash, in a network namespace of their own so that
the fixed ports a document uses cannot meet another test's."""
from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Optional


def shell_blocks(document: Path, heading: str) -> list[str]:
    """The ```sh blocks under `heading` (a `## ` line), up to the next `## ` heading."""
    text = document.read_text()
    start = text.index(f"\n{heading}\n")
    following = text.find("\n## ", start + 1)
    section = text[start:following if following >= 0 else len(text)]
    return re.findall(r"^```sh\n(.*?)^```$", section, flags=re.DOTALL | re.MULTILINE)


class NamespacedShell:
    """One bash in a fresh network namespace (loopback only), fed blocks on
    its standard input as a terminal would get them pasted."""

    def __init__(self, cwd: Path, path_prefix: str):
        self.namespace = f"swiftmesh-doc-{uuid.uuid4().hex[:8]}"
        self.cwd = cwd
        self.env = {**os.environ, "PATH": f"{path_prefix}:{os.environ.get('PATH', '')}"}
        self.proc: Optional[subprocess.Popen] = None
        self.transcript = ""
        self._pending = b""
        self._blocks = 0

    def __enter__(self) -> "NamespacedShell":
        subprocess.run(["ip", "netns", "add", self.namespace], check=True)
        subprocess.run(["ip", "netns", "exec", self.namespace, "ip", "link", "set", "lo", "up"], check=True)
        # Its own session: whatever the blocks leave running can be killed as one group.
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.namespace, "bash", "--noprofile", "--norc"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=self.cwd, env=self.env,
            start_new_session=True)
        return self

    def run(self, block: str, timeout: float) -> str:
        """Pastes `block`; returns what it printed. Fails if the shell ends
        or the block does not finish within `timeout` seconds."""
        assert self.proc and self.proc.stdin and self.proc.stdout
        self._blocks += 1
        marker = f"__block {self._blocks} done__"
        self.proc.stdin.write(block.encode() + f"\necho; echo '{marker}' $?\n".encode())
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        output = b""
        while True:
            line_end = self._pending.find(b"\n")
            if line_end >= 0:
                line, self._pending = self._pending[:line_end + 1], self._pending[line_end + 1:]
                text = line.decode(errors="replace")
                self.transcript += text
                if text.startswith(marker):
                    status = int(text.split()[-1])
                    assert status == 0, f"the block ended with status {status}:\n{block}\n--- output:\n{output.decode()}"
                    return output.decode(errors="replace")
                output += line
                continue
            left = deadline - time.monotonic()
            assert left > 0, f"the block did not finish in {timeout} s:\n{block}\n--- output:\n{output.decode()}"
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                assert chunk, f"the shell ended during the block:\n{block}\n--- output:\n{output.decode()}"
                self._pending += chunk

    def __exit__(self, *exc_info: object) -> None:
        try:
            if self.proc and self.proc.poll() is None:
                self.proc.stdin.close()
                try:
                    self.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    pass
            if self.proc:
                # Anything the blocks left behind shares the shell's process group.
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=10)
        finally:
            subprocess.run(["ip", "netns", "delete", self.namespace], check=False)
