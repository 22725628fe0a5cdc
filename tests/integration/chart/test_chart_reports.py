"""``reports.enabled``: the chart turns the operator's OpenReports Reports on and grants exactly
the rights the operator uses for them (observed against the API emulator), in both RBAC modes,
and nothing when off."""

from __future__ import annotations

import asyncio

import pytest
from chart_helpers import CHART, by_kind, one, template
from tests.integration.operator.harness import (
    Call,
    build_policy,
    build_workload,
    eventually,
    running_cluster,
)
from tests.integration.operator.test_reports import NAME, serve_reports

from curfew.k8s.client import DEPLOYMENTS, SESSION_POLICIES
from curfew.operator.reports import REPORTS

Triple = tuple[str, str, str]
REPORTS_VALUES = CHART / "ci" / "reports-values.yaml"


async def _scenario() -> list[Call]:
    """A Report created, patched and deleted by the real operator."""
    async with running_cluster() as cluster:
        serve_reports(cluster)
        await cluster.client.create(DEPLOYMENTS, "shop",
                                    build_workload("web", labels={"tier": "front"}))
        operator = cluster.start_operator(reports=True)
        await operator.wait_ready()
        await cluster.client.create(SESSION_POLICIES, "shop",
                                    build_policy("front", selector={"tier": "front"}))
        await eventually(lambda: cluster.api.object(REPORTS, "shop", NAME))
        await cluster.client.patch(SESSION_POLICIES, "shop", "front",
                                   {"spec": {"timeouts": {"idle": "5m"}}})
        await eventually(lambda: cluster.api.object(REPORTS, "shop", NAME)["results"][0]
                         ["properties"]["idle"] == "5m")
        await cluster.client.delete(SESSION_POLICIES, "shop", "front")
        await eventually(lambda: cluster.api.object(REPORTS, "shop", NAME) is None)
        return cluster.api.operator_calls()


@pytest.fixture(scope="module")
def report_rights() -> set[Triple]:
    calls = asyncio.run(_scenario())
    return {c.rbac for c in calls if c.group == REPORTS.group}


def _rules(kind: str, *, reports: bool, sets: tuple[str, ...] = ()) -> list[set[Triple]]:
    objects = template(sets=[f"reports.enabled={str(reports).lower()}", *sets])
    return [{(g, r, v) for rule in role["rules"] for g in rule["apiGroups"]
             for r in rule["resources"] for v in rule["verbs"]}
            for role in by_kind(objects, kind)]


def test_the_operator_writes_reports_with_list_create_patch_and_delete(
        report_rights: set[Triple]) -> None:
    assert report_rights == {("openreports.io", "reports", v)
                             for v in ("list", "create", "patch", "delete")}


def test_the_cluster_role_adds_exactly_the_report_rights_when_reports_are_on(
        report_rights: set[Triple]) -> None:
    (off,) = _rules("ClusterRole", reports=False)
    (on,) = _rules("ClusterRole", reports=True)
    assert on - off == report_rights
    assert off <= on


def test_namespaced_roles_add_exactly_the_report_rights_when_reports_are_on(
        report_rights: set[Triple]) -> None:
    namespaced = ("watchNamespaces={shop,admin}",)
    off = _rules("Role", reports=False, sets=namespaced)
    on = _rules("Role", reports=True, sets=namespaced)
    assert len(on) == len(off) == 2
    for before, after in zip(off, on, strict=True):
        assert after - before == report_rights
        assert before <= after


def test_the_operator_is_told_to_write_reports_only_when_they_are_on() -> None:
    for values, expected in (([], "false"), ([REPORTS_VALUES], "true")):
        container = one(template(values=values), "Deployment")["spec"]["template"]["spec"][
            "containers"][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["CURFEW_OPERATOR_REPORTS"] == expected
