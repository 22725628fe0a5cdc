"""build_status: conditions in metav1.Condition shape, transition times kept when nothing
changed, purge health from the summaries of finished purge runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from curfew.api import PROFILES, SessionPolicyStatus, Violation
from curfew.operator.status import (
    PassOutcome,
    WorkloadEntry,
    build_last_purge,
    build_purge_record,
    build_status,
    build_status_body,
)

T0, T1 = "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z"
WEB = WorkloadEntry("Deployment", "web", "curfew-deployment-web", "sha256:1")


def built(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """The status patch body a pass would send."""
    return build_status_body(build_status(*args, **kwargs))


def _conditions(status: dict) -> dict[str, dict]:
    return {c["type"]: c for c in status["conditions"]}


def test_a_reconciled_policy_is_ready_with_its_generation_and_workloads() -> None:
    status = built({}, PassOutcome(generation=3, workloads=[WEB]), now=T0,
                          purge_failure_threshold=3)
    conds = _conditions(status)
    assert status["observedGeneration"] == 3
    assert status["selectedWorkloads"] == 1
    assert status["workloads"] == [{"kind": "Deployment", "name": "web",
                                    "configMap": "curfew-deployment-web",
                                    "configHash": "sha256:1"}]
    assert [c["type"] for c in status["conditions"]] == ["Ready", "Overlapping", "Compliant",
                                                         "PurgeHealthy"]
    assert (conds["Ready"]["status"], conds["Ready"]["reason"]) == ("True", "Reconciled")
    assert conds["Ready"]["observedGeneration"] == 3
    assert conds["PurgeHealthy"]["status"] == "Unknown"


def test_the_same_outcome_later_builds_an_identical_status() -> None:
    outcome = PassOutcome(generation=1, workloads=[WEB], overlaps=["shop/b"])
    first = built({}, outcome, now=T0, purge_failure_threshold=3)
    assert built(first, outcome, now=T1, purge_failure_threshold=3) == first


def test_a_status_change_moves_the_transition_time_and_a_message_change_does_not() -> None:
    first = built({}, PassOutcome(generation=1, workloads=[WEB], overlaps=["shop/b"]),
                         now=T0, purge_failure_threshold=3)
    other = built(first, PassOutcome(generation=2, workloads=[WEB], overlaps=["shop/c"]),
                         now=T1, purge_failure_threshold=3)
    assert _conditions(other)["Overlapping"]["lastTransitionTime"] == T0
    assert "shop/c" in _conditions(other)["Overlapping"]["message"]
    gone = built(other, PassOutcome(generation=3, workloads=[WEB]), now=T1,
                        purge_failure_threshold=3)
    assert _conditions(gone)["Overlapping"]["lastTransitionTime"] == T1


def test_an_invalid_spec_keeps_the_last_workloads_and_says_which_field() -> None:
    good = built({}, PassOutcome(generation=1, workloads=[WEB]), now=T0,
                        purge_failure_threshold=3)
    bad = built(good, PassOutcome(generation=2, invalid="spec.timeouts.idle: bad"), now=T1,
                       purge_failure_threshold=3)
    ready = _conditions(bad)["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert ready["message"].startswith("spec.timeouts.idle: bad")
    assert bad["workloads"] == good["workloads"]
    assert bad["observedGeneration"] == 2


def test_violated_profiles_make_the_policy_non_compliant() -> None:
    profile = PROFILES["pci-dss-4.0"]
    assert profile.max_idle is not None
    violation = Violation("pci-dss-4.0", "timeouts.idle", profile.max_idle, profile.max_idle)
    status = built({}, PassOutcome(generation=1, workloads=[], violations=[violation],
                                      profiles=["pci-dss-4.0"]), now=T0,
                          purge_failure_threshold=3)
    compliant = _conditions(status)["Compliant"]
    assert (compliant["status"], compliant["reason"]) == ("False", "ProfileViolated")
    assert "pci-dss-4.0" in compliant["message"]


@pytest.mark.parametrize(("outcomes", "status", "reason"), [
    (["ok"], "True", "PurgeSucceeded"),
    (["failed"], "True", "PurgeRetrying"),
    (["failed", "failed"], "False", "PurgeFailing"),
    (["failed", "failed", "ok"], "True", "PurgeSucceeded"),
    (["aborted"], "False", "PurgeAborted"),
])
def test_purge_health_follows_consecutive_outcomes(outcomes: list[str], status: str,
                                                   reason: str) -> None:
    current: dict = {}
    for i, outcome in enumerate(outcomes):
        summary = json.dumps({"outcome": outcome, "scanned": 5, "message": "m"})
        result = build_last_purge(summary, job=f"j{i}", finished_at=T0, job_failed=False)
        current = {**current, **build_purge_record(current, result)}
    after = built(current, PassOutcome(generation=1, workloads=[]), now=T0,
                  purge_failure_threshold=2)
    healthy = _conditions(after)["PurgeHealthy"]
    assert (healthy["status"], healthy["reason"]) == (status, reason)


def test_the_summary_is_read_from_the_last_json_line_of_the_termination_message() -> None:
    message = "starting\n" + json.dumps({
        "outcome": "ok", "scanned": 10, "expired": {"idle": 1, "absolute": 2, "tightened": 3},
        "repaired": 4, "durationSeconds": 1.5, "message": "done"})
    last = build_last_purge(message, job="j", finished_at=T0, job_failed=False)
    assert (last.outcome, last.scanned, last.repaired, last.duration_seconds) == ("ok", 10, 4, 1.5)
    assert (last.expired.idle, last.expired.absolute, last.expired.tightened) == (1, 2, 3)


def test_a_pod_that_left_no_summary_is_a_failed_run() -> None:
    last = build_last_purge("OOMKilled", job="j", finished_at=T0, job_failed=True)
    assert last.outcome == "failed"
    assert "without a summary" in last.message


def test_a_capped_workload_list_still_counts_every_selected_workload() -> None:
    status = built({}, PassOutcome(generation=1, workloads=[WEB], selected=5000), now=T0,
                          purge_failure_threshold=3)
    assert status["selectedWorkloads"] == 5000
    assert len(status["workloads"]) == 1
    assert "5000 workload(s)" in _conditions(status)["Ready"]["message"]


GOLDEN = Path(__file__).with_name("status_golden.jsonl")
"""The patch bodies the dict-building status code sent before the status was the pydantic model,
recorded byte for byte: the model changes nothing the API server (or a diff of it) sees."""


def test_the_status_is_the_model_and_its_json_is_byte_identical_to_the_dicts_it_replaced() -> None:
    workloads = [WorkloadEntry(
        "Deployment", "web", "curfew-deployment-web", "sha256:abc"),
        WorkloadEntry("StatefulSet", "db", "curfew-statefulset-db", "sha256:def")]
    purge = build_last_purge(
        '{"outcome":"failed","scanned":12,"expired":{"idle":1},"durationSeconds":0.5,'
        '"message":"redis down"}', job="p-1", finished_at="2026-01-01T00:00:00Z", job_failed=True)
    first = build_status(build_purge_record({}, purge), PassOutcome(
        generation=3, workloads=workloads, selected=7, overlaps=["shop/b"],
        profiles=["owasp-asvs-l2"]), now="2026-01-02T00:00:00Z", purge_failure_threshold=3)
    assert isinstance(first, SessionPolicyStatus)
    second = built(build_status_body(first), PassOutcome(
        generation=4, invalid="spec.timeouts.idle: bad"), now="2026-01-03T00:00:00Z",
        purge_failure_threshold=3)
    third = built({}, PassOutcome(generation=1, workloads=[], apply_error="GET x: 503",
                                  purge_suspended=True),
                  now="2026-01-03T00:00:00Z", purge_failure_threshold=3)
    assert [json.dumps(build_status_body(first)), json.dumps(second), json.dumps(third)] \
        == GOLDEN.read_text().splitlines()


def test_a_hand_edited_status_part_that_is_no_condition_or_workload_is_dropped() -> None:
    current = {"conditions": [{"type": "Foreign", "status": "maybe"},
                              {"type": "Other", "status": "True", "reason": "Fine",
                               "message": "", "lastTransitionTime": T0}],
               "workloads": [{"kind": "Deployment"}], "selectedWorkloads": 1}
    status = built(current, PassOutcome(generation=2, invalid="spec: bad"), now=T1,
                   purge_failure_threshold=3)
    assert "Foreign" not in _conditions(status)
    assert _conditions(status)["Other"]["reason"] == "Fine"
    assert status["workloads"] == []
