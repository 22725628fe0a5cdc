"""The operator's per-policy series: set from the status a pass built, the purge counted once
per recorded run, and dropped with the policy; read back through the real text exposition."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from curfew.operator.metrics import Metrics


def _samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for sample in family.samples
    }


def _value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return _samples(metrics).get((name, tuple(sorted(labels.items()))))


STATUS = {
    "conditions": [{"type": "Ready", "status": "True"}, {"type": "PurgeHealthy",
                                                         "status": "True"}],
    "purgeFailures": 0,
    "lastPurge": {"time": "2026-12-06T05:00:00Z", "outcome": "ok", "scanned": 1200,
                  "durationSeconds": 2.5},
}


def test_a_ready_policy_with_a_successful_purge_sets_its_gauges_from_its_status() -> None:
    metrics = Metrics()
    metrics.observe_policy("shop", "storefront", STATUS)
    key = {"namespace": "shop", "policy": "storefront"}
    assert _value(metrics, "curfew_operator_policy_ready", **key) == 1
    assert _value(metrics, "curfew_operator_purge_last_scanned_sessions", **key) == 1200
    assert _value(metrics, "curfew_operator_purge_last_duration_seconds", **key) == 2.5
    assert _value(metrics, "curfew_operator_purge_last_success_timestamp_seconds",
                  **key) == 1796533200.0
    assert _value(metrics, "curfew_operator_purge_consecutive_failures", **key) == 0


def test_a_policy_not_ready_after_a_failed_purge_keeps_the_last_success_time() -> None:
    metrics = Metrics()
    metrics.observe_policy("shop", "storefront", STATUS)
    failed = {"conditions": [{"type": "Ready", "status": "False"}], "purgeFailures": 2,
              "lastPurge": {"time": "2026-12-06T05:05:00Z", "outcome": "failed"}}
    metrics.observe_policy("shop", "storefront", failed)
    key = {"namespace": "shop", "policy": "storefront"}
    assert _value(metrics, "curfew_operator_policy_ready", **key) == 0
    assert _value(metrics, "curfew_operator_purge_consecutive_failures", **key) == 2
    assert _value(metrics, "curfew_operator_purge_last_success_timestamp_seconds",
                  **key) == 1796533200.0


def test_purge_counters_exist_at_zero_before_the_first_run_so_its_increase_is_seen() -> None:
    metrics = Metrics()
    metrics.observe_policy("shop", "storefront", {"conditions": []})
    for outcome in ("ok", "aborted", "failed"):
        assert _value(metrics, "curfew_operator_purge_runs_total", namespace="shop",
                      policy="storefront", outcome=outcome) == 0
    metrics.count_purge("shop", "storefront", "aborted", {"idle": 0, "absolute": 3,
                                                          "tightened": 0})
    assert _value(metrics, "curfew_operator_purge_runs_total", namespace="shop",
                  policy="storefront", outcome="aborted") == 1
    assert _value(metrics, "curfew_operator_purge_removed_sessions_total", namespace="shop",
                  policy="storefront", reason="absolute") == 3


def test_an_unreadable_status_time_sets_no_last_success_instead_of_failing_the_pass() -> None:
    metrics = Metrics()
    metrics.observe_policy("shop", "storefront", {"lastPurge": {"time": "yesterday",
                                                                "outcome": "ok"}})
    assert _value(metrics, "curfew_operator_purge_last_success_timestamp_seconds",
                  namespace="shop", policy="storefront") is None


def test_a_deleted_policy_s_series_are_dropped_and_its_neighbours_kept() -> None:
    metrics = Metrics()
    metrics.observe_policy("shop", "storefront", STATUS)
    metrics.observe_policy("shop", "admin", STATUS)
    metrics.keep_policies("shop", ["admin"])
    names = {(name, dict(labels).get("policy")) for name, labels in _samples(metrics)}
    assert not {n for n in names if n[1] == "storefront"}
    assert ("curfew_operator_policy_ready", "admin") in names
    assert ("curfew_operator_purge_runs_total", "admin") in names
