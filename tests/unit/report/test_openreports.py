"""The OpenReports ``Report`` built from the report's data, and the writes that keep it equal
to the policies (pure): valid under the CRD's strict schema, one result per workload and
profile, failures kept first when results are capped, nothing that changes between passes."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest
from report_samples import policy, workload

from curfew.operator.plan import ANNOTATION_APPLIED_HASH
from curfew.operator.reports import build_desired_report, build_report_actions
from curfew.render import render
from curfew.report import build_report
from curfew.report.openreports import NAME, build_open_report
from fixtures.openreports import REPORT_SCHEMA


def open_report(policies: list[Any], workloads: list[dict[str, Any]],
                **kwargs: Any) -> dict[str, Any]:
    rep = build_report(policies, workloads, generated_at="x", source="x", version="0")
    return build_open_report(rep.namespaces[0], **kwargs)


def test_the_strict_schema_refuses_a_misspelt_field() -> None:
    with pytest.raises(jsonschema.ValidationError, match="reslt"):
        jsonschema.validate({"results": [{"policy": "p", "reslt": "pass"}]}, REPORT_SCHEMA)


def test_a_report_has_a_result_per_workload_and_profile_and_is_valid() -> None:
    obj = open_report([policy("a", idle="30m", profiles=("pci-dss-4.0", "nist-800-63b-aal2"))],
                      [workload(), workload("cart", kind="StatefulSet", labels={"app": "web"})])
    jsonschema.validate(obj, REPORT_SCHEMA)
    assert obj["metadata"] == {"name": NAME, "namespace": "shop", "labels": {
        "app.kubernetes.io/managed-by": "curfew",
        "app.kubernetes.io/component": "compliance-report"}}
    got = [(r["resources"][0]["kind"], r["rule"], r["result"]) for r in obj["results"]]
    assert got == [("Deployment", "pci-dss-4.0", "fail"),
                   ("Deployment", "nist-800-63b-aal2", "pass"),
                   ("StatefulSet", "pci-dss-4.0", "fail"),
                   ("StatefulSet", "nist-800-63b-aal2", "pass")]
    assert obj["summary"] == {"pass": 2, "fail": 2, "warn": 0, "error": 0, "skip": 0}
    assert obj["results"][0]["message"] == (
        "Deployment/web misses PCI DSS v4.0 (PCI DSS v4.0 requirement 8.2.8): idle 30m exceeds "
        "the limit of 15m; the standard sets no absolute limit")


def test_a_workload_whose_policies_list_no_profile_gets_one_skip() -> None:
    obj = open_report([policy("a")], [workload()])
    jsonschema.validate(obj, REPORT_SCHEMA)
    (result,) = obj["results"]
    assert (result["result"], result["policy"], "rule" in result) == ("skip", "shop/a", False)
    assert obj["summary"]["skip"] == 1


def test_unselected_workloads_are_not_in_the_cluster_report() -> None:
    obj = open_report([policy("a")], [workload(), workload("batch", {"app": "batch"})])
    assert [r["resources"][0]["name"] for r in obj["results"]] == ["web"]


def test_capped_results_keep_the_failures_and_say_they_are_capped() -> None:
    policies = [policy("strict", selector={"tier": "strict"}, idle="5m",
                       profiles=("pci-dss-4.0",)),
                policy("loose", selector={"tier": "loose"}, idle="30m",
                       profiles=("pci-dss-4.0",))]
    workloads = [workload(f"ok-{i}", {"tier": "strict"}) for i in range(5)]
    workloads += [workload(f"zz-bad-{i}", {"tier": "loose"}) for i in range(2)]
    obj = open_report(policies, workloads, max_results=3)
    jsonschema.validate(obj, REPORT_SCHEMA)
    names = [r["resources"][0]["name"] for r in obj["results"]]
    assert names == ["ok-0", "zz-bad-0", "zz-bad-1"]  # failures first, then in order
    assert obj["summary"] == {"pass": 5, "fail": 2, "warn": 0, "error": 0, "skip": 0}
    assert obj["configuration"] == {"limits": {"maxResults": 3}}


def desired(*policies: Any) -> dict[str, Any] | None:
    workloads = [workload()]
    return build_desired_report("shop", list(policies), render(list(policies), workloads))


def test_an_absent_report_is_created_stamped_with_its_hash() -> None:
    want = desired(policy("a"))
    assert want is not None
    (action,) = build_report_actions("shop", want, [])
    assert (action.verb, action.name, action.role) == ("create", NAME, "report")
    assert action.body is not None
    assert action.body["metadata"]["annotations"][ANNOTATION_APPLIED_HASH].startswith("sha256:")


def test_an_equal_report_is_left_alone_whatever_the_api_server_added() -> None:
    want = desired(policy("a"))
    assert want is not None
    stored = copy.deepcopy(want)
    stored["metadata"].update(uid="u", resourceVersion="7", creationTimestamp="t")
    assert build_report_actions("shop", want, [stored]) == []


def test_a_changed_policy_patches_only_what_differs() -> None:
    before = desired(policy("a", idle="10m"))
    after = desired(policy("a", idle="5m"))
    assert before is not None
    assert after is not None
    (action,) = build_report_actions("shop", after, [before])
    assert action.verb == "patch"
    assert action.body is not None
    assert set(action.body) == {"metadata", "results"}  # the summary did not change
    assert action.body["results"] == after["results"]


def test_a_report_edited_by_hand_is_patched_back() -> None:
    want = desired(policy("a"))
    assert want is not None
    edited = copy.deepcopy(want)
    edited["summary"]["fail"] = 0
    edited["summary"]["pass"] = 99
    (action,) = build_report_actions("shop", want, [edited])
    assert action.verb == "patch"
    assert action.body == {"summary": want["summary"]}


def test_with_no_policy_left_the_report_is_deleted_and_others_reports_are_kept() -> None:
    ours = desired(policy("a"))
    assert ours is not None
    theirs = {"metadata": {"name": "kyverno-polr", "labels": {"app.kubernetes.io/managed-by":
                                                              "kyverno"}}}
    assert desired() is None
    actions = build_report_actions("shop", None, [ours, theirs])
    assert [(a.verb, a.name) for a in actions] == [("delete", NAME)]


def test_a_held_namespace_writes_nothing() -> None:
    assert build_report_actions("shop", None, [desired(policy("a"))], hold=True) == []
