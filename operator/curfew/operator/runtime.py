"""What one operator run holds (settings, the API client, metrics, the reconciler) and how kopf is
configured for it: storage under ``curfew.dev/`` annotations, no worker limit, quiet Events."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf
from aiohttp import web

from curfew.k8s.client import (
    DAEMON_SETS,
    DEPLOYMENTS,
    STATEFUL_SETS,
    KubeClient,
)
from curfew.operator.metrics import Metrics, start_metrics_server
from curfew.operator.reconciler import PassFailed, Reconciler
from curfew.operator.settings import OperatorSettings
from curfew.render import RenderSettings

log = logging.getLogger("curfew.operator")

INDEX_POLICIES = "policy_index"
KOPF_WORKER_IDLE_SECONDS = 1.0
WORKLOAD_RESOURCES = {"Deployment": DEPLOYMENTS, "StatefulSet": STATEFUL_SETS,
                      "DaemonSet": DAEMON_SETS}


def build_policy_record(body: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a SessionPolicy a pass reads (a plain copy, safe to keep in an index)."""
    meta = body.get("metadata", {})
    return {
        "apiVersion": body.get("apiVersion"), "kind": body.get("kind"),
        "metadata": {k: meta.get(k) for k in ("name", "namespace", "uid", "generation",
                                               "creationTimestamp", "resourceVersion")
                     if meta.get(k) is not None},
        "spec": _plain(body.get("spec") or {}),
        "status": _plain(body.get("status") or {}),
    }


class WorkloadRecord(Mapping[str, Any]):
    """A workload reduced to what selection reads: kind, name, namespace, uid and pod-template
    labels.

    It reads as the workload object it stands for (``record["metadata"]["name"]``, what
    :func:`curfew.render.render` takes), but is kept as five slots instead of six nested dicts,
    its repeated strings interned: the store holds one per watched workload for the whole run
    (some 4 MB less at 5000 workloads). The nested parts are built when read, during a pass.
    """

    __slots__ = ("kind", "labels", "name", "namespace", "uid")

    def __init__(self, kind: str, namespace: str, name: str, uid: str | None,
                 labels: dict[str, str]) -> None:
        self.kind, self.namespace, self.name, self.uid = kind, namespace, name, uid
        self.labels = labels

    def __getitem__(self, key: str) -> Any:
        if key == "metadata":
            return {"name": self.name, "namespace": self.namespace, "uid": self.uid}
        if key == "spec":
            return {"template": {"metadata": {"labels": self.labels}}}
        if key == "kind":
            return self.kind
        if key == "apiVersion":
            return "apps/v1"
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(("apiVersion", "kind", "metadata", "spec"))

    def __len__(self) -> int:
        return 4

    def __eq__(self, other: object) -> bool:
        if isinstance(other, WorkloadRecord):
            return (self.kind, self.namespace, self.name, self.uid, self.labels) == (
                other.kind, other.namespace, other.name, other.uid, other.labels)
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]  # a mapping, compared by value

    def __repr__(self) -> str:
        return f"WorkloadRecord({self.kind}/{self.namespace}/{self.name})"


def _interned(value: Any) -> Any:
    return sys.intern(value) if isinstance(value, str) else value


def build_workload_record(body: Mapping[str, Any], kind: str) -> WorkloadRecord:
    """A workload reduced to what selection needs: identity, uid and pod-template labels."""
    meta = body.get("metadata", {})
    template_meta = ((body.get("spec") or {}).get("template") or {}).get("metadata") or {}
    labels = {_interned(k): _interned(v) for k, v in (template_meta.get("labels") or {}).items()}
    return WorkloadRecord(sys.intern(kind), _interned(meta.get("namespace") or "default"),
                          meta.get("name"), meta.get("uid"), labels)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class WorkloadStore:
    """Every watched workload, reduced by :func:`build_workload_record`, by namespace."""

    def __init__(self) -> None:
        self._by_namespace: dict[str, dict[tuple[str, str], WorkloadRecord]] = {}

    def apply(self, record: WorkloadRecord, *, deleted: bool = False) -> bool:
        """Store (or drop) ``record``; whether anything a policy reads changed."""
        bucket = self._by_namespace.setdefault(record.namespace, {})
        key = (record.kind, record.name)
        if deleted:
            return bucket.pop(key, None) is not None
        if bucket.get(key) == record:
            return False
        bucket[key] = record
        return True

    def in_namespace(self, namespace: str) -> list[WorkloadRecord]:
        return list(self._by_namespace.get(namespace, {}).values())

    async def fill(self, client: KubeClient, namespaces: list[str]) -> None:
        """One list per kind (and namespace, when not cluster-wide): the state before watching."""
        scopes: list[str | None] = list(namespaces) or [None]
        for kind, resource in WORKLOAD_RESOURCES.items():
            for namespace in scopes:
                for obj in await client.list(resource, namespace):
                    self.apply(build_workload_record(obj, kind))


class KopfSources:
    """The reconciler's view of the cluster: kopf's policy index, bound from handler arguments,
    and the workload store."""

    def __init__(self, workloads: WorkloadStore) -> None:
        self._indexes: dict[str, Any] = {}
        self._workloads = workloads

    def bind(self, kwargs: Mapping[str, Any]) -> None:
        if not self._indexes and INDEX_POLICIES in kwargs:
            self._indexes = {INDEX_POLICIES: kwargs[INDEX_POLICIES]}

    def namespaces(self) -> list[str]:
        index = self._indexes.get(INDEX_POLICIES)
        return sorted(index) if index is not None else []

    def policies(self, namespace: str) -> list[Mapping[str, Any]]:
        index = self._indexes.get(INDEX_POLICIES)
        return list(index.get(namespace, [])) if index is not None else []

    def workloads(self, namespace: str) -> list[Mapping[str, Any]]:
        return list(self._workloads.in_namespace(namespace))


@dataclass
class Runtime:
    settings: OperatorSettings
    client: KubeClient
    metrics: Metrics
    workloads: WorkloadStore
    sources: KopfSources
    reconciler: Reconciler
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    servers: list[web.AppRunner] = field(default_factory=list)

    async def reconcile_quietly(self, namespace: str) -> None:
        """A pass for any trigger: a failed pass is logged and retried by the reconciler."""
        with contextlib.suppress(PassFailed):
            await self.reconciler.reconcile(namespace)

    async def record_job(self, job: Mapping[str, Any]) -> bool:
        return await self.reconciler.record_job(job)


def configure_kopf(kopf_settings: kopf.OperatorSettings, settings: OperatorSettings) -> None:
    """kopf's settings for Curfew."""
    persistence = kopf_settings.persistence
    persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="curfew.dev")
    persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="curfew.dev", key="last-handled-configuration")
    persistence.finalizer = "curfew.dev/finalizer"
    # Indexing holds every object's worker until all indexes are filled: a worker limit below
    # the number of watched objects would deadlock startup. API load is bounded by our client.
    kopf_settings.queueing.worker_limit = None
    # kopf keeps a worker per watched object alive this long after its last event, holding that
    # event's body: at kopf's 5 s, the thousands of workers of a startup all lived at once (some
    # 25 MB at 5000 workloads). An object's next event after that starts a new worker.
    kopf_settings.queueing.idle_timeout = KOPF_WORKER_IDLE_SECONDS
    # Curfew posts its own Events; kopf's are kept for warnings and errors only.
    kopf_settings.posting.level = logging.WARNING
    kopf_settings.posting.reporting_component = "curfew-operator"
    kopf_settings.watching.server_timeout = settings.watch_timeout_seconds
    kopf_settings.scanning.disabled = not settings.scan_cluster
    kopf_settings.peering.name = settings.peering_name
    kopf_settings.peering.priority = settings.priority
    kopf_settings.peering.standalone = settings.standalone


async def start_runtime(settings: OperatorSettings, client: KubeClient) -> Runtime:
    """The run's state around ``client``, the operator's one API client (owned by the caller)."""
    metrics = Metrics()
    workloads = WorkloadStore()
    await workloads.fill(client, settings.namespaces)
    sources = KopfSources(workloads)
    render_settings = RenderSettings(image=settings.purge_image) if settings.purge_image \
        else RenderSettings()
    reconciler = Reconciler(settings, client, sources, metrics=metrics,
                            render_settings=render_settings)
    runtime = Runtime(settings, client, metrics, workloads, sources, reconciler)
    runtime.tasks.append(asyncio.get_running_loop().create_task(reconciler.resync_forever()))
    if settings.metrics_port:
        runtime.servers.append(
            await start_metrics_server(metrics, settings.metrics_host, settings.metrics_port))
    log.info("operator started", extra={"namespaces": ",".join(settings.namespaces) or "*",
                                        "standalone": settings.standalone})
    return runtime


async def stop_runtime(runtime: Runtime) -> None:
    runtime.reconciler.stop()
    for task in runtime.tasks:
        task.cancel()
    for task in runtime.tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    for server in runtime.servers:
        await server.cleanup()
