"""Build a policy's status (pure): the pydantic :class:`~curfew.api.SessionPolicyStatus` (the
model the CRD's status schema is checked against), with conditions in ``metav1.Condition`` shape,
the selected workloads, and the purge results, from what one pass decided.

``lastTransitionTime`` is kept when a condition's status does not change, so a pass that changes
nothing builds a status equal to the current one, and the operator then writes nothing.
:func:`build_status_body` is the JSON the status subresource is patched with.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from curfew.api import LastPurge, SessionPolicyStatus, Violation
from curfew.api.policy import Condition, PurgeExpired, WorkloadStatus
from curfew.operator import messages as m


@dataclass(frozen=True)
class WorkloadEntry:
    kind: str
    name: str
    config_map: str
    config_hash: str


@dataclass(frozen=True)
class PassOutcome:
    """What a pass found for one policy; the input of :func:`build_status`."""

    generation: int | None
    invalid: str | None = None
    """The field-path error when the spec is invalid."""
    apply_error: str | None = None
    """A passing API failure (retried with backoff)."""
    rejected: str | None = None
    """The API server's refusal of a write for this spec (not retried until the spec changes)."""
    workloads: Sequence[WorkloadEntry] | None = None
    """``None`` keeps the current list (an invalid policy's last effect is held)."""
    selected: int | None = None
    """How many workloads are selected when ``workloads`` lists only the first of them."""
    overlaps: Sequence[str] = ()
    violations: Sequence[Violation] | None = None
    profiles: Sequence[str] = ()
    purge_suspended: bool = False


def build_condition(type_: str, status: str, reason: str, message: str,
                    generation: int | None, now: str) -> Condition:
    return Condition.model_validate({
        "type": type_, "status": status, "reason": reason, "message": message,
        "lastTransitionTime": now, "observedGeneration": generation})


def _valid(model: type[Any], value: Any) -> Any:
    """``value`` read as ``model``, or None when it is not one (a status edited by hand)."""
    try:
        return model.model_validate(value)
    except ValidationError:
        return None


def merge_conditions(current: Sequence[Mapping[str, Any]],
                     new: Sequence[Condition]) -> list[Condition]:
    """``new``, with each condition's ``lastTransitionTime`` taken from ``current`` when its
    status is unchanged; conditions of other types in ``current`` are kept."""
    by_type = {c.get("type"): c for c in current}
    out = []
    for cond in new:
        old = by_type.get(cond.type)
        if old is not None and old.get("status") == cond.status \
                and old.get("lastTransitionTime"):
            cond = cond.model_copy(update={"last_transition_time": old["lastTransitionTime"]})
        out.append(cond)
    new_types = {c.type for c in new}
    kept = (_valid(Condition, c) for c in current if c.get("type") not in new_types)
    out.extend(c for c in kept if c is not None)
    order = {t: i for i, t in enumerate(m.CONDITION_TYPES)}
    return sorted(out, key=lambda c: (order.get(c.type, len(order)), c.type))


def build_purge_condition(last: Mapping[str, Any] | None, failures: int, threshold: int,
                          suspended: bool, generation: int | None, now: str) -> Condition:
    if last is None:
        if suspended:
            return build_condition(m.PURGE_HEALTHY, "Unknown", m.PURGE_SUSPENDED,
                                   m.MSG_PURGE_SUSPENDED, generation, now)
        return build_condition(m.PURGE_HEALTHY, "Unknown", m.NO_PURGE_YET, m.MSG_NO_PURGE_YET,
                               generation, now)
    outcome = last.get("outcome")
    message = str(last.get("message", ""))
    if outcome == "aborted":
        return build_condition(m.PURGE_HEALTHY, "False", m.PURGE_ABORTED,
                               m.MSG_PURGE_ABORTED.format(message=message), generation, now)
    if outcome == "failed":
        if failures >= threshold:
            return build_condition(
                m.PURGE_HEALTHY, "False", m.PURGE_FAILING,
                m.MSG_PURGE_FAILING.format(failures=failures, message=message), generation, now)
        return build_condition(
            m.PURGE_HEALTHY, "True", m.PURGE_RETRYING,
            m.MSG_PURGE_FAILED_ONCE.format(failures=failures, threshold=threshold,
                                           message=message), generation, now)
    expired = last.get("expired") or {}
    total = sum(int(v) for v in expired.values()) if isinstance(expired, Mapping) else 0
    return build_condition(
        m.PURGE_HEALTHY, "True", m.PURGE_SUCCEEDED,
        m.MSG_PURGE_OK.format(scanned=last.get("scanned", 0), expired=total), generation, now)


def build_status(current: Mapping[str, Any], outcome: PassOutcome, *, now: str,
                 purge_failure_threshold: int) -> SessionPolicyStatus:
    """The status a policy should have after a pass (``current`` is its status now)."""
    gen = outcome.generation
    conditions: list[Condition] = []
    if outcome.invalid is not None:
        conditions.append(build_condition(m.READY, "False", m.INVALID_SPEC,
                                          m.MSG_INVALID_SPEC.format(error=outcome.invalid),
                                          gen, now))
    elif outcome.rejected is not None:
        conditions.append(build_condition(m.READY, "False", m.APPLY_REJECTED, outcome.rejected,
                                          gen, now))
    elif outcome.apply_error is not None:
        conditions.append(build_condition(m.READY, "False", m.APPLY_FAILED,
                                          m.MSG_APPLY_FAILED.format(error=outcome.apply_error),
                                          gen, now))
    else:
        count = outcome.selected if outcome.selected is not None else len(outcome.workloads or ())
        conditions.append(build_condition(m.READY, "True", m.RECONCILED,
                                          m.MSG_RECONCILED.format(count=count), gen, now))
    # An invalid or refused spec keeps the other conditions as they were: nothing was applied.
    if outcome.invalid is None and outcome.rejected is None:
        if outcome.overlaps:
            conditions.append(build_condition(
                m.OVERLAPPING, "True", m.POLICIES_OVERLAP,
                m.MSG_OVERLAP.format(others=", ".join(outcome.overlaps)), gen, now))
        else:
            conditions.append(build_condition(m.OVERLAPPING, "False", m.NO_OVERLAP,
                                              m.MSG_NO_OVERLAP, gen, now))
        if outcome.violations:
            conditions.append(build_condition(
                m.COMPLIANT, "False", m.PROFILE_VIOLATED,
                "; ".join(str(v) for v in outcome.violations), gen, now))
        elif outcome.profiles:
            conditions.append(build_condition(
                m.COMPLIANT, "True", m.MEETS_PROFILES,
                m.MSG_MEETS_PROFILES.format(profiles=", ".join(outcome.profiles)), gen, now))
        else:
            conditions.append(build_condition(m.COMPLIANT, "True", m.NO_PROFILES,
                                              m.MSG_NO_PROFILES, gen, now))
    last = current.get("lastPurge")
    failures = int(current.get("purgeFailures", 0) or 0)
    conditions.append(build_purge_condition(last, failures, purge_failure_threshold,
                                            outcome.purge_suspended, gen, now))

    if outcome.workloads is None:
        selected = int(current.get("selectedWorkloads", 0) or 0)
        kept = (_valid(WorkloadStatus, w) for w in current.get("workloads") or [])
        workloads = [w for w in kept if w is not None]
    else:
        selected = (outcome.selected if outcome.selected is not None
                    else len(outcome.workloads))
        workloads = [WorkloadStatus(kind=w.kind, name=w.name, config_map=w.config_map,
                                    config_hash=w.config_hash) for w in outcome.workloads]
    return SessionPolicyStatus(
        observed_generation=gen,
        conditions=merge_conditions(current.get("conditions") or [], conditions),
        selected_workloads=selected,
        workloads=workloads,
        last_purge=_valid(LastPurge, last) if last is not None else None,
        purge_failures=failures,
    )


def build_status_body(status: SessionPolicyStatus) -> dict[str, Any]:
    """``status`` as the JSON of the status subresource (camelCase, unset fields left out)."""
    body: dict[str, Any] = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    return body


def build_last_purge(termination_message: str | None, *, job: str, finished_at: str,
                     job_failed: bool) -> LastPurge:
    """``status.lastPurge`` from a purge pod's termination message (DESIGN.md's summary line).

    A missing or unreadable summary is a failed run: the pod died before it could report.
    """
    summary: Mapping[str, Any] | None = None
    for line in reversed((termination_message or "").strip().splitlines()):
        try:
            parsed = json.loads(line)
        except ValueError:
            continue
        if isinstance(parsed, Mapping) and "outcome" in parsed:
            summary = parsed
            break
    if summary is None:
        reason = "the purge Job failed" if job_failed else "the purge Job finished"
        return LastPurge(time=finished_at, outcome="failed", job=job,
                         message=f"{reason} without a summary in its termination message")
    outcome = summary.get("outcome")
    if outcome not in ("ok", "aborted", "failed"):
        outcome = "failed"
    expired_raw = summary.get("expired")
    expired = PurgeExpired.model_validate(expired_raw) if isinstance(expired_raw, Mapping) \
        else PurgeExpired()
    return LastPurge(
        time=finished_at, outcome=outcome, job=job,
        scanned=int(summary.get("scanned", 0) or 0), expired=expired,
        repaired=int(summary.get("repaired", 0) or 0),
        malformed=int(summary.get("malformed", 0) or 0),
        duration_seconds=float(summary.get("durationSeconds", 0) or 0),
        message=str(summary.get("message", ""))[:1024],
    )


def build_purge_record(current: Mapping[str, Any], result: LastPurge) -> dict[str, Any]:
    """The ``lastPurge`` and ``purgeFailures`` status fields after ``result``."""
    failures = int(current.get("purgeFailures", 0) or 0)
    failures = 0 if result.outcome == "ok" else failures + 1
    return {"lastPurge": result.model_dump(mode="json", by_alias=True, exclude_none=True),
            "purgeFailures": failures}
