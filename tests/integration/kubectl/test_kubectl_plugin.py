"""``kubectl curfew``: the ``kubectl-curfew`` entry point that pyproject.toml declares, found and
run by the real kubectl (its ``plugin list`` and its dispatch), and the krew manifest checked
against the rules krew's own validation applies (sigs.k8s.io/krew internal/index/validation),
its sha256 against a fresh build of the archive it installs."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from curfew import __version__

ROOT = Path(__file__).resolve().parents[3]
MANIFEST = ROOT / "plugins" / "krew" / "curfew.yaml"


def find_kubectl() -> str:
    local = ROOT / ".tools" / "bin" / "kubectl"
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    on_path = shutil.which("kubectl")
    if on_path is None:
        pytest.fail("kubectl not found in .tools/bin or on PATH: run `make tools` "
                    "(bash scripts/fetch-tools.sh .tools/bin) to fetch the pinned kubectl")
    return on_path


def declared_entry_point() -> tuple[str, str]:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, function = scripts["kubectl-curfew"].partition(":")
    return module, function


@pytest.fixture
def plugin_path(tmp_path: Path) -> str:
    """A PATH whose first directory holds ``kubectl-curfew`` as pip installs console scripts:
    the installed one when this environment has it, else a wrapper written the way pip writes
    one from the declaration in pyproject.toml (an environment installed before the entry point
    was added lacks it until it is reinstalled)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    installed = Path(sys.executable).parent / "kubectl-curfew"
    target = bin_dir / "kubectl-curfew"
    if installed.is_file():
        shutil.copy(installed, target)
    else:
        module, function = declared_entry_point()
        target.write_text(f"#!{sys.executable}\nimport sys\nfrom {module} import {function}\n"
                          f"if __name__ == '__main__':\n    sys.exit({function}())\n")
    target.chmod(0o755)
    return os.pathsep.join([str(bin_dir), str(Path(find_kubectl()).parent), "/usr/bin", "/bin"])


def kubectl(path: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": path, "HOME": str(tmp_path), "PYTHONPATH": str(ROOT / "operator"),
           "KUBECONFIG": str(tmp_path / "no-kubeconfig"), "SOURCE_DATE_EPOCH": "0"}
    return subprocess.run([find_kubectl(), *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120, check=False)


def test_the_declared_entry_point_exists() -> None:
    module, function = declared_entry_point()
    assert importlib.util.find_spec(module) is not None
    assert callable(getattr(importlib.import_module(module), function))


def test_kubectl_plugin_list_finds_kubectl_curfew(plugin_path: str, tmp_path: Path) -> None:
    done = kubectl(plugin_path, tmp_path, "plugin", "list")
    assert done.returncode == 0, done.stderr
    assert str(tmp_path / "bin" / "kubectl-curfew") in done.stdout
    assert "warning" not in done.stderr.lower(), done.stderr  # e.g. not executable, shadowed


def test_kubectl_curfew_version_runs_the_curfew_command_line(
        plugin_path: str, tmp_path: Path) -> None:
    done = kubectl(plugin_path, tmp_path, "curfew", "--version")
    assert (done.returncode, done.stdout.strip()) == (0, f"curfew {__version__}"), done.stderr


def test_kubectl_curfew_usage_names_the_command_as_typed(
        plugin_path: str, tmp_path: Path) -> None:
    done = kubectl(plugin_path, tmp_path, "curfew", "--help")
    assert done.returncode == 0
    assert done.stdout.startswith("usage: kubectl curfew ")
    for command in ("render", "validate", "report"):
        assert command in done.stdout


def test_kubectl_curfew_report_and_validate_work_through_kubectl(
        plugin_path: str, tmp_path: Path) -> None:
    report = kubectl(plugin_path, tmp_path, "curfew", "report", "-f", "examples/", "-n", "shop")
    assert report.returncode == 0, report.stderr
    assert report.stdout.startswith("# Session timeout compliance report: namespace shop")
    validate = kubectl(plugin_path, tmp_path, "curfew", "validate", "-f", "examples/")
    assert validate.returncode == 0, validate.stderr
    assert "3 policies: 3 valid and compliant" in validate.stdout


def test_kubectl_curfew_passes_errors_and_exit_codes_through(
        plugin_path: str, tmp_path: Path) -> None:
    done = kubectl(plugin_path, tmp_path, "curfew", "report", "-f", "/nonexistent")
    assert done.returncode == 2
    assert done.stderr.strip() == "curfew report: /nonexistent: no such file or directory"


# --- the krew manifest ---------------------------------------------------------------------------

def manifest() -> dict[str, object]:
    loaded = yaml.safe_load(MANIFEST.read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_the_krew_manifest_has_every_field_krew_requires() -> None:
    plugin = manifest()
    assert plugin["apiVersion"] == "krew.googlecontainertools.github.com/v1alpha2"
    assert plugin["kind"] == "Plugin"
    name = plugin["metadata"]["name"]  # type: ignore[index]
    assert re.fullmatch(r"[\w-]+", name)
    assert MANIFEST.stem == name  # krew reads the plugin name from the file name
    spec = plugin["spec"]
    assert isinstance(spec, dict)
    assert spec["shortDescription"]
    assert "\n" not in spec["shortDescription"]
    assert spec["version"] == f"v{__version__}"  # krew's semver needs the v
    assert spec["platforms"]
    for platform in spec["platforms"]:
        assert platform["uri"].startswith("https://")
        assert re.fullmatch(r"[a-f0-9]{64}", platform["sha256"])
        assert platform["bin"] == "kubectl-curfew"
        labels = platform["selector"]["matchLabels"]
        assert labels
        assert set(labels) <= {"os", "arch"}
        for op in platform.get("files", []):
            assert op["from"]
            assert op["to"]


def test_the_krew_manifest_covers_linux_and_macos_on_both_architectures() -> None:
    selectors = {(p["selector"]["matchLabels"]["os"], p["selector"]["matchLabels"]["arch"])
                 for p in manifest()["spec"]["platforms"]}  # type: ignore[index]
    assert selectors == {(o, a) for o in ("linux", "darwin") for a in ("amd64", "arm64")}


def test_the_manifests_sha256_is_that_of_a_fresh_build_of_the_archive(tmp_path: Path) -> None:
    out = tmp_path / "kubectl-curfew.tar.gz"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "kubectl-plugin-archive.py"),
                           str(out)], capture_output=True, text=True, timeout=60, check=True)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert done.stdout.strip() == digest
    shas = {p["sha256"] for p in manifest()["spec"]["platforms"]}  # type: ignore[index]
    assert shas == {digest}, "rebuild: make kubectl-plugin, and put its sha256 in the manifest"


def test_the_archived_launcher_runs_the_plugin(tmp_path: Path) -> None:
    import tarfile

    out = tmp_path / "kubectl-curfew.tar.gz"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "kubectl-plugin-archive.py"),
                    str(out)], capture_output=True, timeout=60, check=True)
    with tarfile.open(out) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    launcher = tmp_path / "x" / "kubectl-curfew"
    assert os.access(launcher, os.X_OK)
    done = subprocess.run([str(launcher), "--version"], capture_output=True, text=True,
                          timeout=60, check=False,
                          env={"PATH": "/usr/bin:/bin", "CURFEW_PYTHON": sys.executable,
                               "PYTHONPATH": str(ROOT / "operator")})
    assert (done.returncode, done.stdout.strip()) == (0, f"curfew {__version__}"), done.stderr
