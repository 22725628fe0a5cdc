"""The one level-based ``reconcile``, put together from parts with one responsibility each:

- :mod:`curfew.operator.queue`: the per-namespace queue (coalescing, backoff, resync), the one
  retry mechanism of the operator;
- :mod:`curfew.operator.namespace_pass`: the stateless pass, gather -> ``plan`` -> write;
- :mod:`curfew.operator.recorder`: each pass's conditions, Events and metrics;
- :mod:`curfew.operator.memory`: what outlives a pass;
- :mod:`curfew.operator.purge_jobs`: reading finished purge Jobs.

Every trigger (a policy created, updated or resumed, a resync timer, a workload relabelled, a
purge Job finished) asks for a pass over one namespace through :meth:`Reconciler.reconcile`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from curfew.api import InvalidPolicy, parse_policy
from curfew.k8s.client import RejectedApiError, TransientApiError
from curfew.operator.memory import PassMemory
from curfew.operator.metrics import Metrics
from curfew.operator.namespace_pass import Api, NamespacePass, PassResult, Sources, utc_now
from curfew.operator.purge_jobs import read_purge_job
from curfew.operator.queue import NamespaceQueue, PassFailed
from curfew.operator.settings import OperatorSettings
from curfew.render import RenderSettings, pod_template_labels, selects

__all__ = ["PassFailed", "PassResult", "Reconciler"]

log = logging.getLogger("curfew.operator")


class Reconciler:
    """Coalesced, level-based namespace passes; one instance per operator run."""

    def __init__(self, settings: OperatorSettings, api: Api, sources: Sources, *,
                 metrics: Metrics | None = None,
                 render_settings: RenderSettings | None = None,
                 clock: Callable[[], str] = utc_now) -> None:
        self.settings = settings
        self.api = api
        self.sources = sources
        self.metrics = metrics or Metrics()
        self.memory = PassMemory()
        self.pass_ = NamespacePass(settings, api, sources, metrics=self.metrics,
                                   render_settings=render_settings or RenderSettings(),
                                   clock=clock)
        self.queue: NamespaceQueue[PassResult] = NamespaceQueue(settings, self._run)
        self.metrics.queue_depth.set_function(self.queue.depth)

    async def _run(self, namespace: str) -> PassResult:
        return await self.pass_.run(namespace, self.memory)

    async def reconcile(self, namespace: str) -> PassResult:
        """Run (or join) the next pass over ``namespace`` and return its result.

        Raises :class:`PassFailed` when an API request failed; a retry is already scheduled.
        """
        return await self.queue.request(namespace)

    def backoff(self, namespace: str) -> float:
        """Delay before the next retry of a failing namespace (exponential, capped)."""
        return self.queue.backoff(namespace)

    async def resync_forever(self) -> None:
        """Every ``resync_seconds``, a pass over each namespace with policies."""
        await self.queue.resync_forever(self.sources.namespaces)

    def stop(self) -> None:
        """Cancel the scheduled retries (the operator is stopping)."""
        self.queue.stop()

    def workload_changed(self, workload: Mapping[str, Any], *, deleted: bool = False) -> bool:
        """Whether a workload event concerns any policy (it is, or was, selected by one)."""
        meta = workload.get("metadata", {})
        namespace = str(meta.get("namespace") or "default")
        ident = f"{workload.get('kind')}/{meta.get('name')}"
        if ident in self.memory.selected.get(namespace, ()):
            return True
        if deleted:
            return False
        labels = pod_template_labels(workload)
        for body in self.sources.policies(namespace):
            try:
                policy = parse_policy(body)
            except InvalidPolicy:
                continue
            if selects(policy.spec.selector, labels):
                return True
        return False

    async def record_job(self, job: Mapping[str, Any]) -> bool:
        """Read a finished purge Job's summary for its policy; whether it was new.

        When its pods cannot be listed for a passing reason, the Job is read again by the
        namespace's next pass, which is scheduled with backoff.
        """
        meta = job.get("metadata", {})
        namespace, name = str(meta.get("namespace")), str(meta.get("name"))
        try:
            return await read_purge_job(self.api, self.sources, self.memory, job)
        except TransientApiError as exc:
            log.warning("could not read purge job %s/%s, retrying: %s", namespace, name, exc)
            self.memory.unread_jobs.setdefault(namespace, {})[name] = job
            self.queue.retry_later(namespace)
        except RejectedApiError as exc:
            log.warning("could not read purge job %s/%s: %s", namespace, name, exc,
                        extra={"status": exc.status})
        return False
