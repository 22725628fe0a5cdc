"""The real-cluster run's fixtures agree with the renderer, checked here without a cluster.

The e2e module waits for objects by name (the demo app's ConfigMap, the purge CronJob); these
tests render the e2e policy and the demo app's Deployment (as helm renders it) with
``curfew.render``, exactly as the operator would, so a naming change breaks here first.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from types import ModuleType
from typing import Any

import kubernetes_validate
import pytest
import yaml
from chart_helpers import DEMO_APP_CHART, ROOT, SIDECAR_CHART, load_yaml_documents, one, run_helm

from curfew.api import parse_policy
from curfew.render import render

MANIFESTS = ROOT / "tests" / "e2e" / "manifests"


def _e2e_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "e2e_install_kind", ROOT / "tests" / "e2e" / "test_install_kind.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def demo_deployment(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    e2e = _e2e_module()
    chart = tmp_path_factory.mktemp("e2e") / "demo-app"
    shutil.copytree(DEMO_APP_CHART, chart)
    manifest = chart / "Chart.yaml"
    manifest.write_text(re.sub(r"file://\S+", f"file://{SIDECAR_CHART}", manifest.read_text()))
    assert run_helm("dependency", "build", str(chart)).returncode == 0
    proc = run_helm("template", e2e.WORKLOAD, str(chart), "--namespace", e2e.APP_NAMESPACE)
    assert proc.returncode == 0, proc.stderr
    deployment = one([d for d in yaml.safe_load_all(proc.stdout) if d], "Deployment")
    deployment["metadata"]["namespace"] = e2e.APP_NAMESPACE
    return deployment


def test_the_e2e_policy_selects_the_demo_app_and_names_what_the_e2e_module_waits_for(
    demo_deployment: dict[str, Any],
) -> None:
    e2e = _e2e_module()
    policy = parse_policy(yaml.safe_load((MANIFESTS / "policy.yaml").read_text()))
    rendered = render([policy], [demo_deployment])
    (config_map,) = rendered.config_maps
    assert config_map["metadata"]["name"] == e2e.CONFIG_MAP
    (cron_job,) = rendered.cron_jobs
    assert cron_job["metadata"]["name"] == e2e.PURGE_CRON_JOB
    volumes = demo_deployment["spec"]["template"]["spec"]["volumes"]
    assert {"name": "curfew-config", "configMap": {"name": e2e.CONFIG_MAP}} in volumes


def test_the_e2e_manifests_are_valid_kubernetes_objects() -> None:
    for path in sorted(MANIFESTS.glob("*.yaml")):
        for obj in load_yaml_documents(path):
            if obj["kind"] == "SessionPolicy":
                parse_policy(obj)
            else:
                kubernetes_validate.validate(obj, "1.25", strict=True)


def test_the_e2e_script_installs_what_the_e2e_module_expects() -> None:
    e2e = _e2e_module()
    script = (ROOT / "scripts" / "e2e-kind.sh").read_text()
    assert f"release_ns={e2e.RELEASE_NAMESPACE}" in script
    assert f"app_ns={e2e.APP_NAMESPACE}" in script
    assert f"helm upgrade --install {e2e.WORKLOAD} " in script
    assert "helm upgrade --install curfew charts/curfew" in script
    assert e2e.OPERATOR_ACCOUNT.endswith(":curfew")
