"""Scenarios shared by the integration tests and the least-privilege RBAC helper."""

from __future__ import annotations

import json
from typing import Any

from curfew.k8s.client import (
    CONFIG_MAPS,
    CRON_JOBS,
    DEPLOYMENTS,
    JOBS,
    PODS,
    SESSION_POLICIES,
)
from tests.integration.operator.harness import (
    Cluster,
    build_policy,
    build_workload,
    condition,
    eventually,
    quiet,
)

SUMMARY_OK = {"outcome": "ok", "scanned": 120, "expired": {"idle": 7, "absolute": 2,
                                                           "tightened": 0},
              "repaired": 0, "durationSeconds": 0.42, "message": "done"}


async def finish_purge_job(cluster: Cluster, namespace: str, policy: str, job: str,
                           summary: dict[str, Any] | None, *, failed: bool = False,
                           at: str = "2026-01-01T00:05:00Z") -> None:
    """What the CronJob controller and the kubelet would leave behind after a purge run: a
    finished Job and its pod, whose container wrote ``summary`` as its termination message."""
    labels = {"app.kubernetes.io/managed-by": "curfew", "app.kubernetes.io/component": "purge",
              "curfew.dev/policy": policy}
    message = json.dumps(summary) if summary is not None else ""
    await cluster.client.create(PODS, namespace, {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"{job}-abcde", "namespace": namespace,
                     "labels": {**labels, "job-name": job,
                                "batch.kubernetes.io/job-name": job}},
        "spec": {"containers": [{"name": "purge", "image": "curfew"}]},
        "status": {"phase": "Failed" if failed else "Succeeded", "containerStatuses": [{
            "name": "purge", "state": {"terminated": {
                "exitCode": 1 if failed else 0, "message": message}}}]},
    })
    await cluster.client.create(JOBS, namespace, {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": job, "namespace": namespace, "labels": labels},
        "spec": {"template": {"spec": {"containers": []}}},
        "status": {"conditions": [{"type": "Failed" if failed else "Complete",
                                   "status": "True", "lastTransitionTime": at}],
                   **({} if failed else {"completionTime": at})},
    })


async def full_lifecycle(cluster: Cluster) -> None:
    """Two policies over a few workloads: create, overlap, edit, relabel, purge, tighten, delete."""
    api, client = cluster.api, cluster.client
    for name, labels in (("web", {"tier": "front"}), ("api", {"tier": "front"}),
                         ("admin", {"tier": "admin"})):
        await client.create(DEPLOYMENTS, "shop", build_workload(name, labels=labels))
    op = cluster.start_operator()
    await op.wait_ready()
    await client.create(SESSION_POLICIES, "shop",
                        build_policy("front", selector={"tier": "front"}))
    await client.create(SESSION_POLICIES, "shop",
                        build_policy("all", selector={}, idle="10m", absolute="4h"))
    await eventually(lambda: condition(api.object(SESSION_POLICIES, "shop", "all"),
                                       "Overlapping")["status"] == "True")
    await client.patch(DEPLOYMENTS, "shop", "admin",
                       {"spec": {"template": {"metadata": {"labels": {"tier": "front"}}}}})
    await finish_purge_job(cluster, "shop", "front", "curfew-purge-front-1", SUMMARY_OK)
    await eventually(lambda: api.object(SESSION_POLICIES, "shop", "front")["status"]
                     ["lastPurge"]["job"] == "curfew-purge-front-1")
    await client.patch(SESSION_POLICIES, "shop", "front", {"spec": {"timeouts": {"idle": "5m"}}})
    await eventually(lambda: len(api.list_objects(JOBS, "shop")) >= 2)
    await client.delete(SESSION_POLICIES, "shop", "all")
    await eventually(lambda: api.object(CRON_JOBS, "shop", "curfew-purge-all") is None)
    await quiet(api)
    assert api.object(CONFIG_MAPS, "shop", "curfew-deployment-web") is not None
