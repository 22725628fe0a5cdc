"""Reading finished purge Jobs: each run's summary, from its pod's termination message, becomes
its policy's ``status.lastPurge`` on the next pass (which the Job's event asks for)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

from curfew.k8s.client import PODS
from curfew.operator.memory import PassMemory
from curfew.operator.status import build_last_purge
from curfew.render import LABEL_POLICY, build_label_value

log = logging.getLogger("curfew.operator")


class JobApi(Protocol):
    """What reading a Job needs of an API client (``curfew.k8s.KubeClient``)."""

    async def list(self, resource: Any, namespace: str | None = None, *,
                   label_selector: str | None = None) -> list[dict[str, Any]]: ...


class PolicySource(Protocol):
    """Where the policies of a namespace are read from (kopf's index)."""

    def policies(self, namespace: str) -> list[Mapping[str, Any]]: ...


def _key(body: Mapping[str, Any]) -> str:
    meta = body.get("metadata", {})
    return f"{meta.get('namespace')}/{meta.get('name')}"


async def read_purge_job(api: JobApi, sources: PolicySource, memory: PassMemory,
                         job: Mapping[str, Any]) -> bool:
    """Read a finished purge Job's summary (its pod's termination message) into ``memory``,
    for its policy's next status; whether it was new. API errors are the caller's."""
    meta = job.get("metadata", {})
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    finished = _finished(job)
    if finished is None:
        return False
    failed, finished_at = finished
    body = _policy_of_job(sources, namespace, job)
    if body is None:
        return False
    key = _key(body)
    last = (memory.base_status(body).get("lastPurge") or {})
    pending = memory.purge_results.get(key)
    seen = [(last.get("job"), str(last.get("time", "")))]
    if pending is not None:
        seen.append((pending.job, pending.time))
    if any(job_name == name or time_ >= finished_at for job_name, time_ in seen):
        return False
    pods = await api.list(PODS, namespace, label_selector=f"job-name={name}")
    message = _termination_message(pods, name)
    result = build_last_purge(message, job=name, finished_at=finished_at, job_failed=failed)
    log.info("purge job %s/%s finished: %s", namespace, name, result.outcome,
             extra={"policy": key, "job": name, "outcome": result.outcome})
    memory.purge_results[key] = result
    return True


def _policy_of_job(sources: PolicySource, namespace: str,
                   job: Mapping[str, Any]) -> Mapping[str, Any] | None:
    meta = job.get("metadata", {})
    annotated = (meta.get("annotations") or {}).get("curfew.dev/policy")
    label = (meta.get("labels") or {}).get(LABEL_POLICY)
    for body in sources.policies(namespace):
        if annotated == _key(body) or (
                label is not None and build_label_value(body["metadata"]["name"]) == label):
            return dict(body)
    return None


def _finished(job: Mapping[str, Any]) -> tuple[bool, str] | None:
    """``(failed, finished_at)`` of a finished Job, ``None`` while it runs."""
    status = job.get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("status") == "True" and cond.get("type") in ("Complete", "Failed"):
            at = status.get("completionTime") or cond.get("lastTransitionTime") or ""
            return cond["type"] == "Failed", str(at)
    return None


def _termination_message(pods: list[dict[str, Any]], job: str) -> str | None:
    """The purge container's termination message of the Job's latest pod."""
    mine = [p for p in pods
            if (p.get("metadata", {}).get("labels") or {}).get("job-name") == job
            or (p.get("metadata", {}).get("labels") or {}).get(
                "batch.kubernetes.io/job-name") == job]
    mine.sort(key=lambda p: str(p.get("metadata", {}).get("creationTimestamp", "")))
    for pod in reversed(mine):
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (cs.get("state") or {}).get("terminated") or {}
            if terminated.get("message"):
                return str(terminated["message"])
    return None
