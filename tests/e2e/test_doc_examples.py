"""The YAML examples of the README and docs/, read from the files: every
complete proxy configuration passes `swiftmesh validate`, and every mesh
resource applies to a control plane as written. (Fragments, a key or two
under their parent, are documentation of one key; docs/mesh.md's runnable
section has a test of its own, test_mesh_doc.py.)"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from support.proxy import run_cli

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def yaml_blocks(select) -> list:
    """(document:line, text) of each ```yaml block that `select` takes."""
    found = []
    for document in DOCUMENTS:
        text = document.read_text()
        for match in re.finditer(r"^```yaml\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE):
            if select(match.group(1)):
                line = text[:match.start()].count("\n") + 1
                found.append(pytest.param(match.group(1), id=f"{document.name}:{line}"))
    return found


CONFIGURATIONS = yaml_blocks(lambda block: re.search(r"^listeners:", block, re.MULTILINE)
                             and re.search(r"^clusters:", block, re.MULTILINE))
RESOURCES = yaml_blocks(lambda block: block.startswith("apiVersion: swiftmesh.dev/"))


def test_the_docs_have_examples_of_both_kinds():
    assert len(CONFIGURATIONS) >= 2 and len(RESOURCES) >= 2


@pytest.mark.parametrize("config", CONFIGURATIONS)
def test_a_documented_configuration_is_valid(config, tmp_path):
    path = tmp_path / "proxy.yaml"
    path.write_text(config)
    checked = run_cli("validate", str(path))
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize("resource", RESOURCES)
def test_a_documented_resource_applies(resource, mesh):
    control_plane = mesh.control_plane(extra_args=("--dev",))
    applied = control_plane.cli("apply", "-f", "-", input_text=resource)
    assert applied.returncode == 0 and "created" in applied.stdout, applied.stderr
