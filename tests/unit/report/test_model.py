"""The report's data: every effective timeout explained by the policies it came from, every
listed profile judged against what the workload enforces, purge results only where known."""

from __future__ import annotations

from typing import Any

import pytest
from report_samples import policy, workload

from curfew.api import Duration, SessionPolicy
from curfew.report import ProfileCheck, Report, WorkloadReport, build_report


def report(policies: list[SessionPolicy], workloads: list[dict[str, Any]],
           **kwargs: Any) -> Report:
    return build_report(policies, workloads, generated_at="now", source="test", version="0",
                        **kwargs)


def only(rep: Report, name: str = "web") -> WorkloadReport:
    return next(w for ns in rep.namespaces for w in ns.workloads if w.name == name)


def origins(w: WorkloadReport) -> dict[str, tuple[str | None, tuple[str, ...], str]]:
    return {t.field: (str(t.value) if t.value else None, t.policies, t.origin)
            for t in w.timeouts}


def test_a_workload_of_one_policy_takes_every_value_from_it() -> None:
    w = only(report([policy("a", renewal="1h")], [workload()]))
    got = origins(w)
    assert got["idle"] == ("15m", ("shop/a",), "set by shop/a")
    assert got["renewal"] == ("1h", ("shop/a",), "set by shop/a")
    assert got["warningLead"] == (None, (), "not set by any policy")
    assert w.winner == "shop/a"
    assert w.sources == ("shop/a",)


def test_overlapping_policies_each_give_the_timeouts_they_are_shortest_in() -> None:
    strict = policy("strict", idle="5m", absolute="12h", priority=10)
    loose = policy("loose", idle="30m", absolute="4h")
    got = origins(only(report([strict, loose], [workload()])))
    assert got["idle"][:2] == ("5m", ("shop/strict",))
    assert got["absolute"][:2] == ("4h", ("shop/loose",))
    assert "shop/strict 12h" in got["absolute"][2]
    assert "shop/loose 4h" in got["absolute"][2]
    assert only(report([strict, loose], [workload()])).winner == "shop/strict"


def test_policies_that_tie_are_all_named_as_the_origin() -> None:
    got = origins(only(report([policy("a", idle="10m"), policy("b", idle="10m")],
                              [workload()])))
    assert got["idle"][1] == ("shop/a", "shop/b")


def test_a_renewal_longer_than_the_effective_absolute_is_reported_as_dropped() -> None:
    got = origins(only(report([policy("a", absolute="2h", renewal="2h"),
                               policy("b", absolute="1h")], [workload()])))
    value, policies, origin = got["renewal"]
    assert value is None
    assert policies == ()
    assert origin.startswith("dropped: shop/a 2h exceeds the effective absolute 1h")


def test_a_warning_not_shorter_than_the_effective_idle_is_reported_as_halved() -> None:
    got = origins(only(report([policy("a", idle="10m", warningLead="8m"),
                               policy("b", idle="6m")], [workload()])))
    value, policies, origin = got["warningLead"]
    assert value == "3m"
    assert policies == ()
    assert origin.startswith("half the effective idle 6m: shop/a 8m")


def test_the_reported_values_are_the_ones_the_operator_writes() -> None:
    from curfew.render import render

    policies = [policy("a", idle="10m", warningLead="8m", renewal="3h"),
                policy("b", idle="6m", absolute="2h")]
    rendered = render(policies, [workload()])
    config = next(iter(rendered.configs.values()))
    got = {t.field: t.value for t in only(report(policies, [workload()])).timeouts}
    assert got["idle"] == Duration.of_seconds(config.timeouts.idle_seconds)
    assert got["absolute"] == Duration.of_seconds(config.timeouts.absolute_seconds)
    assert config.timeouts.renewal_seconds is None
    assert got["renewal"] is None
    assert got["warningLead"] == Duration.of_seconds(config.timeouts.warning_lead_seconds or 0)


def checks(w: WorkloadReport) -> dict[str, ProfileCheck]:
    return {p.profile: p for p in w.profiles}


def test_a_profile_is_met_when_every_limit_is_and_each_limit_is_named_with_its_clause() -> None:
    got = checks(only(report([policy("a", idle="10m", profiles=("pci-dss-4.0",))],
                             [workload()])))
    pci = got["pci-dss-4.0"]
    assert pci.meets
    assert pci.clause == "PCI DSS v4.0 requirement 8.2.8"
    assert pci.reasons == ("idle 10m is within the limit of 15m",
                           "the standard sets no absolute limit")
    assert pci.required_by == ("shop/a",)


def test_a_missed_limit_says_by_how_much() -> None:
    got = checks(only(report([policy("a", idle="30m", absolute="20h",
                                     profiles=("nist-800-63b-aal3",))], [workload()])))
    aal3 = got["nist-800-63b-aal3"]
    assert not aal3.meets
    assert aal3.reasons == ("idle 30m exceeds the limit of 15m",
                            "absolute 20h exceeds the limit of 12h")
    assert aal3.clause == "NIST SP 800-63B-4 section 2.3.3"


def test_a_loose_policy_overlapped_by_a_strict_one_meets_through_the_effective_values() -> None:
    loose = policy("loose", idle="30m", profiles=("pci-dss-4.0",))
    strict = policy("strict", idle="10m")
    w = only(report([loose, strict], [workload()]))
    assert checks(w)["pci-dss-4.0"].meets
    assert w.compliant


def test_a_workload_in_audit_mode_misses_every_profile_because_nothing_expires() -> None:
    w = only(report([policy("a", idle="5m", enforcement="Audit",
                            profiles=("pci-dss-4.0",))], [workload()]))
    pci = checks(w)["pci-dss-4.0"]
    assert not pci.meets
    assert any("enforcement is Audit" in r for r in pci.reasons)
    assert not w.compliant


def test_profiles_are_listed_once_in_the_standards_order_with_every_policy_requiring_them(
) -> None:
    a = policy("a", profiles=("nist-800-63b-aal2", "pci-dss-4.0"))
    b = policy("b", profiles=("pci-dss-4.0",))
    w = only(report([a, b], [workload()]))
    assert [p.profile for p in w.profiles] == ["pci-dss-4.0", "nist-800-63b-aal2"]
    assert checks(w)["pci-dss-4.0"].required_by == ("shop/a", "shop/b")


def test_workloads_no_policy_selects_are_listed_as_such() -> None:
    rep = report([policy("a")], [workload(), workload("batch", {"app": "batch"})])
    ns = rep.namespaces[0]
    assert [w.name for w in ns.unselected] == ["batch"]
    assert not ns.unselected[0].compliant


def test_a_policy_of_another_namespace_never_selects_a_workload() -> None:
    rep = report([policy("a", namespace="other")], [workload()])
    assert [ns.namespace for ns in rep.namespaces] == ["other", "shop"]
    assert rep.namespaces[1].unselected[0].name == "web"


def test_from_files_the_purge_results_are_not_available() -> None:
    rep = report([policy("a")], [workload()])
    purge = rep.namespaces[0].policies[0].purge
    assert purge is not None
    assert not purge.available
    assert purge.last is None


def test_from_a_cluster_the_last_purge_and_the_failures_come_from_the_status() -> None:
    status = {"lastPurge": {"time": "2026-01-02T03:04:05Z", "outcome": "aborted",
                            "scanned": 40, "expired": {"idle": 3}, "durationSeconds": 1.5,
                            "message": "would remove 60%"},
              "purgeFailures": 2,
              "conditions": [{"type": "Ready", "status": "True", "reason": "Applied",
                              "message": "ok", "lastTransitionTime": "x"}]}
    rep = report([policy("a")], [workload()], statuses={"shop/a": status})
    entry = rep.namespaces[0].policies[0]
    assert entry.purge is not None
    assert entry.purge.available
    assert entry.purge.last is not None
    assert entry.purge.last.outcome == "aborted"
    assert entry.purge.last.expired.idle == 3
    assert entry.purge.consecutive_failures == 2
    assert entry.conditions == (("Ready", "True", "ok"),)


@pytest.mark.parametrize("last_purge", [{"outcome": "exploded"}, "garbage", {"time": 3}],
                         ids=["an unknown outcome", "a string", "a wrong type"])
def test_a_status_this_version_cannot_read_shows_no_purge_rather_than_failing(
    last_purge: Any,
) -> None:
    rep = report([policy("a")], [workload()], statuses={"shop/a": {"lastPurge": last_purge}})
    purge = rep.namespaces[0].policies[0].purge
    assert purge is not None
    assert purge.available
    assert purge.last is None


def test_a_policy_without_a_status_yet_has_no_purge_run() -> None:
    rep = report([policy("a")], [workload()], statuses={})
    purge = rep.namespaces[0].policies[0].purge
    assert purge is not None
    assert purge.available
    assert purge.last is None


def test_an_invalid_policy_is_listed_as_not_in_force_with_its_error() -> None:
    rep = report([policy("a")], [workload()], invalid={"shop/broken": "spec.timeouts: required"})
    entries = {p.key: p for p in rep.namespaces[0].policies}
    assert entries["shop/broken"].problem == "spec.timeouts: required"
    assert entries["shop/a"].problem is None


def test_the_report_is_the_same_whatever_the_order_of_its_inputs() -> None:
    policies = [policy("a", idle="5m"), policy("b", absolute="1h")]
    workloads = [workload(), workload("cart", {"app": "web"}, kind="StatefulSet")]
    assert report(policies, workloads) == report(policies[::-1], workloads[::-1])
