"""One namespace pass, stateless: gather (the policies and workloads from kopf's indexes, the
managed objects from one list each), ``plan`` (the pure :func:`curfew.render.render` and
:func:`~curfew.operator.plan.build_plan`), then write only what differs, patch each policy's
status when it changed, and post the pass's Events.

What must outlive a pass (the statuses this operator last wrote, purge results not yet on a
status, refused specs, Jobs to read again) is held in a :class:`PassMemory` the caller owns and
hands in; the pass itself keeps nothing. API failures arrive classified by the client: a
:class:`TransientApiError` fails the pass (:class:`~curfew.operator.queue.PassFailed`, retried by
the queue), a :class:`RejectedApiError` holds the policy the write was made for until its spec
changes.
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
    SESSION_POLICIES,
    ApiError,
    RejectedApiError,
    TransientApiError,
)
from curfew.operator import messages as m
from curfew.operator.memory import PassMemory, Rejection, status_key
from curfew.operator.metrics import Metrics
from curfew.operator.plan import (
    ANNOTATION_PURGE_PENDING,
    Action,
    PassPlan,
    build_plan,
    is_per_workload,
)
from curfew.operator.purge_jobs import read_purge_job
from curfew.operator.queue import PassFailed
from curfew.operator.recorder import PassRecorder
from curfew.operator.reports import REPORTS, build_desired_report, build_report_actions
from curfew.operator.settings import OperatorSettings
from curfew.operator.status import (
    PassOutcome,
    WorkloadEntry,
    build_purge_record,
    build_status,
    build_status_body,
)
from curfew.render import (
    MANAGED_BY,
    MANAGER,
    Rendered,
    RenderSettings,
    build_config_map_name,
    build_purge_job,
    render,
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


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _key(body: Mapping[str, Any]) -> str:
    meta = body.get("metadata", {})
    return f"{meta.get('namespace')}/{meta.get('name')}"


class NamespacePass:
    """The pass's dependencies; :meth:`run` does one pass and keeps nothing."""

    def __init__(self, settings: OperatorSettings, api: Api, sources: Sources, *,
                 metrics: Metrics, render_settings: RenderSettings,
                 clock: Callable[[], str] = utc_now) -> None:
        self.settings = settings
        self.api = api
        self.sources = sources
        self.metrics = metrics
        self.render_settings = render_settings
        self.clock = clock

    async def run(self, namespace: str, memory: PassMemory) -> PassResult:
        started = time.monotonic()
        result = PassResult(namespace)
        recorder = PassRecorder(self.api, namespace, self.metrics)
        bodies = {_key(b): b for b in self.sources.policies(namespace)}
        for key in [k for k in memory.rejected if k.startswith(f"{namespace}/")]:
            if key not in bodies or not memory.rejected[key].holds(bodies[key]):
                del memory.rejected[key]  # the spec changed (or the policy is gone): try again
        valid: dict[str, SessionPolicy] = {}
        for key, body in sorted(bodies.items()):
            try:
                valid[key] = parse_policy(body)
            except InvalidPolicy as exc:
                result.invalid[key] = str(exc)
        result.rejected = {k: memory.rejected[k].message for k in valid if k in memory.rejected}
        # A refused policy is held like an invalid one: what it enforced before stays.
        active = {k: p for k, p in valid.items() if k not in result.rejected}
        rendered = render(active.values(), self.sources.workloads(namespace),
                          settings=self.render_settings)
        error: ApiError | None = None
        refused: dict[str, RejectedApiError] = {}
        plan = PassPlan()
        done: list[Action] = []
        report_writes = 0
        try:
            unread = memory.unread_jobs.get(namespace, {})
            for job_name, job in list(unread.items()):
                with contextlib.suppress(RejectedApiError):  # logged when first read
                    await read_purge_job(self.api, self.sources, memory, job)
                unread.pop(job_name, None)
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
            if self.settings.reports:
                held = bool(result.invalid or result.rejected or refused)
                report_writes = await self._write_report(namespace, active, rendered, held,
                                                         refused)
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
        self._record_rejections(memory, bodies, refused, result)
        result.writes = len(done) + report_writes
        memory.selected[namespace] = {
            f"{w.kind}/{w.name}" for ws in rendered.selections.values() for w in ws
        } | plan.held_workloads
        self._emit_actions(recorder, done, bodies)
        status_error = await self._write_statuses(memory, namespace, bodies, valid, result,
                                                  rendered, error, recorder)
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
        log.debug("pass over namespace %s: %d write(s) in %.3fs", namespace, result.writes,
                  result.seconds)
        return result

    def _record_rejections(self, memory: PassMemory, bodies: Mapping[str, Mapping[str, Any]],
                           refused: Mapping[str, RejectedApiError], result: PassResult) -> None:
        """Hold each policy a write was refused for, until its spec changes."""
        for key, exc in sorted(refused.items()):
            body = bodies.get(key)
            if body is None:
                continue
            meta = body.get("metadata", {})
            message = m.MSG_APPLY_REJECTED.format(request=exc.request, status=exc.status,
                                                  reason=exc.reason, message=exc.message)
            memory.rejected[key] = Rejection(meta.get("uid"), meta.get("generation"), message)
            result.rejected[key] = message
            log.warning("the API server refused a write for SessionPolicy %s, not retried until "
                        "its spec changes: %s", key, exc,
                        extra={"policies": key, "status": exc.status})

    async def _execute(self, actions: list[Action],
                       refused: dict[str, RejectedApiError]) -> list[Action]:
        """Run ``actions`` concurrently, by as many workers as the client has requests in flight
        (not a task per action: thousands of waiting tasks cost memory and buy nothing). A
        refused write is recorded in ``refused`` for each policy it was made for; the first
        transient error is raised after the others finished, so one failure does not waste the
        rest."""
        outcomes: list[bool | Exception] = [False] * len(actions)
        todo = iter(enumerate(actions))

        async def work() -> None:
            for index, action in todo:
                try:
                    outcomes[index] = await self._apply(action)
                except Exception as exc:  # sorted below, after every action was tried
                    outcomes[index] = exc

        workers = min(len(actions), self.settings.api_concurrency)
        await asyncio.gather(*(work() for _ in range(workers)))
        done: list[Action] = []
        first: Exception | None = None
        for action, outcome in zip(actions, outcomes, strict=True):
            if isinstance(outcome, RejectedApiError):
                for key in action.policies:
                    refused.setdefault(key, outcome)
                if not action.policies:
                    log.warning("the API server refused %s: %s", outcome.request, outcome)
            elif isinstance(outcome, Exception):
                first = first or outcome
            elif outcome:
                done.append(action)
        if first is not None:
            raise first
        return done

    async def _write_report(self, namespace: str, active: Mapping[str, SessionPolicy],
                            rendered: Rendered, held: bool,
                            refused: dict[str, RejectedApiError]) -> int:
        """Keep the namespace's OpenReports Report equal to the policies; the writes done."""
        try:
            current = await self.api.list(REPORTS, namespace, label_selector=MANAGED_SELECTOR)
        except ApiError as exc:
            if not exc.not_found:
                raise
            log.warning("reports are on but the API server does not serve %s: install the "
                        "OpenReports CRD or turn reports off", REPORTS.api_version,
                        extra={"namespace": namespace, "status": exc.status})
            return 0
        desired = build_desired_report(namespace, list(active.values()), rendered)
        actions = build_report_actions(namespace, desired, current, hold=held)
        return len(await self._execute(actions, refused))

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
        uid = next((c["metadata"].get("uid") for c in current_cjs
                    if c["metadata"]["name"] == cron["metadata"]["name"]), None)
        job = build_purge_job(cron, rendered.purge_configs[policy.key].hash, cron_job_uid=uid)
        job_name = job["metadata"]["name"]
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

    async def _write_statuses(self, memory: PassMemory, namespace: str,
                              bodies: Mapping[str, Mapping[str, Any]],
                              valid: Mapping[str, SessionPolicy], result: PassResult,
                              rendered: Rendered, error: ApiError | None,
                              recorder: PassRecorder) -> ApiError | None:
        status_error: ApiError | None = None
        present = {status_key(b) for b in bodies.values()}
        for stale in [k for k in memory.written_status
                      if k.startswith(f"{namespace}/") and k not in present]:
            del memory.written_status[stale]  # the policy is gone
        for key, body in sorted(bodies.items()):
            current = dict(memory.base_status(body))
            purge = memory.purge_results.get(key)
            if purge is not None:
                current.update(build_purge_record(current, purge))
            outcome = self._outcome(key, body, valid.get(key), result, rendered, error)
            status = build_status_body(build_status(
                current, outcome, now=self.clock(),
                purge_failure_threshold=self.settings.purge_failure_threshold))
            if key in valid:
                self.metrics.selected.labels(namespace, body["metadata"]["name"]).set(
                    status["selectedWorkloads"])
            self.metrics.observe_policy(namespace, body["metadata"]["name"], status)
            before = memory.base_status(body)
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
            memory.written_status[status_key(body)] = status
            if purge is not None and memory.purge_results.get(key) is purge:
                del memory.purge_results[key]
            log.info("updated status of SessionPolicy %s", key,
                     extra={"verb": "patch", "kind": "SessionPolicy", "policies": key})
            old = {c.get("type", ""): c for c in before.get("conditions") or []}
            for condition in status["conditions"]:
                recorder.set_condition(body, condition, old.get(condition["type"]))
            if purge is not None:
                _emit_purge_result(recorder, body, purge)
                self.metrics.count_purge(namespace, body["metadata"]["name"], purge.outcome,
                                         purge.expired.model_dump())
        self.metrics.keep_policies(namespace, (b["metadata"]["name"] for b in bodies.values()))
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


def _emit_purge_result(recorder: PassRecorder, body: Mapping[str, Any],
                       purge: LastPurge) -> None:
    expired = purge.expired.idle + purge.expired.absolute + purge.expired.tightened
    text = m.EVM_PURGE_RESULT.format(job=purge.job, outcome=purge.outcome, scanned=purge.scanned,
                                     expired=expired, message=purge.message)
    if purge.outcome == "ok":
        recorder.emit(body, "Normal", m.EV_PURGE_SUCCEEDED, text)
    else:
        recorder.emit(body, "Warning", m.EV_PURGE_FAILED, text)


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
