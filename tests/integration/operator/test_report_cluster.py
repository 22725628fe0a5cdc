"""``curfew report`` read from a cluster (the API emulator, through a kubeconfig as kubectl would
use): the policies' status gives the purge results, workloads are listed per namespace, an
invalid policy is reported as not in force, and an unreachable server is one clear line."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import yaml

from curfew.cli import main
from curfew.k8s.client import SESSION_POLICIES
from tests.integration.operator.harness import (
    WORKLOAD_RESOURCES,
    Cluster,
    build_policy,
    build_workload,
)

LAST_PURGE = {"time": "2026-01-02T03:04:05Z", "outcome": "aborted", "scanned": 1200,
              "expired": {"idle": 7, "absolute": 2, "tightened": 0}, "durationSeconds": 0.84,
              "message": "would remove 62% of the scanned sessions (limit 50%)",
              "job": "curfew-purge-storefront-29400000"}


async def report(*argv: str) -> int:
    # main() runs its own event loop, as the command does: not inside the test's.
    return await asyncio.to_thread(main, ["report", *argv])


async def test_a_report_from_the_cluster_shows_each_policys_last_purge(
        cluster: Cluster, tmp_path: Path) -> None:
    api = cluster.client
    await api.create(SESSION_POLICIES, "shop", build_policy(
        "storefront", idle="10m", compliance={"profiles": ["pci-dss-4.0"]}))
    await api.patch(SESSION_POLICIES, "shop", "storefront",
                    {"status": {"lastPurge": LAST_PURGE, "purgeFailures": 1,
                                "conditions": [{"type": "Ready", "status": "True",
                                                "reason": "Applied", "message": "",
                                                "lastTransitionTime": "2026-01-02T03:00:00Z"}]}},
                    subresource="status")
    for name, kind in (("web", "Deployment"), ("cart", "StatefulSet")):
        await api.create(WORKLOAD_RESOURCES[kind], "shop", build_workload(
            name, kind=kind, labels={"app.kubernetes.io/part-of": "storefront"}))
    await api.create(WORKLOAD_RESOURCES["Deployment"], "shop",
                     build_workload("batch", labels={"team": "data"}))
    out = tmp_path / "report.md"
    assert await report("--kubeconfig", cluster.kubeconfig, "-o", str(out)) == 0
    text = out.read_text()
    assert "# Session timeout compliance report: namespace shop" in text
    assert "from the cluster (current kubeconfig)" in text
    assert ("| shop/storefront | \\*/5 \\* \\* \\* \\* | 2026-01-02T03:04:05Z | aborted | 1200 "
            "| 7 / 2 / 0 | 0.8s | 1 | would remove 62% of the scanned sessions (limit 50%) |"
            ) in text
    assert "| Deployment/web | shop/storefront | Enforce | 10m | 8h |" in text
    assert "| StatefulSet/cart | shop/storefront | Enforce | 10m | 8h |" in text
    assert "| Deployment/batch | no policy selects it |" in text
    assert "| Ready=True |" in text
    assert "| pci-dss-4.0 | PCI DSS v4.0 requirement 8.2.8 | Meets |" in text
    # Read-only: the report never writes to the cluster.
    assert not [c for c in cluster.api.calls if c.write and not c.by_test]


async def test_a_policy_without_a_status_yet_says_no_purge_run_has_finished(
        cluster: Cluster, tmp_path: Path) -> None:
    await cluster.client.create(SESSION_POLICIES, "shop", build_policy("storefront"))
    out = tmp_path / "report.md"
    assert await report("--kubeconfig", cluster.kubeconfig, "-o", str(out)) == 0
    assert "| shop/storefront | \\*/5 \\* \\* \\* \\* | no run has finished yet |" in \
        out.read_text()


async def test_an_invalid_policy_in_the_cluster_is_reported_as_not_in_force(
        cluster: Cluster, tmp_path: Path) -> None:
    bad = build_policy("broken")
    bad["spec"]["timeouts"] = {"idle": "2h", "absolute": "1h"}
    await cluster.client.create(SESSION_POLICIES, "shop", bad)
    await cluster.client.create(SESSION_POLICIES, "shop", build_policy("storefront"))
    out = tmp_path / "report.md"
    assert await report("--kubeconfig", cluster.kubeconfig, "-o", str(out)) == 0
    text = out.read_text()
    assert "| shop/broken |  |  |  |  |  |  |  |  | not in force: spec.timeouts.idle: 2h must " \
           "not exceed absolute (1h) |" in text
    assert "1 policy in force" in text
    assert "1 policy not in force: shop/broken" in text


async def test_a_namespace_asked_for_reads_only_that_namespace(
        cluster: Cluster, tmp_path: Path) -> None:
    for ns in ("shop", "internal"):
        await cluster.client.create(SESSION_POLICIES, ns, build_policy("p", ns))
    out = tmp_path / "html"
    out.mkdir()
    assert await report("--kubeconfig", cluster.kubeconfig, "-n", "internal", "--format",
                        "html", "-o", str(out)) == 0
    assert [p.name for p in out.iterdir()] == ["internal.html"]
    listed = {c.namespace for c in cluster.api.calls if c.verb == "list" and not c.by_test}
    assert listed == {"internal"}


async def test_an_unreachable_api_server_is_one_line_and_exit_1(tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "gone",
        "clusters": [{"name": "gone", "cluster": {"server": "http://127.0.0.1:9"}}],
        "users": [{"name": "gone", "user": {"token": "t"}}],
        "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "gone"}}]}))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "curfew", "report", "--kubeconfig", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1
    assert out == b""
    lines = err.decode().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("curfew report: cannot read the cluster: GET "
                               "/apis/curfew.dev/v1alpha1/sessionpolicies: 0 ")
