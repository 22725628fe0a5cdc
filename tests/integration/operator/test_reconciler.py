"""The reconciler on its own (no kopf) against the emulator: passes coalesce, failures back off,
concurrent passes keep their Events apart."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping
from typing import Any

import pytest

from curfew.k8s.client import CONFIG_MAPS
from curfew.k8s.events import EVENTS
from curfew.operator import OperatorSettings, PassFailed, Reconciler
from curfew.operator.metrics import Metrics
from curfew.operator.recorder import PassRecorder
from tests.integration.operator.harness import Cluster, build_policy, build_workload, eventually


class StaticSources:
    """Policies and workloads as a kopf index would hold them (uids and timestamps filled)."""

    def __init__(self, policies: list[dict[str, Any]], workloads: list[dict[str, Any]]) -> None:
        for i, obj in enumerate(policies + workloads):
            obj["metadata"].update(uid=f"uid-{i}", generation=1,
                                   creationTimestamp="2026-01-01T00:00:00Z")
        self._policies, self._workloads = policies, workloads

    def namespaces(self) -> list[str]:
        return ["shop"]

    def policies(self, namespace: str) -> list[Mapping[str, Any]]:
        return list(self._policies)

    def workloads(self, namespace: str) -> list[Mapping[str, Any]]:
        return list(self._workloads)


def _reconciler(cluster: Cluster, **settings: Any) -> Reconciler:
    workloads = [build_workload(f"app-{i}", labels={"t": "s"}) for i in range(50)]
    sources = StaticSources([build_policy("p", selector={"t": "s"})], workloads)
    values = {"batch_delay_seconds": 0.05, "retry_min_seconds": 0.1, "retry_max_seconds": 0.4,
              **settings}
    return Reconciler(OperatorSettings(**values), cluster.client, sources)


async def test_two_hundred_simultaneous_triggers_make_at_most_two_passes(
        cluster: Cluster) -> None:
    reconciler = _reconciler(cluster)
    results = await asyncio.gather(*(reconciler.reconcile("shop") for _ in range(200)))
    passes = {id(r) for r in results}
    assert len(passes) <= 2
    lists = [c for c in cluster.api.calls if c.verb == "list" and c.resource == "configmaps"]
    assert len(lists) == len(passes)
    assert sum(r.writes for r in {id(r): r for r in results}.values()) == 52


async def test_a_failing_namespace_is_retried_with_growing_delays_until_it_succeeds(
        cluster: Cluster) -> None:
    reconciler = _reconciler(cluster)
    fault = cluster.api.fail(503, lambda c: c.verb == "list" and c.resource == "configmaps",
                             times=4)
    with pytest.raises(PassFailed):
        await reconciler.reconcile("shop")
    await eventually(lambda: len(cluster.api.list_objects(CONFIG_MAPS, "shop")) == 51
                     and reconciler.backoff("shop") == pytest.approx(0.1))  # success resets it
    reconciler.stop()
    attempts = [c.at for c in cluster.api.calls
                if c.verb == "list" and c.resource == "configmaps"]
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert fault.hits == 4
    assert len(attempts) == 5
    # Backoff 0.1, 0.2, 0.4, then capped at 0.4 (retry_max), each plus the batch delay.
    for gap, delay in zip(gaps, (0.1, 0.2, 0.4, 0.4), strict=True):
        assert gap >= delay


class NamespacedSources:
    """Two namespaces, each with one policy selecting its own workloads."""

    def __init__(self, namespaces: list[str]) -> None:
        self._policies: dict[str, list[dict[str, Any]]] = {}
        self._workloads: dict[str, list[dict[str, Any]]] = {}
        for n, ns in enumerate(namespaces):
            policy = build_policy("p", ns, selector={"t": "s"})
            workloads = [build_workload(f"app-{i}", ns, labels={"t": "s"}) for i in range(3)]
            for i, obj in enumerate([policy, *workloads]):
                obj["metadata"].update(uid=f"uid-{n}-{i}", generation=1,
                                       creationTimestamp="2026-01-01T00:00:00Z")
            self._policies[ns], self._workloads[ns] = [policy], workloads

    def namespaces(self) -> list[str]:
        return sorted(self._policies)

    def policies(self, namespace: str) -> list[Mapping[str, Any]]:
        return list(self._policies.get(namespace, []))

    def workloads(self, namespace: str) -> list[Mapping[str, Any]]:
        return list(self._workloads.get(namespace, []))


class SlowStatus:
    """The cluster's client, with status writes in one namespace held back a while: the other
    namespace's pass runs to its end in the meantime."""

    def __init__(self, client: Any, namespace: str, delay: float) -> None:
        self._client, self._namespace, self._delay = client, namespace, delay

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def patch(self, resource: Any, namespace: str | None, name: str,
                    patch: Mapping[str, Any], *, subresource: str | None = None) -> Any:
        if subresource == "status" and namespace == self._namespace:
            await asyncio.sleep(self._delay)
        return await self._client.patch(resource, namespace, name, patch,
                                        subresource=subresource)


async def test_concurrent_passes_in_two_namespaces_each_post_their_own_events(
        cluster: Cluster) -> None:
    sources = NamespacedSources(["east", "west"])
    api = SlowStatus(cluster.client, "east", delay=0.5)
    reconciler = Reconciler(OperatorSettings(batch_delay_seconds=0), api, sources)
    east, west = await asyncio.gather(reconciler.reconcile("east"), reconciler.reconcile("west"))
    for result in (east, west):
        posted = [c for c in cluster.api.calls if c.resource == "events" and c.verb == "create"
                  and c.namespace == result.namespace]
        events = cluster.api.list_objects(EVENTS, result.namespace)
        assert {e["involvedObject"]["namespace"] for e in events} == {result.namespace}
        assert sorted(e["reason"] for e in events) == ["ConfigMapCreated", "CronJobCreated",
                                                       "PurgeConfigCreated"]
        # Posted by the pass that emitted them, not by whichever pass finished first.
        assert result.events == len(events) == len(posted) == 3


async def test_a_pass_recorder_refuses_an_event_about_another_namespace(cluster: Cluster) -> None:
    recorder = PassRecorder(cluster.client, "east")
    with pytest.raises(ValueError, match="object in west recorded by the pass over east"):
        recorder.emit(build_policy("p", "west"), "Normal", "ConfigMapCreated", "ConfigMap x")
    assert await recorder.post() == 0
    assert cluster.api.list_objects(EVENTS) == []


async def test_a_condition_set_twice_posts_its_event_and_counts_its_error_once(
        cluster: Cluster) -> None:
    metrics = Metrics()
    recorder = PassRecorder(cluster.client, "shop", metrics)
    body = build_policy("p")
    invalid = {"type": "Ready", "status": "False", "reason": "InvalidSpec",
               "message": "spec.timeouts.idle: invalid duration 'forever'"}
    recorder.set_condition(body, invalid, None)
    recorder.set_condition(body, {**invalid, "lastTransitionTime": "t"}, invalid)
    assert recorder.conditions["shop/p"]["Ready"]["lastTransitionTime"] == "t"
    assert await recorder.post() == 1
    (event,) = cluster.api.list_objects(EVENTS, "shop")
    assert (event["type"], event["reason"], event["message"]) == (
        "Warning", "InvalidSpec", invalid["message"])
    assert metrics.errors.labels("invalid")._value.get() == 1


async def test_a_condition_without_an_exit_changes_silently(cluster: Cluster) -> None:
    metrics = Metrics()
    recorder = PassRecorder(cluster.client, "shop", metrics)
    ready = {"type": "Ready", "status": "True", "reason": "Reconciled", "message": "1 workload"}
    recorder.set_condition(build_policy("p"), ready, None)
    assert await recorder.post() == 0
    assert cluster.api.list_objects(EVENTS, "shop") == []
    assert recorder.conditions["shop/p"]["Ready"] == ready
