"""``curfew operator`` as the process it runs as in a cluster (``python -m curfew operator``),
against the API emulator: it reconciles a policy end to end and, all the while, never imports the
official ``kubernetes`` client (installed in this environment, and which kopf would import) nor
the modules of the other commands."""

from __future__ import annotations

import json
from pathlib import Path

from curfew.k8s.client import CONFIG_MAPS, DEPLOYMENTS, SESSION_POLICIES
from tests.integration.operator.harness import (
    build_policy,
    build_workload,
    eventually,
    running_cluster,
    running_operator,
)

# Runs ``python -m curfew`` itself, and on exit writes which modules the process had loaded.
PROGRAM = """
import atexit, json, runpy, sys
out = sys.argv[1]
atexit.register(lambda: open(out, "w").write(json.dumps(
    sorted(name for name, module in sys.modules.items() if module is not None))))
sys.argv = ["curfew", *sys.argv[2:]]
runpy.run_module("curfew", run_name="__main__", alter_sys=True)
"""
FOREIGN = ("kubernetes", "curfew.sidecar", "curfew.purge", "curfew.demo", "curfew.cli.render",
           "curfew.cli.sidecar", "curfew.cli.purge", "curfew.cli.demo")


def _foreign(name: str) -> bool:
    return any(name == f or name.startswith(f + ".") for f in FOREIGN)


async def test_the_operator_process_reconciles_without_the_official_client_or_other_commands(
        tmp_path: Path) -> None:
    async with running_cluster() as cluster:
        await cluster.client.create(DEPLOYMENTS, "shop", build_workload(
            "web", labels={"app.kubernetes.io/part-of": "storefront"}))
        await cluster.client.create(SESSION_POLICIES, "shop", build_policy("storefront"))
        modules = tmp_path / "modules.json"
        async with running_operator(cluster, tmp_path, python=("-c", PROGRAM, str(modules)),
                                    stop_timeout=30):
            config_map = await eventually(lambda: cluster.api.object(
                CONFIG_MAPS, "shop", "curfew-deployment-web"), timeout=60)
            status = await eventually(lambda: (cluster.api.object(
                SESSION_POLICIES, "shop", "storefront") or {}).get("status", {}).get(
                "selectedWorkloads"), timeout=30)
    assert json.loads(config_map["data"]["policy.json"])["workload"]["name"] == "web"
    assert status == 1
    loaded = json.loads(modules.read_text())
    assert "kopf" in loaded
    assert "curfew.operator.handlers" in loaded
    assert [name for name in loaded if _foreign(name)] == []
