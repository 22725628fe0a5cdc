"""API failures as the real operator meets them on the emulator: a refusal (403, 422) is reported
once on the policy and never retried until its spec changes; a passing failure (503, 409) is
retried with backoff until the operator converges; a schedule the API server would refuse never
reaches it."""

from __future__ import annotations

from typing import Any

import pytest

from curfew.k8s.client import CONFIG_MAPS, CRON_JOBS, DEPLOYMENTS, SESSION_POLICIES
from tests.integration.operator.harness import (
    Call,
    Cluster,
    build_policy,
    build_workload,
    condition,
    events_for,
    eventually,
    quiet,
)

pytestmark = pytest.mark.timeout(60)

# The wait in which a retry loop would show itself: retries start at 0.2 s and cap at 1 s.
LOOP_WINDOW = 2.5


async def start(cluster: Cluster) -> None:
    await cluster.start_operator().wait_ready()


async def seed(cluster: Cluster) -> None:
    for name in ("web", "api"):
        await cluster.client.create(DEPLOYMENTS, "shop",
                                    build_workload(name, labels={"team": "store"}))


def ready(cluster: Cluster, name: str = "store") -> dict[str, Any]:
    return condition(cluster.api.object(SESSION_POLICIES, "shop", name), "Ready")


def reasons(cluster: Cluster, name: str = "store") -> list[str]:
    return [r for r, _ in events_for(cluster.api, name)]


def operator_requests(cluster: Cluster, since: int) -> list[Call]:
    return [c for c in cluster.api.operator_calls(since) if not c.discovery]


def creates(kind: str) -> Any:
    return lambda c: c.verb == "create" and c.resource == kind and not c.by_test


async def edit_spec(cluster: Cluster, spec: dict[str, Any]) -> None:
    await cluster.client.patch(SESSION_POLICIES, "shop", "store", {"spec": spec})


async def test_a_403_on_configmaps_is_apply_rejected_once_and_retried_only_when_the_spec_changes(
        cluster: Cluster) -> None:
    await seed(cluster)
    await start(cluster)
    forbidden = cluster.api.fail(
        403, creates("configmaps"),
        message='configmaps is forbidden: User "system:serviceaccount:curfew:curfew" cannot '
                'create resource "configmaps" in API group "" in the namespace "shop"')
    await cluster.client.create(SESSION_POLICIES, "shop",
                                build_policy("store", selector={"team": "store"}))
    await eventually(lambda: ready(cluster)["reason"] == "ApplyRejected")
    cond = ready(cluster)
    assert cond["status"] == "False"
    assert "cannot create resource \"configmaps\"" in cond["message"]
    assert "403" in cond["message"]
    assert "until its spec changes" in cond["message"]
    mark = await quiet(cluster.api)
    attempts = forbidden.hits
    assert attempts == 3  # one pass: two workload ConfigMaps and the purge ConfigMap
    assert reasons(cluster) == ["ApplyRejected"]
    assert cluster.api.list_objects(CRON_JOBS, "shop") == []  # it mounts the refused ConfigMap

    # No retry loop: nothing is attempted again, not even when another trigger runs a pass.
    await quiet(cluster.api, settle=LOOP_WINDOW)
    assert operator_requests(cluster, mark) == []
    await cluster.client.create(DEPLOYMENTS, "shop", build_workload("cart",
                                                                    labels={"team": "store"}))
    await quiet(cluster.api, settle=1.0)
    assert forbidden.hits == attempts
    assert reasons(cluster) == ["ApplyRejected"]

    # RBAC fixed, spec edited: the new generation is applied.
    cluster.api.faults.remove(forbidden)
    await edit_spec(cluster, {"timeouts": {"idle": "20m", "absolute": "8h"}})
    await eventually(lambda: ready(cluster)["status"] == "True")
    assert ready(cluster)["observedGeneration"] == 2
    names = sorted(cm["metadata"]["name"] for cm in cluster.api.list_objects(CONFIG_MAPS))
    assert names == ["curfew-deployment-api", "curfew-deployment-cart", "curfew-deployment-web",
                     "curfew-purge-store"]


async def test_a_422_on_the_cronjob_is_apply_rejected_with_the_api_servers_message(
        cluster: Cluster) -> None:
    # A zone newer than the API server's time zone database: the model cannot know it is refused.
    message = ('CronJob.batch "curfew-purge-store" is invalid: spec.timeZone: Invalid value: '
               '"America/Ciudad_Juarez": unknown time zone America/Ciudad_Juarez')
    await seed(cluster)
    await start(cluster)
    invalid = cluster.api.fail(422, creates("cronjobs"), message=message)
    await cluster.client.create(SESSION_POLICIES, "shop", build_policy(
        "store", selector={"team": "store"},
        purge={"schedule": "0 3 * * *", "timeZone": "America/Ciudad_Juarez"}))
    await eventually(lambda: ready(cluster)["reason"] == "ApplyRejected")
    assert message in ready(cluster)["message"]
    mark = await quiet(cluster.api, settle=LOOP_WINDOW)
    assert invalid.hits == 1
    assert operator_requests(cluster, mark) == []
    assert reasons(cluster).count("ApplyRejected") == 1
    warning = [msg for r, msg in events_for(cluster.api, "store") if r == "ApplyRejected"]
    assert message in warning[0]
    # What was applied before the refusal stays; nothing of the refused spec is retried.
    assert cluster.api.object(CONFIG_MAPS, "shop", "curfew-deployment-web") is not None

    cluster.api.faults.remove(invalid)
    await edit_spec(cluster, {"purge": {"schedule": "0 3 * * *", "timeZone": "America/Denver"}})
    await eventually(lambda: ready(cluster)["status"] == "True")
    cron = cluster.api.object(CRON_JOBS, "shop", "curfew-purge-store")
    assert cron is not None
    assert (cron["spec"]["schedule"], cron["spec"]["timeZone"]) == ("0 3 * * *",
                                                                    "America/Denver")


async def test_a_503_and_a_409_are_retried_with_backoff_until_the_operator_converges(
        cluster: Cluster) -> None:
    await seed(cluster)
    await start(cluster)
    outage = cluster.api.fail(503, lambda c: c.verb == "list" and c.resource == "configmaps"
                              and not c.by_test, times=3)
    conflict = cluster.api.fail(409, creates("cronjobs"), times=2)
    await cluster.client.create(SESSION_POLICIES, "shop",
                                build_policy("store", selector={"team": "store"}))
    await eventually(lambda: ready(cluster)["reason"] == "ApplyFailed")
    assert "503" in ready(cluster)["message"]
    await eventually(lambda: ready(cluster)["status"] == "True", timeout=20)
    await quiet(cluster.api)
    assert (outage.hits, conflict.hits) == (3, 2)
    # One retry mechanism: each failed pass is followed by exactly one retry. kopf's own retries
    # would show as patches of its retry bookkeeping on the policy; only its record of the
    # handled spec (one patch, on success) is there.
    lists = [c for c in cluster.api.operator_calls()
             if c.verb == "list" and c.resource == "configmaps"]
    assert len(lists) == outage.hits + conflict.hits + 1
    kopf_patches = [c for c in cluster.api.operator_calls() if c.resource == "sessionpolicies"
                    and c.verb == "patch" and c.subresource is None]
    assert len(kopf_patches) <= 1
    assert cluster.api.object(CRON_JOBS, "shop", "curfew-purge-store") is not None
    assert "ApplyRejected" not in reasons(cluster)


async def test_a_schedule_the_api_server_would_refuse_is_invalid_spec_and_never_sent(
        cluster: Cluster) -> None:
    await seed(cluster)
    await start(cluster)
    await cluster.client.create(SESSION_POLICIES, "shop", build_policy(
        "store", selector={"team": "store"}, purge={"schedule": "99 * * * *"}))
    await eventually(lambda: ready(cluster)["reason"] == "InvalidSpec")
    assert ready(cluster)["message"].startswith("spec.purge.schedule: minute field '99'")
    mark = await quiet(cluster.api, settle=LOOP_WINDOW)
    assert operator_requests(cluster, mark) == []
    assert [c for c in cluster.api.operator_calls() if c.resource == "cronjobs" and c.write] == []
    assert reasons(cluster) == ["InvalidSpec"]

    await edit_spec(cluster, {"purge": {"schedule": "59 * * * *"}})
    await eventually(lambda: ready(cluster)["status"] == "True")
    cron = cluster.api.object(CRON_JOBS, "shop", "curfew-purge-store")
    assert cron is not None
    assert cron["spec"]["schedule"] == "59 * * * *"
    assert "timeZone" not in cron["spec"]
