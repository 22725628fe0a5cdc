"""The reconciler on its own (no kopf) against the emulator: passes coalesce, failures back off."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping
from typing import Any

import pytest

from curfew.k8s.client import CONFIG_MAPS
from curfew.operator import OperatorSettings, PassFailed, Reconciler
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
