"""The operator's liveness and metrics endpoints, and its peering mode, against the emulator."""

from __future__ import annotations

import socket
from collections.abc import Awaitable

import aiohttp

from curfew.k8s.client import CONFIG_MAPS, DEPLOYMENTS, SESSION_POLICIES
from tests.integration.operator.harness import (
    Cluster,
    build_policy,
    build_workload,
    condition,
    eventually,
    quiet,
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_liveness_and_metrics_report_the_reconciles_and_selected_workloads(
        cluster: Cluster) -> None:
    live, metrics = _free_port(), _free_port()
    await cluster.client.create(DEPLOYMENTS, "shop", build_workload("web", labels={"t": "s"}))
    op = cluster.start_operator(liveness_port=live, liveness_host="127.0.0.1",
                                metrics_port=metrics, metrics_host="127.0.0.1")
    await op.wait_ready()
    await cluster.client.create(SESSION_POLICIES, "shop", build_policy("p", selector={"t": "s"}))
    await eventually(lambda: condition(cluster.api.object(SESSION_POLICIES, "shop", "p"),
                                       "Ready")["status"] == "True")
    async with aiohttp.ClientSession() as http:
        async def healthy() -> bool:
            try:
                async with http.get(f"http://127.0.0.1:{live}/healthz") as resp:
                    return resp.status == 200
            except aiohttp.ClientConnectionError:
                return False  # kopf serves the endpoint from a task of its own: not bound yet

        await eventually(healthy)

        async def scrape() -> str:
            async with http.get(f"http://127.0.0.1:{metrics}/metrics") as resp:
                return await resp.text()

        # A pass writes the status first and counts itself when it ends: the Ready condition
        # can be seen a moment before the pass's counters, so wait for the pass to be counted.
        text = await eventually(lambda: _counted(scrape()))
    assert 'curfew_operator_reconciles_total{result="ok"}' in text
    assert 'curfew_operator_selected_workloads{namespace="shop",policy="p"} 1.0' in text
    assert 'curfew_operator_managed_configmaps{namespace="shop"} 1.0' in text
    assert 'curfew_operator_writes_total{kind="ConfigMap",verb="create"} 2.0' in text
    assert "curfew_operator_reconcile_duration_seconds_count" in text


async def _counted(scrape: Awaitable[str]) -> str | None:
    """The metrics page once a pass has been counted, else None."""
    text = await scrape
    return text if 'curfew_operator_reconciles_total{result="ok"}' in text else None


async def test_with_peering_the_replica_announces_itself_and_reconciles(cluster: Cluster) -> None:
    from tests.integration.operator.harness import CLUSTER_PEERINGS

    await cluster.client.create(CLUSTER_PEERINGS, None, {
        "apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering",
        "metadata": {"name": "curfew"}})
    await cluster.client.create(DEPLOYMENTS, "shop", build_workload("web", labels={"t": "s"}))
    op = cluster.start_operator(standalone=False, peering_name="curfew")
    await op.wait_ready()
    await cluster.client.create(SESSION_POLICIES, "shop", build_policy("p", selector={"t": "s"}))
    await eventually(lambda: condition(cluster.api.object(SESSION_POLICIES, "shop", "p"),
                                       "Ready")["status"] == "True")
    peering = await eventually(lambda: (cluster.api.object(CLUSTER_PEERINGS, None, "curfew")
                                        or {}).get("status"))
    assert len(peering) == 1  # this replica, under its peering identity


async def test_with_namespaces_set_only_those_namespaces_are_reconciled(cluster: Cluster) -> None:
    for ns in ("shop", "other"):
        await cluster.client.create(DEPLOYMENTS, ns, build_workload("web", ns, labels={"t": "s"}))
    op = cluster.start_operator(namespaces=["shop"])
    await op.wait_ready()
    for ns in ("other", "shop"):
        await cluster.client.create(SESSION_POLICIES, ns,
                                    build_policy("p", ns, selector={"t": "s"}))
    await eventually(lambda: condition(cluster.api.object(SESSION_POLICIES, "shop", "p"),
                                       "Ready")["status"] == "True")
    await quiet(cluster.api)
    assert cluster.api.object(SESSION_POLICIES, "other", "p").get("status") is None
    assert cluster.api.list_objects(CONFIG_MAPS, "other") == []
    assert {c.namespace for c in cluster.api.operator_calls() if not c.discovery} == {"shop"}
