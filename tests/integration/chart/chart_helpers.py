"""Runs the real helm binary on the project's charts and parses what it renders.

helm is the pinned binary ``make setup`` fetches into ``.tools/bin`` (or one on PATH); a missing
helm fails the tests with the command that fetches it, never skips them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "curfew"
SIDECAR_CHART = ROOT / "charts" / "curfew-sidecar"
DEMO_APP_CHART = ROOT / "tests" / "fixtures" / "charts" / "demo-app"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
"""The chart's values files for the modes it supports (namespaced, HA, metrics, custom image)."""

RELEASE = "curfew"
NAMESPACE = "curfew-system"


def find_helm() -> str:
    local = ROOT / ".tools" / "bin" / "helm"
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    on_path = shutil.which("helm")
    if on_path is None:
        pytest.fail(
            "helm not found in .tools/bin or on PATH: run `make tools` "
            "(bash scripts/fetch-tools.sh .tools/bin) to fetch the pinned helm"
        )
    return on_path


def run_helm(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Runs helm offline (no kubeconfig, no repositories) and returns the finished process."""
    env = {
        **os.environ,
        "KUBECONFIG": os.devnull,
        "HELM_CACHE_HOME": str(ROOT / ".tools" / "helm" / "cache"),
        "HELM_CONFIG_HOME": str(ROOT / ".tools" / "helm" / "config"),
        "HELM_DATA_HOME": str(ROOT / ".tools" / "helm" / "data"),
    }
    return subprocess.run(
        [find_helm(), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )


def template(
    *,
    values: Iterable[Path] = (),
    sets: Iterable[str] = (),
    chart: Path = CHART,
    extra: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """``helm template`` with the given values files and --set flags: the rendered objects."""
    args = ["template", RELEASE, str(chart), "--namespace", NAMESPACE]
    for path in values:
        args += ["--values", str(path)]
    for item in sets:
        args += ["--set", item]
    proc = run_helm(*args, *extra)
    assert proc.returncode == 0, f"helm template failed:\n{proc.stderr}"
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def template_error(*, sets: Iterable[str] = (), values: Iterable[Path] = ()) -> str:
    """``helm template`` that must fail: its error output."""
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    for path in values:
        args += ["--values", str(path)]
    for item in sets:
        args += ["--set", item]
    proc = run_helm(*args)
    assert proc.returncode != 0, f"helm template accepted {list(sets)} {list(values)}"
    return proc.stderr


def by_kind(objects: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["kind"] == kind]


def one(objects: Iterable[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
