"""The chart's alert rules pass ``promtool check rules`` and the unit tests of
tests/fixtures/alerts (``promtool test rules``), each alert fires in at least one test and stays
silent in the healthy one, and each links a runbook section that exists.

promtool comes from Debian's ``prometheus`` package (scripts/system-deps.sh): without it these
tests skip on a developer's machine and fail in CI (``CI=true``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.chart.chart_helpers import CHART, NAMESPACE, RELEASE
from tests.integration.observability.series import (
    metric_names,
    rendered_rules,
    rule_expressions,
    write_rule_file,
)

ROOT = CHART.parents[1]
RULE_TESTS = ROOT / "tests" / "fixtures" / "alerts" / "curfew.test.yaml"
RUNBOOKS = ROOT / "docs" / "runbooks.md"
TEST_RUNBOOKS = "https://runbooks.test/runbooks.md"
HEALTHY = "a healthy cluster raises no alert"


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        message = "promtool is needed to check the alert rules (Debian: prometheus)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def _alerts(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in spec["groups"] for r in g["rules"]}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return rendered_rules(f"metrics.alerts.runbookBaseURL={TEST_RUNBOOKS}")


def test_promtool_accepts_the_rendered_rules(spec: dict[str, Any], tmp_path: Path) -> None:
    rules = write_rule_file(spec, tmp_path / "rules.yaml")
    done = subprocess.run([_promtool(), "check", "rules", str(rules)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(_alerts(spec))} rules found" in done.stdout


def test_the_rules_unit_tests_pass_under_promtool(spec: dict[str, Any], tmp_path: Path) -> None:
    write_rule_file(spec, tmp_path / "rules.yaml")
    tests = shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    done = subprocess.run([_promtool(), "test", "rules", str(tests)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_a_broken_rule_fails_the_unit_tests_so_they_can_fail(
    spec: dict[str, Any], tmp_path: Path,
) -> None:
    broken = yaml.safe_load(yaml.safe_dump(spec))
    for rule in _alerts(broken).values():
        if rule["alert"] == "CurfewPolicyNotReady":
            rule["expr"] = rule["expr"].replace("max by", "min by")  # a standby's stale 0 wins
    write_rule_file(broken, tmp_path / "rules.yaml")
    tests = shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    done = subprocess.run([_promtool(), "test", "rules", str(tests)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode != 0
    assert "CurfewPolicyNotReady" in done.stdout + done.stderr


def test_every_alert_fires_in_a_unit_test_and_stays_silent_in_the_healthy_one(
    spec: dict[str, Any],
) -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {case["alertname"] for group in tests for case in group["alert_rule_test"]
             if case.get("exp_alerts")}
    (healthy,) = [group for group in tests if group["name"] == HEALTHY]
    silent = {case["alertname"] for case in healthy["alert_rule_test"]
              if not case.get("exp_alerts")}
    assert fired == set(_alerts(spec))
    assert silent == set(_alerts(spec))


def _anchors(markdown: str) -> set[str]:
    """GitHub's anchors of a Markdown file's headings."""
    anchors = set()
    for line in markdown.splitlines():
        heading = re.match(r"^#{1,6}\s+(.*?)\s*$", line)
        if heading:
            text = re.sub(r"[^\w\- ]", "", heading.group(1).lower())
            anchors.add(text.replace(" ", "-"))
    return anchors


def test_every_runbook_url_points_at_a_section_of_the_runbooks_that_exists(
    spec: dict[str, Any],
) -> None:
    anchors = _anchors(RUNBOOKS.read_text())
    for name, rule in _alerts(spec).items():
        url = rule["annotations"]["runbook_url"]
        base, _, anchor = url.partition("#")
        assert base == TEST_RUNBOOKS, name
        assert anchor == name.lower()
        assert anchor in anchors, f"docs/runbooks.md has no section #{anchor} for {name}"


def test_the_default_runbook_address_is_the_runbooks_file_of_the_docs() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["metrics"]["alerts"]["runbookBaseURL"].endswith("/docs/runbooks.md")


def test_every_alert_has_a_severity_a_summary_and_a_description(spec: dict[str, Any]) -> None:
    for name, rule in _alerts(spec).items():
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert rule["annotations"]["summary"], name
        assert rule["annotations"]["description"], name


def test_overrides_change_an_alert_s_for_and_severity_and_nothing_else() -> None:
    default = _alerts(rendered_rules())
    changed = _alerts(rendered_rules("metrics.alerts.overrides.CurfewPurgeAborted.for=30m",
                                     "metrics.alerts.overrides.CurfewPurgeAborted.severity=critical"))
    assert changed["CurfewPurgeAborted"]["for"] == "30m"
    assert changed["CurfewPurgeAborted"]["labels"]["severity"] == "critical"
    assert {k: v for k, v in changed.items() if k != "CurfewPurgeAborted"} == \
        {k: v for k, v in default.items() if k != "CurfewPurgeAborted"}


def test_the_thresholds_reach_the_expressions() -> None:
    alerts = _alerts(rendered_rules("metrics.alerts.purgeMissedRuns=7",
                                    "metrics.alerts.purgeStaleSeconds=86400",
                                    "metrics.alerts.expirySpikeFactor=12",
                                    "metrics.alerts.expirySpikeMinRate=2"))
    assert alerts["CurfewPurgeNotSucceeding"]["expr"].endswith(">= 7")
    assert alerts["CurfewPurgeStale"]["expr"].endswith("> 86400")
    assert "> 12 * clamp_min(" in alerts["CurfewExpirySpike"]["expr"]
    assert alerts["CurfewExpirySpike"]["expr"].count(", 2)") == 1


def test_operator_down_watches_this_release_s_metrics_service() -> None:
    expr = _alerts(rendered_rules())["CurfewOperatorDown"]["expr"]
    assert expr == f'absent(up{{job="{RELEASE}-metrics", namespace="{NAMESPACE}"}} == 1)'


def test_the_metric_name_scan_finds_every_selected_series_and_nothing_else() -> None:
    expr = ('sum by (namespace, workload) (rate(curfew_x_total{decision=~"idle|absolute",'
            ' a="b{c}"}[5m] offset 1h) * on (job, instance) group_left (workload) '
            'max by (job) (kube_pod_info)) > 2 * clamp_min(up or vector(0), 1e-3) and bool '
            'histogram_quantile(0.99, sum by (le) (rate(h_bucket[$__rate_interval])))')
    assert metric_names(expr) == {"curfew_x_total", "kube_pod_info", "up", "h_bucket"}
    assert metric_names('label_values(curfew_info{namespace=~"$namespace"}, workload)') == \
        {"curfew_info"}
    assert metric_names("label_values(namespace)") == set()


def test_the_rules_read_only_curfew_series_and_prometheus_s_own_up(spec: dict[str, Any]) -> None:
    names = set().union(*(metric_names(e) for e in rule_expressions(spec)))
    assert names - {"up"}
    assert all(n.startswith("curfew_") for n in names - {"up"}), names
