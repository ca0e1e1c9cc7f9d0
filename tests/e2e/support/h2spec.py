"""h2spec, the HTTP/2 conformance suite (RFC 9113 and RFC 7541, 146 cases),
run against a listener. It is not packaged by Debian or PyPI: the machine
provides it (see ../shared/tools/README.md); H2SPEC names another copy."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

_REPO = Path(__file__).resolve().parents[3]
_CANDIDATES = (_REPO.parent / "shared" / "tools" / "h2spec", Path("/work/shared/tools/h2spec"))


def h2spec_path() -> Path:
    configured = os.environ.get("H2SPEC")
    if configured:
        return Path(configured)
    found = shutil.which("h2spec")
    if found:
        return Path(found)
    for candidate in _CANDIDATES:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(
        "h2spec not found: set H2SPEC, put it on PATH, or provide ../shared/tools/h2spec")


@dataclass
class H2specResult:
    tests: int
    passed: int
    skipped: int
    failed: int
    output: str

    def failures(self) -> str:
        """The report's "Failures:" section, which names each failed case."""
        index = self.output.find("Failures:")
        return self.output[index:] if index >= 0 else self.output[-3000:]


def run_h2spec(port: int, *flags: str, timeout: float = 240.0) -> H2specResult:
    """The whole suite against 127.0.0.1:port; `flags` e.g. ("-t", "-k") for TLS."""
    proc = subprocess.run([str(h2spec_path()), "-h", "127.0.0.1", "-p", str(port), *flags],
                          capture_output=True, text=True, timeout=timeout)
    output = proc.stdout + proc.stderr
    summary = re.search(r"(\d+) tests, (\d+) passed, (\d+) skipped, (\d+) failed", output)
    if summary is None:
        raise AssertionError(f"h2spec printed no summary (exit {proc.returncode}):\n{output[-3000:]}")
    tests, passed, skipped, failed = (int(n) for n in summary.groups())
    return H2specResult(tests, passed, skipped, failed, output)
