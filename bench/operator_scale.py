"""Benchmark: how the operator scales with the number of workloads a policy selects.

Starts the API emulator of the integration tests (kmock, with the gaps filled) on loopback, fills
one namespace with N Deployments, starts ``curfew operator`` as a separate process against it,
then creates one SessionPolicy selecting all N and measures:

- ``seconds``: from creating the policy until all N ConfigMaps exist and the policy's status
  reports N selected workloads (the operator had already indexed the Deployments);
- ``requests_per_configmap``: every API request the operator issued in that window (lists,
  writes, status patches, Events, kopf's own), divided by the ConfigMaps it wrote;
- ``resync_writes``: writes (Events included) during the next resync pass, which changes nothing;
- ``rss_mb``: the operator process's peak resident memory (VmHWM), the emulator excluded;
- ``startup_seconds``: from starting the process until kopf watches the Deployments.

Ends with one line: ``RESULT workloads=N seconds=… requests_per_configmap=… resync_writes=…
rss_mb=… startup_seconds=…`` per N.
Usage: ``python bench/operator_scale.py [-n 100 -n 1000 -n 5000]`` (default 100 and 1000).
The emulator shares the cores with the operator, so absolute seconds include its cost (it scans
all stored objects per request); compare N within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from tests.integration.operator.harness import (  # noqa: E402
    build_policy,
    build_workload,
    running_cluster,
)

from curfew.k8s.client import CONFIG_MAPS, DEPLOYMENTS, SESSION_POLICIES  # noqa: E402

NAMESPACE = "bench"
RESYNC_SECONDS = 8.0


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _wait(check, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


async def run(n: int) -> str:
    async with running_cluster() as cluster:
        api = cluster.api
        sem = asyncio.Semaphore(64)

        async def create(i: int) -> None:
            async with sem:
                await cluster.client.create(DEPLOYMENTS, NAMESPACE, build_workload(
                    f"app-{i:05d}", NAMESPACE, labels={"curfew.dev/bench": "yes"}))

        await asyncio.gather(*(create(i) for i in range(n)))
        env = dict(os.environ, CURFEW_OPERATOR_SCAN_CLUSTER="false",
                   CURFEW_OPERATOR_RESYNC_SECONDS=str(RESYNC_SECONDS),
                   CURFEW_OPERATOR_BATCH_DELAY_SECONDS="0.2")
        launched = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "curfew", "operator", "--standalone",
             "--kubeconfig", cluster.kubeconfig, "--metrics-port", "0", "--liveness-port", "0",
             "--log-level", os.environ.get("BENCH_LOG_LEVEL", "WARNING")], env=env)
        try:
            # Indexed: kopf listed the Deployments and started watching.
            await _wait(lambda: any(c.verb == "watch" and c.resource == "deployments"
                                    for c in api.calls), 600, "the operator to start")
            startup = time.monotonic() - launched
            await asyncio.sleep(1.0)
            mark = len(api.calls)
            started = time.monotonic()
            await cluster.client.create(SESSION_POLICIES, NAMESPACE, build_policy(
                "all", NAMESPACE, selector={"curfew.dev/bench": "yes"}))

            def converged() -> bool:
                policy = api.object(SESSION_POLICIES, NAMESPACE, "all") or {}
                return (policy.get("status") or {}).get("selectedWorkloads") == n \
                    and sum(1 for c in api.writes(mark) if c.resource == "configmaps"
                            and c.verb == "create") >= n + 1

            await _wait(converged, 600, "convergence")
            seconds = time.monotonic() - started
            # Let the pass finish posting its Events before counting.
            await asyncio.sleep(1.0)
            done = len(api.calls)
            requests = [c for c in api.operator_calls(mark)[: done - mark] if not c.discovery]
            configmaps = sum(1 for c in requests if c.resource == "configmaps"
                             and c.write and c.status < 400)
            # The next resync: a pass that lists the ConfigMaps again, then nothing to write.
            await _wait(lambda: any(c.verb == "list" and c.resource == "configmaps"
                                    for c in api.operator_calls(done)),
                        RESYNC_SECONDS * 3 + 60, "a resync")
            await asyncio.sleep(2.0)
            resync_writes = len(api.writes(done, events=True))
            rss = _peak_rss_mb(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        assert len(api.list_objects(CONFIG_MAPS, NAMESPACE)) == n + 1
        return (f"RESULT workloads={n} seconds={seconds:.2f} "
                f"requests_per_configmap={len(requests) / configmaps:.3f} "
                f"resync_writes={resync_writes} rss_mb={rss:.1f} startup_seconds={startup:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--workloads", type=int, action="append",
                        help="workload counts to run (repeatable; default 100 and 1000)")
    args = parser.parse_args()
    results = [asyncio.run(run(n)) for n in (args.workloads or [100, 1000])]
    print("\n".join(results))


if __name__ == "__main__":
    main()
