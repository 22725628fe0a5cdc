"""The settings the chart gives the operator are the ones ``curfew operator`` reads.

The chart configures the operator through ``CURFEW_OPERATOR_*`` environment variables; each one
rendered in every supported mode must name a real setting and parse into the intended value, so a
renamed setting breaks here instead of being silently ignored in a cluster.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_helpers import CHART, CI_VALUES, one, template

from curfew.operator.settings import OperatorSettings

PREFIX = "CURFEW_OPERATOR_"
MODES: list[Path | None] = [None, *CI_VALUES]


def _values(values: Path | None) -> dict[str, Any]:
    """The chart's defaults with a values file merged in, as helm merges them."""
    base: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return _merge(base, yaml.safe_load(values.read_text())) if values else base


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        both_maps = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = _merge(merged[key], value) if both_maps else value
    return merged


@pytest.mark.parametrize("values", MODES, ids=lambda v: "defaults" if v is None else v.stem)
def test_the_operator_reads_every_setting_the_chart_gives_it(
    values: Path | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = template(values=[values] if values else [])
    container = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    env = {item["name"]: item["value"] for item in container["env"] if "value" in item}
    settings_env = {name: value for name, value in env.items() if name.startswith(PREFIX)}
    fields = OperatorSettings.model_fields
    assert [n for n in settings_env if n.removeprefix(PREFIX).lower() not in fields] == []

    for name in list(os.environ):
        if name.startswith(PREFIX):
            monkeypatch.delenv(name)
    for name, value in settings_env.items():
        monkeypatch.setenv(name, value)
    settings = OperatorSettings()

    chosen = _values(values)
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert settings.namespaces == chosen["watchNamespaces"]
    assert settings.standalone is (chosen["replicaCount"] == 1)
    assert settings.peering_name == chosen["operator"]["peeringName"]
    assert settings.liveness_port == ports["health"]
    assert settings.metrics_port == ports.get("metrics", 0)
    assert settings.purge_image == (chosen["operator"]["purgeImage"] or container["image"])
    assert settings.scan_cluster is False
    assert settings.log_level == chosen["operator"]["logLevel"].upper()
    assert json.loads(env[f"{PREFIX}NAMESPACES"]) == settings.namespaces
