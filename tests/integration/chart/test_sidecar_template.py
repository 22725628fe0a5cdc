"""The curfew-sidecar library chart, included by an app chart as the docs tell app teams to.

The sample app chart (tests/fixtures/charts/demo-app) depends on the library through a file://
repository; helm builds the dependency and renders the app, offline, like any app chart would.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from chart_helpers import DEMO_APP_CHART, SIDECAR_CHART, one, run_helm, template

from curfew.api.config import WorkloadId
from curfew.render import build_config_map_name


@pytest.fixture(scope="module")
def app_chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo app chart with its curfew-sidecar dependency built, in a scratch copy."""
    chart = tmp_path_factory.mktemp("charts") / "demo-app"
    shutil.copytree(DEMO_APP_CHART, chart)
    manifest = chart / "Chart.yaml"
    manifest.write_text(
        re.sub(r"file://\S+", f"file://{SIDECAR_CHART}", manifest.read_text())
    )
    proc = run_helm("dependency", "build", str(chart))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return chart


def _render_app(chart: Path, *sets: str) -> list[dict[str, Any]]:
    return template(chart=chart, sets=sets)


def _sidecar(objects: list[dict[str, Any]]) -> dict[str, Any]:
    containers = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    (sidecar,) = [c for c in containers if c["name"] == "curfew-sidecar"]
    return sidecar


def test_the_demo_app_with_the_sidecar_renders_valid_kubernetes_objects(app_chart: Path) -> None:
    for obj in _render_app(app_chart):
        for version in ("1.25", kubernetes_validate.latest_version()):
            kubernetes_validate.validate(obj, version, strict=True)


def test_the_sidecar_proxies_to_the_app_port_and_reads_the_mounted_policy(
    app_chart: Path,
) -> None:
    sidecar = _sidecar(_render_app(app_chart, "appPort=3000"))
    assert sidecar["args"] == [
        "sidecar",
        "--config=/etc/curfew/policy.json",
        "--listen=0.0.0.0:8080",
        "--ops-listen=0.0.0.0:9469",
        "--mode=proxy",
        "--upstream=http://127.0.0.1:3000",
    ]
    assert sidecar["ports"] == [
        {"name": "curfew", "containerPort": 8080, "protocol": "TCP"},
        {"name": "curfew-ops", "containerPort": 9469, "protocol": "TCP"},
    ]
    assert sidecar["volumeMounts"] == [
        {"name": "curfew-config", "mountPath": "/etc/curfew", "readOnly": True}
    ]


def test_the_redis_url_and_session_key_come_from_secret_references_only(app_chart: Path) -> None:
    sidecar = _sidecar(_render_app(app_chart, "redisSecret=shop-sessions"))
    env = {item["name"]: item for item in sidecar["env"]}
    assert set(env) == {"REDIS_URL", "CURFEW_SESSION_KEY"}
    assert "value" not in env["REDIS_URL"]
    assert "value" not in env["CURFEW_SESSION_KEY"]
    assert env["REDIS_URL"]["valueFrom"]["secretKeyRef"] == {"name": "shop-sessions", "key": "url"}
    # The policy's default session-key reference: the Redis Secret, key session-key.
    assert env["CURFEW_SESSION_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "shop-sessions", "key": "session-key"
    }


def test_the_app_cookie_secret_comes_from_its_secret_reference_only_when_given(
    app_chart: Path,
) -> None:
    without = {item["name"] for item in _sidecar(_render_app(app_chart))["env"]}
    assert "CURFEW_APP_SECRET" not in without
    sidecar = _sidecar(_render_app(app_chart, "appSecret=shop-cookies"))
    env = {item["name"]: item for item in sidecar["env"]}
    assert env["CURFEW_APP_SECRET"] == {"name": "CURFEW_APP_SECRET", "valueFrom": {
        "secretKeyRef": {"name": "shop-cookies", "key": "cookie-secret"}}}


def test_the_config_volume_is_the_configmap_the_operator_writes_for_the_workload(
    app_chart: Path,
) -> None:
    objects = _render_app(app_chart)
    deployment = one(objects, "Deployment")
    (volume,) = deployment["spec"]["template"]["spec"]["volumes"]
    workload = WorkloadId(kind="Deployment", namespace="shop", name=deployment["metadata"]["name"])
    assert volume == {"name": "curfew-config",
                      "configMap": {"name": build_config_map_name(workload)}}


def test_the_sidecar_container_is_hardened_like_the_operator(app_chart: Path) -> None:
    sidecar = _sidecar(_render_app(app_chart))
    assert sidecar["securityContext"]["readOnlyRootFilesystem"] is True
    assert sidecar["securityContext"]["runAsNonRoot"] is True
    assert sidecar["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    # Probes use the ops port, so they never shadow or count against the app's own paths.
    assert sidecar["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "curfew-ops"}
    assert sidecar["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "curfew-ops"}
    assert sidecar["resources"]["limits"]["memory"]


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        pytest.param(["appPort=8080"], "listenPort and appPort are both 8080",
                     id="the app on the sidecar's port"),
        pytest.param(["appPort=9469"], "opsPort 9469 is already taken",
                     id="the app on the sidecar's ops port"),
        pytest.param(["redisSecret="], "redisSecret (the Secret holding the Redis URL) is required",
                     id="no Redis Secret"),
    ],
)
def test_a_misused_template_fails_the_render_with_a_message_saying_what_to_fix(
    app_chart: Path, sets: list[str], message: str
) -> None:
    proc = run_helm("template", "web", str(app_chart), *[f"--set={s}" for s in sets])
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr


def test_the_library_default_image_is_the_package_version() -> None:
    chart = yaml.safe_load((SIDECAR_CHART / "Chart.yaml").read_text())
    text = (SIDECAR_CHART / "templates" / "_sidecar.tpl").read_text()
    assert f'default "curfew:{chart["appVersion"]}" .image' in text


def test_the_sidecar_command_line_is_one_curfew_sidecar_accepts(
    app_chart: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from curfew.cli import build_parser
    from curfew.sidecar.settings import SidecarSettings

    sidecar = _sidecar(_render_app(app_chart, "appPort=3000"))
    args = build_parser().parse_args(sidecar["args"])
    assert args.command == "sidecar"
    # The kubelet resolves the Secret references into these two variables.
    monkeypatch.setenv("REDIS_URL", "redis://redis.shop.svc:6379/0")
    monkeypatch.setenv("CURFEW_SESSION_KEY", "k" * 32)
    settings = SidecarSettings(
        config=args.config, listen=args.listen, ops_listen=args.ops_listen,
        upstream=args.upstream, mode=args.mode,
    )
    assert str(settings.config) == "/etc/curfew/policy.json"
    assert settings.listen == "0.0.0.0:8080"
    assert settings.ops_listen == "0.0.0.0:9469"
    assert settings.upstream == "http://127.0.0.1:3000"
    assert settings.mode == "proxy"
    assert settings.redis_url is not None
    assert settings.session_key is not None
