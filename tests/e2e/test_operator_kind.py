"""Opt-in: the operator's integration flow on a real cluster, where the chart runs the operator.

Runs only with ``CURFEW_E2E=1`` and a reachable cluster (``$KUBECONFIG``) on which the chart is
installed (``scripts/e2e-kind.sh`` does both); skips cleanly otherwise. It works in its own
namespace and deletes it afterwards. Beyond the emulator-based integration tests it proves what
only a real API server does: garbage collection through owner references, status isolation on
the ``/status`` subresource, real generations and server-side defaulting (a resync still writes
nothing), and the CRD's own validation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from curfew.k8s.client import (
    CONFIG_MAPS,
    CRON_JOBS,
    DEPLOYMENTS,
    SESSION_POLICIES,
    ApiError,
    KubeClient,
    RejectedApiError,
    Resource,
    load_connection,
)


def _skip_reason() -> str | None:
    if os.environ.get("CURFEW_E2E") != "1":
        return "opt-in: set CURFEW_E2E=1 with a cluster where the chart is installed"
    try:
        load_connection()
    except Exception as exc:  # no kubeconfig at all
        return f"no cluster configured: {exc}"
    return None


_REASON = _skip_reason()
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600),
              pytest.mark.skipif(_REASON is not None, reason=_REASON or "")]

NAMESPACES = Resource("", "v1", "namespaces", "Namespace")


PAUSE = "registry.k8s.io/pause:3.9"


def _workload(name: str, ns: str, labels: dict[str, str]) -> dict[str, Any]:
    pod = {"containers": [{"name": "app", "image": PAUSE}]}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name, **labels}},
                                  "spec": pod}}}


def _policy(name: str, ns: str, selector: dict[str, str], idle: str = "15m") -> dict[str, Any]:
    return {"apiVersion": "curfew.dev/v1alpha1", "kind": "SessionPolicy",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"matchLabels": selector},
                     "timeouts": {"idle": idle, "absolute": "8h"},
                     "store": {"redisSecretRef": {"name": "sessions-redis", "key": "url"}}}}


async def _eventually(check: Callable[[], Any], timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(ApiError, KeyError, TypeError, AssertionError):
            value = await check()
            if value:
                return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        await asyncio.sleep(1)


@contextlib.asynccontextmanager
async def _namespace() -> AsyncIterator[tuple[KubeClient, str]]:
    client = KubeClient(load_connection())
    ns = f"curfew-e2e-{uuid.uuid4().hex[:6]}"
    await client.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace",
                                           "metadata": {"name": ns}})
    try:
        yield client, ns
    finally:
        await client.delete(NAMESPACES, None, ns)
        await client.close()


def _ready(policy: dict[str, Any]) -> dict[str, Any] | None:
    for cond in policy.get("status", {}).get("conditions", []):
        if cond["type"] == "Ready":
            return dict(cond)
    return None


async def test_the_operator_flow_on_a_real_cluster() -> None:
    async with _namespace() as (client, ns):
        await client.create(DEPLOYMENTS, ns, _workload("web", ns, {"team": "store"}))
        await client.create(DEPLOYMENTS, ns, _workload("blog", ns, {"team": "blog"}))
        await client.create(SESSION_POLICIES, ns, _policy("store", ns, {"team": "store"}))

        async def ready() -> dict[str, Any] | None:
            policy = await client.get(SESSION_POLICIES, ns, "store")
            cond = _ready(policy)
            return policy if cond and cond["status"] == "True" else None

        policy = await _eventually(ready)
        assert policy["status"]["selectedWorkloads"] == 1
        assert policy["status"]["observedGeneration"] == policy["metadata"]["generation"]
        cm = await client.get(CONFIG_MAPS, ns, "curfew-deployment-web")
        assert json.loads(cm["data"]["policy.json"])["timeouts"]["idleSeconds"] == 900
        await client.get(CRON_JOBS, ns, "curfew-purge-store")

        # Edit: the ConfigMap follows and observedGeneration advances.
        await client.patch(SESSION_POLICIES, ns, "store", {"spec": {"timeouts": {"idle": "10m"}}})

        async def edited() -> bool:
            cm = await client.get(CONFIG_MAPS, ns, "curfew-deployment-web")
            policy = await client.get(SESSION_POLICIES, ns, "store")
            return (json.loads(cm["data"]["policy.json"])["timeouts"]["idleSeconds"] == 600
                    and policy["status"]["observedGeneration"] == 2)

        await _eventually(edited)

        # A resync on a real API server (with its defaulting) writes nothing.
        before = {o["metadata"]["name"]: o["metadata"]["resourceVersion"]
                  for o in await client.list(CONFIG_MAPS, ns)}
        await asyncio.sleep(5)
        after = {o["metadata"]["name"]: o["metadata"]["resourceVersion"]
                 for o in await client.list(CONFIG_MAPS, ns)}
        assert after == before

        # Relabel in and out.
        relabel = {"spec": {"template": {"metadata": {"labels": {"team": "store"}}}}}
        await client.patch(DEPLOYMENTS, ns, "blog", relabel)
        await _eventually(lambda: client.get(CONFIG_MAPS, ns, "curfew-deployment-blog"))
        relabel["spec"]["template"]["metadata"]["labels"]["team"] = "blog"
        await client.patch(DEPLOYMENTS, ns, "blog", relabel)

        async def gone(name: str) -> bool:
            try:
                await client.get(CONFIG_MAPS, ns, name)
            except ApiError as exc:
                return exc.not_found
            return False

        await _eventually(lambda: gone("curfew-deployment-blog"))

        # Garbage collection: deleting the workload removes its ConfigMap (owner reference).
        await client.delete(DEPLOYMENTS, ns, "web")
        await _eventually(lambda: gone("curfew-deployment-web"))

        # The CRD itself rejects what the operator would call an invalid spec.
        with pytest.raises(ApiError) as rejected:
            await client.create(SESSION_POLICIES, ns,
                                _policy("bad", ns, {"team": "x"}, idle="forever"))
        assert rejected.value.status == 422

        # Deleting the policy removes its purge objects.
        await client.delete(SESSION_POLICIES, ns, "store")

        async def purge_gone() -> bool:
            return not await client.list(CRON_JOBS, ns)

        await _eventually(purge_gone)


def _cron_job(ns: str, schedule: str, time_zone: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "schedule": schedule,
        "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "c", "image": PAUSE}]}}}}}
    if time_zone is not None:
        spec["timeZone"] = time_zone
    return {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "probe", "namespace": ns}, "spec": spec}


# What Curfew refuses although the API server accepts it (docs/policy.md says why).
STRICTER = ("@every", "a question mark", "never occurs", "a leading space", "a trailing newline")


async def test_the_schedule_table_agrees_with_a_real_api_server() -> None:
    from tests.unit.api.test_schedule import INVALID_SCHEDULES, INVALID_ZONES, VALID_SCHEDULES

    async with _namespace() as (client, ns):
        async def accepted(schedule: str, time_zone: str | None = None) -> bool:
            try:
                await client.request("POST", CRON_JOBS.path(ns), params={"dryRun": "All"},
                                     body=_cron_job(ns, schedule, time_zone))
            except RejectedApiError as exc:
                if exc.status != 422:
                    raise
                return False
            return True

        for case, schedule in VALID_SCHEDULES:
            assert await accepted(schedule), case
        for case, schedule, _ in INVALID_SCHEDULES:
            stricter = any(word in case for word in STRICTER)
            assert await accepted(schedule) is stricter, case
        for case, zone, _ in INVALID_ZONES:
            assert not await accepted("0 3 * * *", zone), case


async def test_a_schedule_the_api_server_refuses_is_invalid_spec_and_a_time_zone_is_applied(
        ) -> None:
    async with _namespace() as (client, ns):
        bad = _policy("sunday", ns, {"team": "x"})
        bad["spec"]["purge"] = {"schedule": "0 0 * * 7"}
        await client.create(SESSION_POLICIES, ns, bad)

        async def invalid() -> dict[str, Any] | None:
            cond = _ready(await client.get(SESSION_POLICIES, ns, "sunday"))
            return cond if cond and cond["reason"] == "InvalidSpec" else None

        cond = await _eventually(invalid)
        assert cond["message"].startswith("spec.purge.schedule: day of week field '7'")
        assert await client.list(CRON_JOBS, ns) == []

        good = _policy("paris", ns, {"team": "y"})
        good["spec"]["purge"] = {"schedule": "0 3 * * MON-FRI", "timeZone": "Europe/Paris"}
        await client.create(SESSION_POLICIES, ns, good)
        cron = await _eventually(lambda: client.get(CRON_JOBS, ns, "curfew-purge-paris"))
        assert (cron["spec"]["schedule"], cron["spec"]["timeZone"]) == ("0 3 * * MON-FRI",
                                                                        "Europe/Paris")
