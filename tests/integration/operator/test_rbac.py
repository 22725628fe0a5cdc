"""The API requests the operator makes in the representative scenario: the least privilege it
needs, which the Helm chart's RBAC must grant and not exceed."""

from __future__ import annotations

from tests.integration.operator.harness import rbac_triples, run_representative_scenario

EXPECTED = {
    ("", "configmaps", "create"), ("", "configmaps", "delete"), ("", "configmaps", "list"),
    ("", "configmaps", "patch"), ("", "events", "create"), ("", "pods", "list"),
    ("apps", "daemonsets", "list"), ("apps", "daemonsets", "watch"),
    ("apps", "deployments", "list"), ("apps", "deployments", "watch"),
    ("apps", "statefulsets", "list"), ("apps", "statefulsets", "watch"),
    ("batch", "cronjobs", "create"), ("batch", "cronjobs", "delete"),
    ("batch", "cronjobs", "list"), ("batch", "cronjobs", "patch"),
    ("batch", "jobs", "create"), ("batch", "jobs", "list"), ("batch", "jobs", "watch"),
    ("curfew.dev", "sessionpolicies", "list"), ("curfew.dev", "sessionpolicies", "patch"),
    ("curfew.dev", "sessionpolicies", "watch"), ("curfew.dev", "sessionpolicies/status", "patch"),
}


async def test_the_operator_uses_exactly_the_expected_verbs_and_never_writes_workloads() -> None:
    calls = await run_representative_scenario()
    assert rbac_triples(calls) == EXPECTED
    assert not any(c.write and c.group == "apps" for c in calls)
    assert all(c.namespace == "shop" for c in calls if c.write)
