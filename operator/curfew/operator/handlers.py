"""Every kopf decorator of the operator, in one thin module: each handler is a few lines that
hand the namespace to the one level-based :meth:`Reconciler.reconcile`.

Workloads are never written to and never get finalizers or annotations: they are only listed
once at startup and watched through ``on.event``, which stores nothing on them.
Policies need no finalizer either: what a deleted policy owned is found and removed by the next
pass over its namespace, which its deletion triggers.
"""

from __future__ import annotations

from typing import Any

import kopf

from curfew.api import GROUP, PLURAL, VERSION
from curfew.operator.runtime import (
    Runtime,
    build_policy_record,
    build_workload_record,
    configure_kopf,
    start_runtime,
    stop_runtime,
)
from curfew.render import MANAGED_BY, MANAGER

POLICY = (GROUP, VERSION, PLURAL)


@kopf.on.startup()
async def startup(*, settings: kopf.OperatorSettings, memo: Any, **kw: Any) -> None:
    configure_kopf(settings, memo.settings)
    memo.runtime = await start_runtime(memo.settings, memo.client)
    memo.runtime.sources.bind(kw)


@kopf.on.cleanup()
async def cleanup(*, memo: Any, **_: Any) -> None:
    await stop_runtime(memo.runtime)


@kopf.on.login()
def login(*, memo: Any, **_: Any) -> kopf.ConnectionInfo:
    conn = memo.client.connection
    return kopf.ConnectionInfo(
        server=conn.server, token=conn.bearer_token(), ca_path=conn.ca_path,
        ca_data=conn.ca_data, insecure=conn.insecure, certificate_path=conn.certificate_path,
        certificate_data=conn.certificate_data, private_key_path=conn.private_key_path,
        private_key_data=conn.private_key_data,
        scheme="Bearer" if conn.token_path or conn.token else None,
    )


# --- what a pass reads instead of listing the API ------------------------------------------------
# Policies are few: a kopf index, which holds every handler back until it is filled. Workloads
# are many: kopf's index readiness wakes every waiting worker per indexed object (quadratic at
# startup), so they live in the runtime's WorkloadStore, filled by one list at startup and kept
# current by the events below.

@kopf.index(*POLICY, id="policy_index")
def policy_index(*, namespace: str | None, body: kopf.Body, **_: Any) -> dict[str, Any]:
    return {namespace or "default": build_policy_record(body)}


# --- policies -----------------------------------------------------------------------------------

async def _policy_pass(runtime: Runtime, namespace: str, indexes: dict[str, Any]) -> None:
    # Never kopf's retries: a failed pass is retried by the reconciler (one mechanism for every
    # trigger), and an invalid or refused spec is reported on the policy's status and Events.
    runtime.sources.bind(indexes)
    await runtime.reconcile_quietly(namespace)


@kopf.on.resume(*POLICY, id="policy")
async def policy_resumed(*, namespace: str | None, memo: Any, **kw: Any) -> None:
    await _policy_pass(memo.runtime, namespace or "default", kw)


@kopf.on.create(*POLICY, id="policy")
async def policy_created(*, namespace: str | None, memo: Any, **kw: Any) -> None:
    await _policy_pass(memo.runtime, namespace or "default", kw)


@kopf.on.update(*POLICY, id="policy")
async def policy_updated(*, namespace: str | None, memo: Any, **kw: Any) -> None:
    await _policy_pass(memo.runtime, namespace or "default", kw)


@kopf.on.event(*POLICY, id="policy_deleted", when=lambda type, **_: type == "DELETED")
async def policy_deleted(*, namespace: str | None, memo: Any, **kw: Any) -> None:
    memo.runtime.sources.bind(kw)
    await memo.runtime.reconcile_quietly(namespace or "default")


# --- workloads and purge Jobs ------------------------------------------------------------------

async def _workload_event(runtime: Runtime, event: dict[str, Any], kind: str,
                          indexes: dict[str, Any]) -> None:
    runtime.sources.bind(indexes)
    body = build_workload_record(event.get("object") or {}, kind)
    deleted = event.get("type") == "DELETED"
    # Status-only updates (replicas, rollouts) change nothing a policy reads: no pass.
    if runtime.workloads.apply(body, deleted=deleted) and \
            runtime.reconciler.workload_changed(body, deleted=deleted):
        await runtime.reconcile_quietly(body.namespace)


@kopf.on.event("apps", "v1", "deployments", id="deployment")
async def deployment_event(*, event: Any, memo: Any, **kw: Any) -> None:
    await _workload_event(memo.runtime, event, "Deployment", kw)


@kopf.on.event("apps", "v1", "statefulsets", id="statefulset")
async def statefulset_event(*, event: Any, memo: Any, **kw: Any) -> None:
    await _workload_event(memo.runtime, event, "StatefulSet", kw)


@kopf.on.event("apps", "v1", "daemonsets", id="daemonset")
async def daemonset_event(*, event: Any, memo: Any, **kw: Any) -> None:
    await _workload_event(memo.runtime, event, "DaemonSet", kw)


@kopf.on.event("batch", "v1", "jobs", id="purge_job", labels={MANAGED_BY: MANAGER})
async def purge_job_event(*, event: Any, memo: Any, **kw: Any) -> None:
    runtime: Runtime = memo.runtime
    runtime.sources.bind(kw)
    job = event.get("object") or {}
    if event.get("type") != "DELETED" and await runtime.record_job(job):
        await runtime.reconcile_quietly(job["metadata"]["namespace"])


