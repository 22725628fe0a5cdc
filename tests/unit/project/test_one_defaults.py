"""The sidecar's defaults live in ``curfew.defaults``: render, the webhook's settings and the
chart's ``injection.sidecar`` values name the same uid, ports, pull policy and resources.

(The library chart's template is compared with the injected container by helm, in
``tests/integration/chart/test_sidecar_equality.py``.)
"""

from __future__ import annotations

from pathlib import Path

import yaml

from curfew.defaults import (
    PULL_POLICY,
    RUN_AS_USER,
    SIDECAR_OPS_PORT,
    build_sidecar_resources,
)
from curfew.operator.settings import InjectionWebhookSettings
from curfew.render.injection import InjectionSettings
from curfew.render.objects import RenderSettings

ROOT = Path(__file__).resolve().parents[3]


def test_the_webhook_settings_default_to_the_defaults_module() -> None:
    webhook = InjectionWebhookSettings()
    assert (webhook.image_pull_policy, webhook.ops_port, webhook.run_as_user) == (
        PULL_POLICY, SIDECAR_OPS_PORT, RUN_AS_USER)
    assert webhook.resources == build_sidecar_resources()
    assert webhook.sidecar() == InjectionSettings()


def test_render_defaults_to_the_defaults_module() -> None:
    sidecar = InjectionSettings()
    assert (sidecar.image_pull_policy, sidecar.ops_port, sidecar.run_as_user) == (
        PULL_POLICY, SIDECAR_OPS_PORT, RUN_AS_USER)
    assert sidecar.resources == build_sidecar_resources()
    purge = RenderSettings()
    assert (purge.image_pull_policy, purge.run_as_user) == (PULL_POLICY, RUN_AS_USER)


def test_the_charts_injection_sidecar_values_are_the_defaults_module() -> None:
    values = yaml.safe_load((ROOT / "charts" / "curfew" / "values.yaml").read_text())
    sidecar = values["injection"]["sidecar"]
    assert sidecar["pullPolicy"] == PULL_POLICY
    assert sidecar["opsPort"] == SIDECAR_OPS_PORT
    assert sidecar["runAsUser"] == RUN_AS_USER
    assert sidecar["resources"] == build_sidecar_resources()


def test_each_call_gives_its_own_resources_so_no_caller_changes_anothers() -> None:
    first = build_sidecar_resources()
    first["limits"]["memory"] = "1Gi"
    assert build_sidecar_resources()["limits"]["memory"] == "128Mi"
