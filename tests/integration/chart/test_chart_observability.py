"""The chart's observability objects: the ServiceMonitor, PodMonitor and PrometheusRule match
the Prometheus Operator's CRDs in strict mode (unknown fields rejected), the dashboard ConfigMap
holds the one dashboard file as the Grafana sidecar expects, and the dashboard JSON has what
Grafana requires.

Grafana publishes no JSON schema of its dashboard model on PyPI; DASHBOARD_SCHEMA below is
written from Grafana's dashboard model (the fields its importer and the sidecar's provisioning
read: a title, a uid, a schemaVersion, time, templating variables with a name and a type, and
panels with an id, a type, a gridPos inside 24 columns and targets with a refId), and the
structural checks add what a schema cannot say (unique ids, no overlapping panels).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from chart_helpers import CHART, NAMESPACE, by_kind, one, template, template_error

ROOT = CHART.parents[1]
CRDS = ROOT / "tests" / "fixtures" / "crds"
OBSERVABILITY = CHART / "ci" / "observability-values.yaml"
DASHBOARD = CHART / "dashboards" / "curfew.json"
ON = ["metrics.dashboards.enabled=true", "metrics.alerts.enabled=true",
      "metrics.serviceMonitor.enabled=true", "metrics.sidecarPodMonitor.enabled=true"]


def _strict(schema: Any) -> Any:
    """The CRD schema as the API server's strict field validation applies it: an object with
    declared properties accepts no other field (unless it preserves unknown fields)."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out \
                and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


def _crd_schema(plural: str, version: str = "v1") -> jsonschema.Draft7Validator:
    """A validator of the CRD's schema. Not checked as a schema first: its patterns are Go's
    (``^(?i)(abort|warn)?$``, which Python's re refuses); none of them applies to a field the
    chart sets."""
    crd = yaml.safe_load((CRDS / f"monitoring.coreos.com_{plural}.yaml").read_text())
    (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    return jsonschema.Draft7Validator(_strict(served["schema"]["openAPIV3Schema"]))


@pytest.mark.parametrize(("kind", "plural"), [("PrometheusRule", "prometheusrules"),
                                              ("ServiceMonitor", "servicemonitors"),
                                              ("PodMonitor", "podmonitors")])
def test_the_prometheus_operator_objects_match_their_crds_in_strict_mode(
    kind: str, plural: str,
) -> None:
    obj = one(template(values=[OBSERVABILITY]), kind)
    assert obj["apiVersion"] == "monitoring.coreos.com/v1"
    _crd_schema(plural).validate(obj)
    metadata = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj["metadata"]}
    kubernetes_validate.validate(metadata, kubernetes_validate.latest_version(), strict=True)


def test_the_strict_check_rejects_a_field_the_crd_does_not_have() -> None:
    obj = one(template(values=[OBSERVABILITY]), "PrometheusRule")
    obj["spec"]["groups"][0]["rules"][0]["runbook"] = "https://example.com/"
    with pytest.raises(jsonschema.ValidationError, match="runbook"):
        _crd_schema("prometheusrules").validate(obj)


MONITORING = {"PrometheusRule": "prometheusrules", "ServiceMonitor": "servicemonitors",
              "PodMonitor": "podmonitors"}


@pytest.mark.parametrize("option", ON)
def test_each_option_on_its_own_renders_objects_valid_in_strict_mode(option: str) -> None:
    objects = template(sets=[option])
    assert len(objects) > len(template())
    for obj in objects:
        if obj["kind"] in MONITORING:
            _crd_schema(MONITORING[obj["kind"]]).validate(obj)
            continue
        for version in ("1.25", kubernetes_validate.latest_version()):
            kubernetes_validate.validate(obj, version, strict=True)


def test_the_pod_monitor_scrapes_the_sidecars_ops_port_in_the_watched_namespaces() -> None:
    everywhere = one(template(values=[OBSERVABILITY]), "PodMonitor")["spec"]
    assert everywhere["selector"] == {}
    assert everywhere["namespaceSelector"] == {"any": True}
    (endpoint,) = everywhere["podMetricsEndpoints"]
    assert endpoint["port"] == "curfew-ops"
    assert endpoint["path"] == "/metrics"
    watched = one(template(sets=["metrics.sidecarPodMonitor.enabled=true",
                                 "watchNamespaces={shop,admin}"]), "PodMonitor")["spec"]
    assert watched["namespaceSelector"] == {"matchNames": ["shop", "admin"]}


def test_the_pod_monitor_port_is_the_one_injection_and_the_library_chart_name() -> None:
    from curfew.render.injection import OPS_PORT_NAME

    library = (CHART.parent / "curfew-sidecar" / "templates" / "_sidecar.tpl").read_text()
    assert OPS_PORT_NAME == "curfew-ops"
    assert "- name: curfew-ops" in library


def test_nothing_is_rendered_by_default_nor_without_metrics() -> None:
    assert not by_kind(template(), "PrometheusRule")
    assert not by_kind(template(), "PodMonitor")
    assert not [o for o in template() if o["kind"] == "ConfigMap"
                and "grafana_dashboard" in o["metadata"]["labels"]]
    objects = template(sets=["metrics.enabled=false", *ON])
    assert not by_kind(objects, "PrometheusRule")
    assert not by_kind(objects, "PodMonitor")
    assert not by_kind(objects, "ConfigMap")


def test_the_dashboard_configmap_holds_the_dashboard_file_for_the_grafana_sidecar() -> None:
    config_map = one(template(values=[OBSERVABILITY]), "ConfigMap")
    meta = config_map["metadata"]
    assert meta["labels"]["grafana_dashboard"] == "1"
    assert meta["annotations"] == {"grafana_folder": "Curfew"}
    assert meta["namespace"] == NAMESPACE
    assert list(config_map["data"]) == ["curfew.json"]
    assert json.loads(config_map["data"]["curfew.json"]) == json.loads(DASHBOARD.read_text())


def test_the_dashboard_can_go_to_grafana_s_namespace_with_its_labels() -> None:
    config_map = one(template(sets=[
        "metrics.dashboards.enabled=true", "metrics.dashboards.namespace=monitoring",
        "metrics.dashboards.labels.team=platform"]), "ConfigMap")
    assert config_map["metadata"]["namespace"] == "monitoring"
    assert config_map["metadata"]["labels"]["team"] == "platform"
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert "annotations" not in config_map["metadata"]


@pytest.mark.parametrize(("sets", "message"), [
    pytest.param(["metrics.alerts.overrides.CurfewPurgeFailing.for=5m"],
                 "metrics.alerts.overrides", id="an override of an alert that does not exist"),
    pytest.param(["metrics.alerts.overrides.CurfewPurgeFailed.severity=page"],
                 "severity", id="a severity outside critical, warning, info"),
    pytest.param(["metrics.alerts.overrides.CurfewPurgeFailed.for=soon"],
                 "for", id="a for that is not a duration"),
    pytest.param(["metrics.alerts.runbookBaseURL=docs/runbooks.md#x"], "runbookBaseURL",
                 id="a runbook address that is not an http URL or carries an anchor"),
    pytest.param(["metrics.alerts.purgeMissedRuns=0"], "purgeMissedRuns",
                 id="zero missed purge runs"),
    pytest.param(["metrics.dashboards.namespace=Monitoring"], "metrics.dashboards.namespace",
                 id="a dashboard namespace that is not a DNS label"),
])
def test_the_schema_rejects_a_mistaken_observability_value(sets: list[str],
                                                           message: str) -> None:
    error = template_error(sets=sets)
    assert "values don't meet the specifications of the schema" in error
    assert message in error, error


# --- the dashboard JSON -------------------------------------------------------------------------

_DATASOURCE = {"type": "object", "required": ["type", "uid"],
               "properties": {"type": {"const": "prometheus"},
                              "uid": {"const": "${datasource}"}}}
_GRID = {"type": "object", "required": ["h", "w", "x", "y"],
         "properties": {"h": {"type": "integer", "minimum": 1},
                        "w": {"type": "integer", "minimum": 1, "maximum": 24},
                        "x": {"type": "integer", "minimum": 0, "maximum": 23},
                        "y": {"type": "integer", "minimum": 0}}}
_TARGET = {"type": "object", "required": ["refId", "expr", "datasource"],
           "properties": {"refId": {"type": "string", "pattern": "^[A-Z]$"},
                          "expr": {"type": "string", "minLength": 1},
                          "legendFormat": {"type": "string"},
                          "datasource": _DATASOURCE}}
_PANEL = {"type": "object", "required": ["id", "type", "title", "gridPos"],
          "properties": {"id": {"type": "integer", "minimum": 1},
                         "type": {"enum": ["row", "timeseries", "stat", "table", "gauge"]},
                         "title": {"type": "string", "minLength": 1},
                         "gridPos": _GRID,
                         "datasource": _DATASOURCE,
                         "targets": {"type": "array", "items": _TARGET},
                         "fieldConfig": {"type": "object", "required": ["defaults"],
                                         "properties": {"defaults": {"type": "object"},
                                                        "overrides": {"type": "array"}}}},
          "if": {"properties": {"type": {"const": "row"}}},
          "then": {"required": ["collapsed", "panels"]},
          "else": {"required": ["datasource", "targets", "fieldConfig", "description"],
                   "properties": {"targets": {"minItems": 1},
                                  "fieldConfig": {"properties": {"defaults": {
                                      "required": ["unit"]}}}}}}
_VARIABLE = {"type": "object", "required": ["name", "type"],
             "properties": {"name": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                            "type": {"enum": ["query", "datasource", "custom", "constant",
                                              "interval", "textbox", "adhoc"]}}}
DASHBOARD_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["title", "uid", "schemaVersion", "panels", "templating", "time", "editable"],
    "properties": {
        "id": {"type": "null"},  # a dashboard to import carries no database id
        "uid": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,40}$"},
        "title": {"type": "string", "minLength": 1},
        "schemaVersion": {"type": "integer", "minimum": 36},
        "time": {"type": "object", "required": ["from", "to"]},
        "refresh": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "templating": {"type": "object", "required": ["list"],
                       "properties": {"list": {"type": "array", "items": _VARIABLE}}},
        "panels": {"type": "array", "minItems": 1, "items": _PANEL},
    },
}


def _board() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def _panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for top in board["panels"] for p in (top, *top.get("panels", []))]


def test_the_dashboard_matches_the_schema_of_grafana_s_dashboard_model() -> None:
    jsonschema.Draft202012Validator.check_schema(DASHBOARD_SCHEMA)
    jsonschema.Draft202012Validator(DASHBOARD_SCHEMA).validate(_board())


def test_the_schema_check_refuses_a_panel_outside_the_grid_or_without_a_datasource() -> None:
    validator = jsonschema.Draft202012Validator(DASHBOARD_SCHEMA)
    wide = _board()
    wide["panels"][1]["gridPos"]["w"] = 25
    assert not validator.is_valid(wide)
    blind = _board()
    del blind["panels"][1]["targets"][0]["datasource"]
    assert not validator.is_valid(blind)


def test_panel_ids_are_unique_and_panels_fit_24_columns_without_overlapping() -> None:
    panels = _panels(_board())
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    taken: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {(grid["x"] + dx, grid["y"] + dy)
                 for dx in range(grid["w"]) for dy in range(grid["h"])}
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


def test_every_target_uses_the_datasource_variable_and_the_variables_exist() -> None:
    board = _board()
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert {"namespace", "workload"} <= set(variables)
    for panel in _panels(board):
        if panel["type"] == "row":
            continue
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    refs = {word for p in _panels(board) for t in p.get("targets", [])
            for word in ("$namespace", "$workload") if word in t["expr"]}
    assert refs == {"$namespace", "$workload"}


def test_the_dashboard_has_the_panels_a_platform_engineer_asks_for() -> None:
    titles = {p["title"] for p in _panels(_board())}
    assert {"Requests by decision", "Added latency p50 / p99", "Redis errors", "Live sessions",
            "Sessions removed by the purge", "Purge runs by outcome", "Purge duration",
            "Last successful purge", "Reconcile passes and errors", "Queue depth",
            "Webhook admissions", "Policies not Ready"} <= titles


def test_the_one_dashboard_source_is_the_file_the_chart_ships(tmp_path: Path) -> None:
    sources = sorted(p.name for p in (CHART / "dashboards").iterdir())
    assert sources == ["curfew.json"]
