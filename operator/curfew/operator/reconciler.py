"""The one level-based ``reconcile``: gather a namespace's policies and workloads (from kopf's
indexes), let ``curfew.render`` decide, write only what differs, then patch each policy's status
when it changed and emit one Event per change.

Every trigger (a policy created, updated or resumed, a resync timer, a workload relabelled, a
purge Job finished) asks for a pass over one namespace. Passes of a namespace never overlap, and
requests that arrive while one runs are coalesced into the next one, so a burst of thousands of
workload events becomes a couple of passes, not thousands.

API failures arrive classified by the client (``curfew.k8s.client.error_class``) and are handled
here, in the one retry mechanism of the operator: a :class:`TransientApiError` fails the pass,
which is retried with exponential backoff (``Ready=False/ApplyFailed`` meanwhile); a
:class:`RejectedApiError` is a refusal of what a policy's spec produced, reported once as
``Ready=False/ApplyRejected`` with the API server's message, and that policy is held (nothing
written for it) until its generation changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from curfew.api import InvalidPolicy, LastPurge, SessionPolicy, check_compliance, parse_policy
from curfew.k8s.client import (
    CONFIG_MAPS,
    CRON_JOBS,
    JOBS,
    PODS,
    SESSION_POLICIES,
    ApiError,
    RejectedApiError,
    TransientApiError,
)
from curfew.operator import messages as m
from curfew.operator.metrics import Metrics
from curfew.operator.plan import (
    ANNOTATION_PURGE_PENDING,
    Action,
    PassPlan,
    build_plan,
    is_per_workload,
)
from curfew.operator.recorder import PassRecorder
from curfew.operator.settings import OperatorSettings
from curfew.operator.status import (
    PassOutcome,
    WorkloadEntry,
    build_last_purge,
    build_purge_record,
    build_status,
)
from curfew.render import (
    LABEL_POLICY,
    MANAGED_BY,
    MANAGER,
    Rendered,
    RenderSettings,
    build_config_map_name,
    build_label_value,
    pod_template_labels,
    render,
    selects,
)

log = logging.getLogger("curfew.operator")

MANAGED_SELECTOR = f"{MANAGED_BY}={MANAGER}"


class Api(Protocol):
    """What the reconciler needs of an API client (``curfew.k8s.KubeClient``)."""

    async def list(self, resource: Any, namespace: str | None = None, *,
                   label_selector: str | None = None) -> list[dict[str, Any]]: ...
    async def get(self, resource: Any, namespace: str | None, name: str) -> dict[str, Any]: ...
    async def create(self, resource: Any, namespace: str | None,
                     body: Mapping[str, Any]) -> dict[str, Any]: ...
    async def patch(self, resource: Any, namespace: str | None, name: str,
                    patch: Mapping[str, Any], *,
                    subresource: str | None = None) -> dict[str, Any]: ...
    async def delete(self, resource: Any, namespace: str | None, name: str) -> None: ...


class Sources(Protocol):
    """Where a pass reads the cluster from: kopf's indexes in the operator."""

    def namespaces(self) -> list[str]: ...
    def policies(self, namespace: str) -> list[Mapping[str, Any]]: ...
    def workloads(self, namespace: str) -> list[Mapping[str, Any]]: ...


class PassFailed(Exception):
    """A pass could not apply everything for a passing reason; ``cause`` is the first transient
    API error. A retry is scheduled."""

    def __init__(self, cause: ApiError) -> None:
        super().__init__(str(cause))
        self.cause = cause


@dataclass
class PassResult:
    """What one pass over a namespace did (for handlers, tests and benchmarks)."""

    namespace: str
    invalid: dict[str, str] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)
    """Policies held because the API server refused a write for their current spec."""
    writes: int = 0
    events: int = 0
    """Events this pass posted (each pass posts only its own, into its namespace)."""
    seconds: float = 0.0


@dataclass(frozen=True)
class Rejection:
    """The API server's refusal of a write made for one generation of a policy's spec."""

    uid: str | None
    generation: int | None
    message: str

    def holds(self, body: Mapping[str, Any]) -> bool:
        """Whether ``body`` is still the spec that was refused (same object, same generation)."""
        meta = body.get("metadata", {})
        return (meta.get("uid"), meta.get("generation")) == (self.uid, self.generation)


@dataclass
class _Namespace:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pending: asyncio.Future[PassResult] | None = None
    retry: asyncio.Task[None] | None = None
    failures: int = 0
    selected: set[str] = field(default_factory=set)
    unread_jobs: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    """Finished purge Jobs whose pods could not be listed yet: the next pass reads them."""


def _utcnow() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _key(body: Mapping[str, Any]) -> str:
    meta = body.get("metadata", {})
    return f"{meta.get('namespace')}/{meta.get('name')}"


class Reconciler:
    """Coalesced, level-based namespace passes; one instance per operator run."""

    def __init__(self, settings: OperatorSettings, api: Api, sources: Sources, *,
                 metrics: Metrics | None = None,
                 render_settings: RenderSettings | None = None,
                 clock: Callable[[], str] = _utcnow) -> None:
        self.settings = settings
        self.api = api
        self.sources = sources
        self.metrics = metrics or Metrics()
        self.render_settings = render_settings or RenderSettings()
        self.clock = clock
        self._namespaces: dict[str, _Namespace] = {}
        self._written_status: dict[str, dict[str, Any]] = {}
        self._purge_results: dict[str, LastPurge] = {}
        self._rejected: dict[str, Rejection] = {}

    def _ns(self, namespace: str) -> _Namespace:
        return self._namespaces.setdefault(namespace, _Namespace())

    # --- triggers ---------------------------------------------------------------------------

    async def reconcile(self, namespace: str) -> PassResult:
        """Run (or join) the next pass over ``namespace`` and return its result.

        Raises :class:`PassFailed` when an API request failed; a retry is already scheduled.
        """
        state = self._ns(namespace)
        if state.pending is not None:
            return await asyncio.shield(state.pending)
        future: asyncio.Future[PassResult] = asyncio.get_running_loop().create_future()
        state.pending = future
        async with state.lock:
            try:
                # Triggers arriving during the delay still join this pass.
                if self.settings.batch_delay_seconds:
                    await asyncio.sleep(self.settings.batch_delay_seconds)
                state.pending = None
                result = await self._pass(namespace)
            except PassFailed as exc:
                future.set_exception(exc)
                future.exception()  # retrieved: joiners re-raise it, nobody else must
                self._schedule_retry(namespace)
                raise
            except asyncio.CancelledError:
                if state.pending is future:
                    state.pending = None
                future.cancel()
                raise
            except Exception as exc:
                future.set_exception(exc)
                future.exception()
                raise
            state.failures = 0
            future.set_result(result)
            return result

    def workload_changed(self, workload: Mapping[str, Any], *, deleted: bool = False) -> bool:
        """Whether a workload event concerns any policy (it is, or was, selected by one)."""
        meta = workload.get("metadata", {})
        namespace = str(meta.get("namespace") or "default")
        ident = f"{workload.get('kind')}/{meta.get('name')}"
        if ident in self._ns(namespace).selected:
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
            return await self._read_job(job)
        except TransientApiError as exc:
            log.warning("could not read purge job %s/%s, retrying: %s", namespace, name, exc)
            self._ns(namespace).unread_jobs[name] = job
            self._schedule_retry(namespace)
        except RejectedApiError as exc:
            log.warning("could not read purge job %s/%s: %s", namespace, name, exc,
                        extra={"status": exc.status})
        return False

    async def _read_job(self, job: Mapping[str, Any]) -> bool:
        meta = job.get("metadata", {})
        namespace, name = str(meta.get("namespace")), str(meta.get("name"))
        finished = _finished(job)
        if finished is None:
            return False
        failed, finished_at = finished
        body = self._policy_of_job(namespace, job)
        if body is None:
            return False
        key = _key(body)
        last = (self._base_status(body).get("lastPurge") or {})
        pending = self._purge_results.get(key)
        seen = [(last.get("job"), str(last.get("time", "")))]
        if pending is not None:
            seen.append((pending.job, pending.time))
        if any(job_name == name or time_ >= finished_at for job_name, time_ in seen):
            return False
        pods = await self.api.list(PODS, namespace, label_selector=f"job-name={name}")
        message = _termination_message(pods, name)
        result = build_last_purge(message, job=name, finished_at=finished_at, job_failed=failed)
        log.info("purge job %s/%s finished: %s", namespace, name, result.outcome,
                 extra={"policy": key, "job": name, "outcome": result.outcome})
        self._purge_results[key] = result
        return True

    def stop(self) -> None:
        """Cancel the scheduled retries (the operator is stopping)."""
        for state in self._namespaces.values():
            if state.retry is not None:
                state.retry.cancel()

    async def resync_forever(self) -> None:
        """Every ``resync_seconds``, a pass over each namespace with policies: repairs drift
        (an edited or deleted object) and writes nothing when there is none."""
        while True:
            await asyncio.sleep(self.settings.resync_seconds)
            for namespace in self.sources.namespaces():
                with contextlib.suppress(PassFailed):  # logged, and retried
                    await self.reconcile(namespace)

    def backoff(self, namespace: str) -> float:
        """Delay before the next retry of a failing namespace (exponential, capped)."""
        failures = max(1, self._ns(namespace).failures)
        return float(min(self.settings.retry_max_seconds,
                         self.settings.retry_min_seconds * 2 ** (failures - 1)))

    def _schedule_retry(self, namespace: str) -> None:
        state = self._ns(namespace)
        state.failures += 1
        if state.retry is not None and not state.retry.done():
            return
        delay = self.backoff(namespace)

        async def retry() -> None:
            await asyncio.sleep(delay)
            state.retry = None
            with contextlib.suppress(PassFailed):  # a failed pass schedules the next retry
                await self.reconcile(namespace)

        state.retry = asyncio.get_running_loop().create_task(retry())
        log.info("retrying namespace %s in %.1fs", namespace, delay,
                 extra={"namespace": namespace, "delay": delay})

    # --- one pass ---------------------------------------------------------------------------

    async def _pass(self, namespace: str) -> PassResult:
        started = time.monotonic()
        result = PassResult(namespace)
        recorder = PassRecorder(self.api, namespace)
        state = self._ns(namespace)
        bodies = {_key(b): b for b in self.sources.policies(namespace)}
        for key in [k for k in self._rejected if k.startswith(f"{namespace}/")]:
            if key not in bodies or not self._rejected[key].holds(bodies[key]):
                del self._rejected[key]  # the spec changed (or the policy is gone): try again
        valid: dict[str, SessionPolicy] = {}
        for key, body in sorted(bodies.items()):
            try:
                valid[key] = parse_policy(body)
            except InvalidPolicy as exc:
                result.invalid[key] = str(exc)
        result.rejected = {k: self._rejected[k].message for k in valid if k in self._rejected}
        # A refused policy is held like an invalid one: what it enforced before stays.
        active = {k: p for k, p in valid.items() if k not in result.rejected}
        rendered = render(active.values(), self.sources.workloads(namespace),
                          settings=self.render_settings)
        error: ApiError | None = None
        refused: dict[str, RejectedApiError] = {}
        plan = PassPlan()
        done: list[Action] = []
        try:
            for job_name, job in list(state.unread_jobs.items()):
                with contextlib.suppress(RejectedApiError):  # logged by record_job before
                    await self._read_job(job)
                state.unread_jobs.pop(job_name, None)
            current_cms = await self.api.list(CONFIG_MAPS, namespace,
                                              label_selector=MANAGED_SELECTOR)
            current_cjs = await self.api.list(CRON_JOBS, namespace,
                                              label_selector=MANAGED_SELECTOR)
            plan = build_plan(
                namespace, config_maps=rendered.config_maps,
                purge_config_maps=rendered.purge_config_maps, cron_jobs=rendered.cron_jobs,
                current_config_maps=current_cms, current_cron_jobs=current_cjs,
                invalid_policies=[*result.invalid, *result.rejected],
            )
            # ConfigMaps first: a CronJob (and a Job started from it) mounts its purge ConfigMap.
            for role_group in (("config", "purge-config"), ("cron-job",)):
                actions = [a for a in plan.actions if a.role in role_group
                           and not refused.keys() & set(a.policies)]
                done += await self._execute(actions, refused)
            for key, config_map in sorted(plan.tightened.items()):
                if key in active and key not in refused:
                    try:
                        await self._start_purge(rendered, active[key], bodies[key], current_cjs,
                                                recorder)
                        # Only once the Job exists: until then each pass tries again.
                        await self._apply(Action(
                            "patch", "purge-config", CONFIG_MAPS, namespace, config_map,
                            {"metadata": {"annotations": {ANNOTATION_PURGE_PENDING: None}}},
                            (key,)))
                    except RejectedApiError as exc:
                        refused[key] = exc
            managed = sum(1 for o in current_cms if is_per_workload(o))
            managed += sum(1 for a in done if a.role == "config" and a.verb == "create")
            managed -= sum(1 for a in done if a.role == "config" and a.verb == "delete")
            self.metrics.managed.labels(namespace).set(managed)
        except RejectedApiError as exc:
            # A read refused (RBAC on the namespace): it concerns every policy here.
            for key in active:
                refused.setdefault(key, exc)
        except TransientApiError as exc:
            error = exc
        self._record_rejections(bodies, refused, result)
        result.writes = len(done)
        state.selected = {
            f"{w.kind}/{w.name}" for ws in rendered.selections.values() for w in ws
        } | plan.held_workloads
        self._emit_actions(recorder, done, bodies)
        status_error = await self._write_statuses(namespace, bodies, valid, result, rendered,
                                                  error, recorder)
        error = error or status_error
        result.events = await recorder.post()
        result.seconds = time.monotonic() - started
        self.metrics.duration.observe(result.seconds)
        if error is not None:
            self.metrics.reconciles.labels("error").inc()
            self.metrics.errors.labels("api").inc()
            log.warning("pass over namespace %s failed: %s", namespace, error,
                        extra={"namespace": namespace, "status": error.status})
            raise PassFailed(error)
        self.metrics.reconciles.labels("ok").inc()
        if result.invalid:
            self.metrics.errors.labels("invalid").inc(len(result.invalid))
        log.debug("pass over namespace %s: %d write(s) in %.3fs", namespace, result.writes,
                  result.seconds)
        return result

    def _record_rejections(self, bodies: Mapping[str, Mapping[str, Any]],
                           refused: Mapping[str, RejectedApiError], result: PassResult) -> None:
        """Hold each policy a write was refused for, until its spec changes."""
        for key, exc in sorted(refused.items()):
            body = bodies.get(key)
            if body is None:
                continue
            meta = body.get("metadata", {})
            message = m.MSG_APPLY_REJECTED.format(request=exc.request, status=exc.status,
                                                  reason=exc.reason, message=exc.message)
            self._rejected[key] = Rejection(meta.get("uid"), meta.get("generation"), message)
            result.rejected[key] = message
            self.metrics.errors.labels("rejected").inc()
            log.warning("the API server refused a write for SessionPolicy %s, not retried until "
                        "its spec changes: %s", key, exc,
                        extra={"policies": key, "status": exc.status})

    async def _execute(self, actions: list[Action],
                       refused: dict[str, RejectedApiError]) -> list[Action]:
        """Run ``actions`` concurrently (the client bounds concurrency). A refused write is
        recorded in ``refused`` for each policy it was made for; the first transient error is
        raised after the others finished, so one failure does not waste the rest."""
        outcomes = await asyncio.gather(*(self._apply(a) for a in actions),
                                        return_exceptions=True)
        done: list[Action] = []
        first: BaseException | None = None
        for action, outcome in zip(actions, outcomes, strict=True):
            if isinstance(outcome, RejectedApiError):
                for key in action.policies:
                    refused.setdefault(key, outcome)
                if not action.policies:
                    log.warning("the API server refused %s: %s", outcome.request, outcome)
            elif isinstance(outcome, BaseException):
                first = first or outcome
            elif outcome:
                done.append(action)
        if first is not None:
            raise first
        return done

    async def _apply(self, action: Action) -> bool:
        """Do one write (deleting an absent object counts as done)."""
        ns, name = action.namespace, action.name
        if action.verb == "delete":
            await self.api.delete(action.resource, ns, name)
        elif action.verb == "create":
            # A 409 means our list was stale (or a peer raced us): the pass fails and the
            # retry lists again, finding the object to compare instead of creating it.
            assert action.body is not None
            await self.api.create(action.resource, ns, action.body)
        else:
            assert action.body is not None
            await self.api.patch(action.resource, ns, name, action.body)
        self.metrics.writes.labels(action.verb, action.resource.kind).inc()
        log.info("%s %s %s/%s", _past(action.verb), action.resource.kind, ns, name,
                 extra={"verb": action.verb, "kind": action.resource.kind, "namespace": ns,
                        "object": name, "workload": action.workload,
                        "policies": ",".join(action.policies)})
        return True

    async def _start_purge(self, rendered: Rendered, policy: SessionPolicy,
                           body: Mapping[str, Any], current_cjs: list[dict[str, Any]],
                           recorder: PassRecorder) -> None:
        """Start a purge Job from the policy's CronJob at once (its limits were tightened)."""
        cron = next((c for c in rendered.cron_jobs
                     if c["metadata"].get("annotations", {}).get("curfew.dev/policy")
                     == policy.key), None)
        if cron is None:
            return
        name = cron["metadata"]["name"]
        config_hash = rendered.purge_configs[policy.key].hash
        job_name = f"{name}-{config_hash.split(':')[-1][:10]}"
        template = cron["spec"]["jobTemplate"]
        metadata: dict[str, Any] = {
            "name": job_name, "namespace": policy.metadata.namespace,
            "labels": dict(template.get("metadata", {}).get("labels", {})),
            "annotations": {"cronjob.kubernetes.io/instantiate": "manual",
                            "curfew.dev/policy": policy.key},
        }
        uid = next((c["metadata"].get("uid") for c in current_cjs
                    if c["metadata"]["name"] == name), None)
        if uid:
            metadata["ownerReferences"] = [{"apiVersion": "batch/v1", "kind": "CronJob",
                                            "name": name, "uid": uid, "controller": True,
                                            "blockOwnerDeletion": True}]
        job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata,
               "spec": template["spec"]}
        try:
            await self.api.create(JOBS, policy.metadata.namespace, job)
        except TransientApiError as exc:
            if not exc.conflict:
                raise
            return  # this tightening's Job was started before
        self.metrics.writes.labels("create", "Job").inc()
        log.info("started Job %s/%s", policy.metadata.namespace, job_name,
                 extra={"verb": "create", "kind": "Job", "policies": policy.key})
        recorder.emit(body, "Normal", m.EV_PURGE_STARTED,
                      m.EVM_PURGE_STARTED.format(name=job_name))

    # --- status and Events ------------------------------------------------------------------

    def _base_status(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        """The status last written by this operator (the index may lag behind it), else the
        status the object carries."""
        return self._written_status.get(_cache_key(body)) or body.get("status") or {}

    async def _write_statuses(self, namespace: str, bodies: Mapping[str, Mapping[str, Any]],
                              valid: Mapping[str, SessionPolicy], result: PassResult,
                              rendered: Rendered, error: ApiError | None,
                              recorder: PassRecorder) -> ApiError | None:
        status_error: ApiError | None = None
        present = {_cache_key(b) for b in bodies.values()}
        for stale in [k for k in self._written_status
                      if k.startswith(f"{namespace}/") and k not in present]:
            del self._written_status[stale]  # the policy is gone
        for key, body in sorted(bodies.items()):
            current = dict(self._base_status(body))
            purge = self._purge_results.get(key)
            if purge is not None:
                current.update(build_purge_record(current, purge))
            outcome = self._outcome(key, body, valid.get(key), result, rendered, error)
            status = build_status(current, outcome, now=self.clock(),
                                  purge_failure_threshold=self.settings.purge_failure_threshold)
            if key in valid:
                self.metrics.selected.labels(namespace, body["metadata"]["name"]).set(
                    status["selectedWorkloads"])
            before = self._base_status(body)
            if all(before.get(k) == v for k, v in status.items()):
                continue
            try:
                await self.api.patch(SESSION_POLICIES, namespace, body["metadata"]["name"],
                                     {"status": status}, subresource="status")
            except RejectedApiError as exc:
                log.warning("the API server refused the status of SessionPolicy %s: %s", key,
                            exc, extra={"policies": key, "status": exc.status})
                continue
            except TransientApiError as exc:
                if not exc.not_found:  # the policy is gone
                    status_error = status_error or exc
                continue
            self._written_status[_cache_key(body)] = status
            if purge is not None and self._purge_results.get(key) is purge:
                del self._purge_results[key]
            log.info("updated status of SessionPolicy %s", key,
                     extra={"verb": "patch", "kind": "SessionPolicy", "policies": key})
            old = {c.get("type", ""): c for c in before.get("conditions") or []}
            self._emit_transitions(recorder, body, old, status, purge)
        return status_error

    def _outcome(self, key: str, body: Mapping[str, Any], policy: SessionPolicy | None,
                 result: PassResult, rendered: Rendered, error: ApiError | None) -> PassOutcome:
        generation = body.get("metadata", {}).get("generation")
        if policy is None:
            return PassOutcome(generation=generation,
                           invalid=result.invalid.get(key) or "invalid spec")
        if key in result.rejected:
            return PassOutcome(generation=generation, rejected=result.rejected[key],
                           purge_suspended=policy.spec.purge.suspend)
        selected = rendered.selections.get(key, ())
        workloads = [
            WorkloadEntry(kind=w.kind, name=w.name, config_map=build_config_map_name(w),
                          config_hash=rendered.configs[w].hash)
            for w in selected[: self.settings.status_workloads_limit]
        ]
        return PassOutcome(
            generation=generation,
            selected=len(selected),
            apply_error=str(error) if error is not None else None,
            workloads=workloads,
            overlaps=rendered.overlaps.get(key, ()),
            violations=check_compliance(policy),
            profiles=list(policy.spec.compliance.profiles),
            purge_suspended=policy.spec.purge.suspend,
        )

    def _emit_actions(self, recorder: PassRecorder, done: Iterable[Action],
                      bodies: Mapping[str, Mapping[str, Any]]) -> None:
        """One Event per policy and kind of change in this pass."""
        grouped: dict[tuple[str, str], list[Action]] = {}
        for action in done:
            reason = _event_reason(action)
            for key in action.policies:
                if key in bodies:
                    grouped.setdefault((key, reason), []).append(action)
        for (key, reason), actions in grouped.items():
            recorder.emit(bodies[key], "Normal", reason, _event_message(actions))

    def _emit_transitions(self, recorder: PassRecorder, body: Mapping[str, Any],
                          old: Mapping[str, Mapping[str, Any]], status: Mapping[str, Any],
                          purge: LastPurge | None) -> None:
        new: dict[str, Mapping[str, Any]] = {c["type"]: c for c in status["conditions"]}

        def changed(type_: str) -> Mapping[str, Any] | None:
            cond = new.get(type_)
            before = old.get(type_) or {}
            if cond is None or (before.get("status"), before.get("reason"),
                                before.get("message")) == (cond["status"], cond["reason"],
                                                           cond["message"]):
                return None
            return cond

        ready = changed(m.READY)
        if ready is not None and ready["reason"] == m.INVALID_SPEC:
            recorder.emit(body, "Warning", m.EV_INVALID_SPEC, ready["message"])
        if ready is not None and ready["reason"] == m.APPLY_FAILED:
            recorder.emit(body, "Warning", m.EV_APPLY_FAILED, ready["message"])
        if ready is not None and ready["reason"] == m.APPLY_REJECTED:
            recorder.emit(body, "Warning", m.EV_APPLY_REJECTED, ready["message"])
        overlap = changed(m.OVERLAPPING)
        if overlap is not None and overlap["status"] == "True":
            recorder.emit(body, "Normal", m.EV_OVERLAPPING, overlap["message"])
        compliant = changed(m.COMPLIANT)
        if compliant is not None and compliant["status"] == "False":
            recorder.emit(body, "Warning", m.EV_NONCOMPLIANT, compliant["message"])
        if purge is not None:
            expired = purge.expired.idle + purge.expired.absolute + purge.expired.tightened
            text = m.EVM_PURGE_RESULT.format(job=purge.job, outcome=purge.outcome,
                                             scanned=purge.scanned, expired=expired,
                                             message=purge.message)
            if purge.outcome == "ok":
                recorder.emit(body, "Normal", m.EV_PURGE_SUCCEEDED, text)
            else:
                recorder.emit(body, "Warning", m.EV_PURGE_FAILED, text)

    def _policy_of_job(self, namespace: str, job: Mapping[str, Any]
                       ) -> Mapping[str, Any] | None:
        meta = job.get("metadata", {})
        annotated = (meta.get("annotations") or {}).get("curfew.dev/policy")
        label = (meta.get("labels") or {}).get(LABEL_POLICY)
        for body in self.sources.policies(namespace):
            if annotated == _key(body) or (
                    label is not None and build_label_value(body["metadata"]["name"]) == label):
                return dict(body)
        return None


def _cache_key(body: Mapping[str, Any]) -> str:
    meta = body.get("metadata", {})
    return f"{meta.get('namespace')}/{meta.get('uid')}"


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


def _past(verb: str) -> str:
    return {"create": "created", "patch": "updated", "delete": "deleted"}[verb]


_REASONS = {
    ("config", "create"): m.EV_CONFIGMAP_CREATED,
    ("config", "patch"): m.EV_CONFIGMAP_UPDATED,
    ("config", "delete"): m.EV_CONFIGMAP_DELETED,
    ("purge-config", "create"): m.EV_PURGE_CONFIG_CREATED,
    ("purge-config", "patch"): m.EV_PURGE_CONFIG_UPDATED,
    ("purge-config", "delete"): m.EV_CONFIGMAP_DELETED,
    ("cron-job", "create"): m.EV_CRONJOB_CREATED,
    ("cron-job", "patch"): m.EV_CRONJOB_UPDATED,
    ("cron-job", "delete"): m.EV_CRONJOB_DELETED,
}
_LISTED = 5


def _event_reason(action: Action) -> str:
    return _REASONS[(action.role, action.verb)]


def _event_message(actions: list[Action]) -> str:
    first = actions[0]
    if len(actions) == 1 or first.role != "config":
        if first.role == "config":
            template = m.EVM_CONFIGMAP_DELETED if first.verb == "delete" else m.EVM_CONFIGMAP
            return template.format(name=first.name, workload=first.workload)
        if first.role == "purge-config":
            return m.EVM_PURGE_CONFIG.format(name=first.name)
        return m.EVM_CRONJOB.format(name=first.name)
    names = sorted(a.workload for a in actions)
    listed = ", ".join(names[:_LISTED])
    if len(names) > _LISTED:
        listed += m.EVM_MORE.format(count=len(names) - _LISTED)
    template = m.EVM_MANY_DELETED if first.verb == "delete" else m.EVM_MANY
    return template.format(count=len(names), workloads=listed)
