"""Least privilege, proven: the chart's RBAC against the API requests the operator really makes.

The operator harness runs the real operator through a representative scenario against the kmock
API server (policies created, edited, deleted; workloads relabelled; a purge Job finished; a
policy tightened) and returns the ``(apiGroup, resource, verb)`` triples of its requests. Two more
scenarios here run it with kopf peering (HA), cluster-wide and namespaced, since the chart grants
peering rights only then. The chart must allow every request, grant nothing else, and use no
wildcards. Discovery requests (``/api``, ``/apis/<group>/<version>``) name no resource: every
authenticated user may make them, so no rule is needed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import kmock
import pytest
from chart_helpers import CHART, CI_VALUES, by_kind, template
from tests.integration.operator.harness import (
    VERBS,
    Call,
    Cluster,
    build_policy,
    build_workload,
    condition,
    eventually,
    observed_rbac,
    running_cluster,
)

from curfew.k8s.client import DEPLOYMENTS, SESSION_POLICIES, Resource

Triple = tuple[str, str, str]
NAMESPACE = "shop"
PEERING_NAME = "curfew"
CLUSTER_PEERINGS = Resource("kopf.dev", "v1", "clusterkopfpeerings", "ClusterKopfPeering")
PEERINGS = Resource("kopf.dev", "v1", "kopfpeerings", "KopfPeering")


def _resource_triples(triples: Iterable[Triple]) -> set[Triple]:
    """Drop discovery requests, which name no resource."""
    return {triple for triple in triples if triple[1]}


def _granted(rules: Iterable[dict[str, Any]]) -> set[Triple]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def _cluster_role(values: Path | None = None) -> set[Triple]:
    (role,) = by_kind(template(values=[values] if values else []), "ClusterRole")
    return _granted(role["rules"])


async def _peering_scenario(peerings: Resource, namespaces: list[str]) -> list[Call]:
    """The operator with kopf peering (as the chart runs it with replicaCount > 1) reconciling a
    policy; kmock gets the peering resource and object the chart's CRDs and templates create."""
    async with running_cluster() as cluster:
        _add_peering_resource(cluster, peerings)
        namespace = NAMESPACE if peerings.kind == "KopfPeering" else None
        await cluster.client.create(peerings, namespace, {
            "apiVersion": peerings.api_version, "kind": peerings.kind,
            "metadata": {"name": PEERING_NAME, **({"namespace": namespace} if namespace else {})},
        })
        await cluster.client.create(DEPLOYMENTS, NAMESPACE,
                                    build_workload("web", labels={"tier": "front"}))
        operator = cluster.start_operator(standalone=False, peering_name=PEERING_NAME,
                                          namespaces=namespaces)
        await operator.wait_ready()
        await cluster.client.create(SESSION_POLICIES, NAMESPACE,
                                    build_policy("front", selector={"tier": "front"}))
        await eventually(
            lambda: condition(cluster.api.object(SESSION_POLICIES, NAMESPACE, "front"),
                              "Ready")["status"] == "True",
            timeout=20,
        )
        # kopf has announced itself on the peering object by now (its first keep-alive).
        await eventually(lambda: any(c.group == "kopf.dev" and c.verb == "patch"
                                     for c in cluster.api.operator_calls()), timeout=10)
        return cluster.api.operator_calls()


def _add_peering_resource(cluster: Cluster, peerings: Resource) -> None:
    cluster.api.resources[f"{peerings.group}/{peerings.version}/{peerings.plural}"] = (
        kmock.ResourceInfo(kind=peerings.kind, namespaced=peerings.kind == "KopfPeering",
                           verbs=set(VERBS), subresources=set())
    )


@pytest.fixture(scope="module")
def observed() -> set[Triple]:
    """What the operator asked the API server for in the representative scenario."""
    return _resource_triples(observed_rbac())


@pytest.fixture(scope="module")
def ha_cluster_wide_calls() -> list[Call]:
    return asyncio.run(_peering_scenario(CLUSTER_PEERINGS, []))


@pytest.fixture(scope="module")
def ha_namespaced_calls() -> list[Call]:
    return asyncio.run(_peering_scenario(PEERINGS, [NAMESPACE]))


def test_the_scenario_exercises_the_operator_broadly_enough_to_judge_the_rbac(
    observed: set[Triple],
) -> None:
    resources = {resource for _, resource, _ in observed}
    assert {"sessionpolicies", "configmaps", "cronjobs", "jobs", "events"} <= resources
    assert {"list", "watch", "create", "patch", "delete"} <= {verb for *_, verb in observed}


def test_every_request_the_operator_makes_is_allowed_by_the_cluster_role(
    observed: set[Triple],
) -> None:
    assert sorted(observed - _cluster_role()) == []


def test_the_cluster_role_grants_nothing_the_operator_does_not_use(
    observed: set[Triple],
) -> None:
    assert sorted(_cluster_role() - observed) == []


def test_ha_adds_exactly_the_peering_rights_kopf_uses_cluster_wide(
    ha_cluster_wide_calls: list[Call],
) -> None:
    used = _resource_triples(c.rbac for c in ha_cluster_wide_calls if c.group == "kopf.dev")
    assert used == {("kopf.dev", "clusterkopfpeerings", v) for v in ("list", "watch", "patch")}
    standalone = _cluster_role()
    ha = _cluster_role(CHART / "ci" / "ha-values.yaml")
    assert ha - standalone == used
    assert _resource_triples(c.rbac for c in ha_cluster_wide_calls) <= ha


def test_in_namespaced_mode_every_request_stays_in_a_watched_namespace_so_roles_suffice(
    ha_namespaced_calls: list[Call],
) -> None:
    resource_calls = [c for c in ha_namespaced_calls if c.resource]
    assert resource_calls
    assert sorted({(c.rbac, c.namespace) for c in resource_calls if c.namespace != NAMESPACE}) == []


def test_namespaced_roles_grant_what_the_operator_uses_and_nothing_more(
    observed: set[Triple], ha_namespaced_calls: list[Call],
) -> None:
    peering = _resource_triples(c.rbac for c in ha_namespaced_calls if c.group == "kopf.dev")
    assert peering == {("kopf.dev", "kopfpeerings", v) for v in ("list", "watch", "patch")}
    cases = {"namespaced-values": observed, "ha-namespaced-values": observed | peering}
    for stem, expected in cases.items():
        roles = by_kind(template(values=[CHART / "ci" / f"{stem}.yaml"]), "Role")
        assert roles
        for role in roles:
            granted = _granted(role["rules"])
            assert sorted(granted ^ expected) == [], f"{stem}: {role['metadata']['namespace']}"
    used_here = _resource_triples(c.rbac for c in ha_namespaced_calls)
    assert used_here <= observed | peering


@pytest.mark.parametrize("values", [None, *CI_VALUES],
                         ids=lambda v: "defaults" if v is None else v.stem)
def test_no_rule_in_any_mode_uses_a_wildcard_or_reaches_secrets(values: Path | None) -> None:
    objects = template(values=[values] if values else [])
    for role in [*by_kind(objects, "ClusterRole"), *by_kind(objects, "Role")]:
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[field], rule
            if "secrets" in rule["resources"]:
                # Only the injection webhook's own TLS Secret (its operator-made CA).
                assert role["metadata"]["name"].endswith("-injection"), rule
                assert rule["verbs"] == ["create"] or rule["resourceNames"] == [
                    role["metadata"]["name"].removesuffix("-injection") + "-webhook-tls"], rule
            assert "nonResourceURLs" not in rule
