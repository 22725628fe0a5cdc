"""The operator's OpenReports ``Report`` per namespace (``reports`` on), against the API
emulator: created with a result per workload and profile, valid under the Report CRD's schema
(vendored from openreports/reports-api, unknown fields refused: the API server would prune
them), updated when a policy changes, never rewritten by a resync, held while a policy is
invalid, deleted with the last policy; off by default, and harmless without the CRD."""

from __future__ import annotations

from typing import Any

import jsonschema
import kmock
import pytest

from curfew.k8s.client import CONFIG_MAPS, DEPLOYMENTS, SESSION_POLICIES, STATEFUL_SETS
from curfew.operator.reports import REPORTS
from fixtures.openreports import REPORT_SCHEMA
from tests.integration.operator.harness import (
    VERBS,
    Cluster,
    build_policy,
    build_workload,
    condition,
    eventually,
    quiet,
)

pytestmark = pytest.mark.timeout(60)

NAME = "curfew-session-timeouts"


def serve_reports(cluster: Cluster) -> None:
    cluster.api.resources[f"{REPORTS.group}/{REPORTS.version}/{REPORTS.plural}"] = (
        kmock.ResourceInfo(kind=REPORTS.kind, namespaced=True, verbs=set(VERBS),
                           subresources=set()))


async def start(cluster: Cluster, **settings: Any) -> None:
    op = cluster.start_operator(**settings)
    await op.wait_ready()


async def seed(cluster: Cluster) -> None:
    c = cluster.client
    await c.create(DEPLOYMENTS, "shop", build_workload("web", labels={"team": "store"}))
    await c.create(STATEFUL_SETS, "shop", build_workload("cart", labels={"team": "store"},
                                                         kind="StatefulSet"))
    await c.create(DEPLOYMENTS, "shop", build_workload("blog", labels={"team": "blog"}))


def report(cluster: Cluster) -> dict[str, Any] | None:
    return cluster.api.object(REPORTS, "shop", NAME)


def results(obj: dict[str, Any] | None) -> dict[tuple[str, str], dict[str, Any]]:
    assert obj is not None
    return {(r["resources"][0]["name"], r.get("rule", "")): r for r in obj["results"]}


def store_policy(**spec: Any) -> dict[str, Any]:
    return build_policy("store", selector={"team": "store"}, idle="10m",
                        compliance={"profiles": ["pci-dss-4.0", "nist-800-63b-aal3"]}, **spec)


async def test_a_policy_gets_a_valid_report_with_a_result_per_workload_and_profile(
        cluster: Cluster) -> None:
    serve_reports(cluster)
    await seed(cluster)
    await start(cluster, reports=True)
    await cluster.client.create(SESSION_POLICIES, "shop", store_policy())
    obj = await eventually(lambda: report(cluster))
    jsonschema.validate(obj, REPORT_SCHEMA)
    got = results(obj)
    assert sorted(got) == [("cart", "nist-800-63b-aal3"), ("cart", "pci-dss-4.0"),
                           ("web", "nist-800-63b-aal3"), ("web", "pci-dss-4.0")]
    web = got[("web", "pci-dss-4.0")]
    assert web["policy"] == "shop/store"
    assert web["result"] == "pass"
    assert web["resources"] == [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}]
    assert web["properties"]["idle"] == "10m"
    assert web["properties"]["clause"] == "PCI DSS v4.0 requirement 8.2.8"
    assert "idle 10m is within the limit of 15m" in web["message"]
    assert got[("web", "nist-800-63b-aal3")]["result"] == "pass"
    assert obj["summary"] == {"pass": 4, "fail": 0, "warn": 0, "error": 0, "skip": 0}
    assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "curfew"


async def test_a_changed_policy_updates_the_report_and_a_resync_then_writes_nothing(
        cluster: Cluster) -> None:
    serve_reports(cluster)
    await seed(cluster)
    await start(cluster, reports=True, resync_seconds=0.3)
    await cluster.client.create(SESSION_POLICIES, "shop", store_policy())
    await eventually(lambda: report(cluster))
    await cluster.client.patch(SESSION_POLICIES, "shop", "store",
                               {"spec": {"timeouts": {"idle": "30m", "absolute": "20h"}}})
    obj = await eventually(lambda: report(cluster)["summary"]["fail"] == 4 and report(cluster))
    jsonschema.validate(obj, REPORT_SCHEMA)
    aal3 = results(obj)[("web", "nist-800-63b-aal3")]
    assert aal3["result"] == "fail"
    assert aal3["message"].endswith("idle 30m exceeds the limit of 15m; absolute 20h exceeds "
                                    "the limit of 12h")
    patches = [c for c in cluster.api.writes() if c.resource == "reports"]
    assert [c.verb for c in patches] == ["create", "patch"]
    mark = await quiet(cluster.api)
    await eventually(lambda: sum(1 for c in cluster.api.operator_calls(mark)
                                 if c.verb == "list" and c.resource == "reports") >= 3)
    assert cluster.api.writes(mark) == []


async def test_a_report_edited_by_hand_is_repaired(cluster: Cluster) -> None:
    serve_reports(cluster)
    await seed(cluster)
    await start(cluster, reports=True, resync_seconds=0.3)
    await cluster.client.create(SESSION_POLICIES, "shop", store_policy())
    before = await eventually(lambda: report(cluster))
    await cluster.client.patch(REPORTS, "shop", NAME, {"results": [], "summary": {"pass": 0}})
    await eventually(lambda: report(cluster)["results"] == before["results"]
                     and report(cluster)["summary"] == before["summary"])


async def test_an_invalid_edit_keeps_the_report_as_it_was(cluster: Cluster) -> None:
    serve_reports(cluster)
    await seed(cluster)
    await start(cluster, reports=True)
    await cluster.client.create(SESSION_POLICIES, "shop", store_policy())
    before = await eventually(lambda: report(cluster))
    await cluster.client.patch(SESSION_POLICIES, "shop", "store",
                               {"spec": {"timeouts": {"idle": "forever"}}})
    await eventually(lambda: condition(cluster.api.object(SESSION_POLICIES, "shop", "store"),
                                       "Ready")["reason"] == "InvalidSpec")
    await quiet(cluster.api)
    assert report(cluster) == before


async def test_the_report_goes_with_the_last_policy_of_the_namespace(cluster: Cluster) -> None:
    serve_reports(cluster)
    await seed(cluster)
    await start(cluster, reports=True)
    await cluster.client.create(SESSION_POLICIES, "shop", store_policy())
    await cluster.client.create(SESSION_POLICIES, "shop", build_policy(
        "blog", selector={"team": "blog"}))
    obj = await eventually(lambda: ("blog", "") in results(report(cluster)) and report(cluster))
    skip = results(obj)[("blog", "")]
    assert (skip["result"], skip["policy"]) == ("skip", "shop/blog")
    await cluster.client.delete(SESSION_POLICIES, "shop", "store")
    await eventually(lambda: sorted(results(report(cluster))) == [("blog", "")])
    await cluster.client.delete(SESSION_POLICIES, "shop", "blog")
    await eventually(lambda: report(cluster) is None)


async def test_reports_are_off_by_default_and_never_requested(cluster: Cluster) -> None:
    serve_reports(cluster)
    await seed(cluster)
    await start(cluster)
    await cluster.client.create(SESSION_POLICIES, "shop", store_policy())
    await eventually(lambda: cluster.api.object(CONFIG_MAPS, "shop", "curfew-deployment-web"))
    await quiet(cluster.api)
    assert [c for c in cluster.api.calls if c.resource == "reports"] == []


async def test_without_the_report_crd_the_operator_still_applies_the_policy(
        cluster: Cluster) -> None:
    await seed(cluster)
    await start(cluster, reports=True)
    await cluster.client.create(SESSION_POLICIES, "shop", store_policy())
    policy = await eventually(lambda: condition(
        cluster.api.object(SESSION_POLICIES, "shop", "store"), "Ready")["status"] == "True"
        and cluster.api.object(SESSION_POLICIES, "shop", "store"))
    assert policy["status"]["selectedWorkloads"] == 2
    assert cluster.api.object(CONFIG_MAPS, "shop", "curfew-deployment-web") is not None
    lists = [c for c in cluster.api.operator_calls() if c.resource == "reports"]
    assert lists
    assert {(c.verb, c.status) for c in lists} == {("list", 404)}
