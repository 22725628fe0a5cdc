"""What the chart's dashboard and alert rules read: their PromQL expressions, and the metric names
in them.

The names are found by a small scan rather than a PromQL parser (none is on PyPI; promtool
parses but does not print what it parsed): string literals, label matchers, groupings, ranges
and offsets are blanked out, then every identifier not called as a function and not a PromQL
keyword is a metric name. A name the scan cannot classify fails the checks that use it, so it
errs towards a test failure, never towards a silent pass.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from tests.integration.chart.chart_helpers import CHART, by_kind, template

DASHBOARD = CHART / "dashboards" / "curfew.json"
KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_RANGE = re.compile(r"\[[^\]]*\]")
_OFFSET = re.compile(r"\boffset\s+-?[0-9a-z]+")
_IDENT = re.compile(r"(?<![\w.$])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")
_LABEL_VALUES = re.compile(r"^\s*label_values\((?:(.*),)?\s*([A-Za-z_]\w*)\s*\)\s*$")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression (or a Grafana ``label_values`` query) selects."""
    found = _LABEL_VALUES.match(expr)
    if found:
        return metric_names(found.group(1)) if found.group(1) else set()
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _GROUPING.sub("", text)
    text = _RANGE.sub("", text)
    text = _OFFSET.sub("", text)
    names = set()
    for match in _IDENT.finditer(text):
        name, call = match.group(1), match.group(2)
        if call is None and name.lower() not in KEYWORDS:
            names.add(name)
    return names


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those inside collapsed rows included."""
    out = []
    for panel in board["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def dashboard_expressions(board: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in panels(board) for t in p.get("targets", [])]
    for var in board["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]
            exprs.append(query["query"] if isinstance(query, dict) else query)
    return exprs


def rendered_rules(*sets: str) -> dict[str, Any]:
    """The ``spec`` of the chart's PrometheusRule (alerts on), as promtool reads a rule file."""
    objects = template(sets=["metrics.alerts.enabled=true", *sets])
    (rule,) = by_kind(objects, "PrometheusRule")
    spec: dict[str, Any] = rule["spec"]
    return spec


def rule_expressions(spec: dict[str, Any]) -> list[str]:
    return [r["expr"] for g in spec["groups"] for r in g["rules"]]


def write_rule_file(spec: dict[str, Any], path: Path) -> Path:
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path
