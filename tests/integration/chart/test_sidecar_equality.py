"""The library chart's sidecar and the injected one are the same container.

helm renders ``curfew-sidecar.container`` (in a scratch chart that passes its values straight to
the template) and :func:`build_sidecar_container` builds the injected container from the same
inputs; the two are compared whole, so a default changed on one side only (an image, a pull
policy, a port, the uid, resources, the Secret references) fails here.

One difference must exist and is normalised, in ``_injected_container``: the injected sidecar's
served port keeps the name of the app port it takes over, the library's is always ``curfew``;
the app port is given unnamed, for which the injected name is ``curfew`` too. The uid is no
parameter of the library chart (it is the image's ``nonroot`` user), so it is compared at its
default in both cases.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_helpers import SIDECAR_CHART, run_helm

from curfew.api.config import WorkloadId
from curfew.defaults import (
    IMAGE,
    PULL_POLICY,
    RUN_AS_USER,
    SIDECAR_LISTEN_PORT,
    SIDECAR_OPS_PORT,
    build_sidecar_resources,
)
from curfew.render.injection import (
    DEFAULT_PORT_NAME,
    InjectionSettings,
    build_pod_config,
    build_sidecar_container,
)
from fixtures.pods import parsed, policy

WORKLOAD = WorkloadId(kind="Deployment", namespace="shop", name="web")


@pytest.fixture(scope="module")
def scratch_chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A chart whose one Pod's second container is the library's, with ``.Values`` as the
    template's parameters."""
    chart = tmp_path_factory.mktemp("charts") / "scratch"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(yaml.safe_dump({
        "apiVersion": "v2", "name": "scratch", "version": "0.1.0",
        "dependencies": [{"name": "curfew-sidecar", "version": ">=0.0.0",
                          "repository": f"file://{SIDECAR_CHART}"}]}))
    (chart / "templates" / "pod.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n"
        "    {{- include \"curfew-sidecar.container\" .Values | nindent 4 }}\n")
    proc = run_helm("dependency", "build", str(chart))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return chart


def _library_container(chart: Path, values: dict[str, Any]) -> dict[str, Any]:
    values_file = chart / "values.json"
    values_file.write_text(json.dumps(values))
    proc = run_helm("template", "web", str(chart), "--values", str(values_file))
    assert proc.returncode == 0, proc.stderr
    (pod,) = [doc for doc in yaml.safe_load_all(proc.stdout) if doc]
    (container,) = pod["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def _injected_container(store: dict[str, Any], listen: int, upstream: int,
                        settings: InjectionSettings) -> dict[str, Any]:
    config = build_pod_config(WORKLOAD, {"app": "web"}, [parsed(policy(**store))])
    assert config is not None
    # The library's served port is always named "curfew"; an injected sidecar keeps the name of
    # the app port it takes over, which is "curfew" too when that port had none.
    return build_sidecar_container(config, {"containerPort": listen}, upstream, settings)


CASES = [
    pytest.param(
        {"workloadName": "web", "appPort": 3000, "redisSecret": "sessions-redis"},
        {}, SIDECAR_LISTEN_PORT, 3000, InjectionSettings(),
        id="every default of both sides"),
    pytest.param(
        {"workloadName": "web", "appPort": 3000, "redisSecret": "sessions-redis",
         "redisSecretKey": "redis-url", "sessionKeySecret": "hashing", "sessionKeySecretKey": "k",
         "image": "registry.example.com/curfew:9.9.9", "imagePullPolicy": "Always",
         "listenPort": 8000, "opsPort": 9500,
         "resources": {"requests": {"cpu": "100m", "memory": "96Mi"},
                       "limits": {"cpu": "1", "memory": "256Mi"}}},
        {"redisSecretRef": {"name": "sessions-redis", "key": "redis-url"},
         "sessionKeySecretRef": {"name": "hashing", "key": "k"}},
        8000, 3000,
        InjectionSettings(image="registry.example.com/curfew:9.9.9", image_pull_policy="Always",
                          ops_port=9500, resources={
                              "requests": {"cpu": "100m", "memory": "96Mi"},
                              "limits": {"cpu": "1", "memory": "256Mi"}}),
        id="every parameter overridden on both sides"),
]


@pytest.mark.parametrize(("values", "store", "listen", "upstream", "settings"), CASES)
def test_the_library_chart_and_the_webhook_build_the_same_sidecar_container(
    scratch_chart: Path, values: dict[str, Any], store: dict[str, Any], listen: int,
    upstream: int, settings: InjectionSettings,
) -> None:
    library = _library_container(scratch_chart, values)
    injected = _injected_container(store, listen, upstream, settings)
    assert library == injected


def test_the_defaults_the_comparison_relies_on_are_the_defaults_module() -> None:
    # Guards the first case: were both sides to drift from the defaults together, they would
    # still agree with each other, and this would fail.
    injected = _injected_container({}, SIDECAR_LISTEN_PORT, 3000, InjectionSettings())
    assert injected["image"] == IMAGE
    assert injected["imagePullPolicy"] == PULL_POLICY
    assert injected["securityContext"]["runAsUser"] == RUN_AS_USER
    assert injected["securityContext"]["runAsGroup"] == RUN_AS_USER
    assert injected["resources"] == build_sidecar_resources()
    assert injected["ports"] == [
        {"name": DEFAULT_PORT_NAME, "containerPort": SIDECAR_LISTEN_PORT, "protocol": "TCP"},
        {"name": "curfew-ops", "containerPort": SIDECAR_OPS_PORT, "protocol": "TCP"}]
