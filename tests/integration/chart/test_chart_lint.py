"""``helm lint --strict`` on the operator chart (every supported mode) and the sidecar library."""

from __future__ import annotations

from pathlib import Path

import pytest
from chart_helpers import CHART, CI_VALUES, SIDECAR_CHART, run_helm


def test_the_operator_chart_lints_cleanly_with_its_default_values() -> None:
    proc = run_helm("lint", "--strict", str(CHART))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.stem)
def test_the_operator_chart_lints_cleanly_in_every_supported_mode(values: Path) -> None:
    proc = run_helm("lint", "--strict", str(CHART), "--values", str(values))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_sidecar_library_chart_lints_cleanly() -> None:
    proc = run_helm("lint", "--strict", str(SIDECAR_CHART))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_chart_covers_every_mode_the_issue_names() -> None:
    stems = {path.stem for path in CI_VALUES}
    assert {"namespaced-values", "ha-values", "metrics-values", "custom-image-values"} <= stems


def test_the_chart_app_version_is_the_package_version() -> None:
    import tomllib

    import yaml

    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((CHART.parents[1] / "pyproject.toml").read_text())["project"]
    assert chart["appVersion"] == project["version"]
    library = yaml.safe_load((SIDECAR_CHART / "Chart.yaml").read_text())
    assert library["appVersion"] == project["version"]


def test_the_packaged_chart_holds_the_crds_and_templates_but_not_the_test_values(
    tmp_path: Path,
) -> None:
    import tarfile

    proc = run_helm("package", str(CHART), "--destination", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    (archive,) = tmp_path.glob("curfew-*.tgz")
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert "curfew/crds/sessionpolicies.curfew.dev.yaml" in names
    assert "curfew/values.schema.json" in names
    assert "curfew/templates/NOTES.txt" in names
    assert not [name for name in names if name.startswith("curfew/ci/")]
