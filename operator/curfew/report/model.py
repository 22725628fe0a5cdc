"""The compliance report as data (pure): per namespace, every workload, its effective timeouts
and which policy each came from, the compliance profiles it meets or misses and why (with the
standards' clauses), and each policy's latest purge.

``curfew report`` renders it as Markdown or HTML; the operator turns the same data into
OpenReports ``Report`` objects. Nothing here reads a file or the cluster: the caller hands in
the policies, the workloads and, from a cluster, the policies' status.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from pydantic import ValidationError

from curfew.api.compliance import PROFILES, evaluate
from curfew.api.config import WorkloadId
from curfew.api.durations import Duration
from curfew.api.policy import LastPurge, SessionPolicy, Timeouts
from curfew.render.core import Rendered, render, workload_id
from curfew.render.resolve import build_effective_timeouts, winner_order

TIMEOUT_FIELDS: Final = (("idle", "idle"), ("absolute", "absolute"), ("renewal", "renewal"),
                         ("warning_lead", "warningLead"))
"""Each timeout: (attribute of :class:`Timeouts`, name in the policy's spec)."""


@dataclass(frozen=True)
class TimeoutOrigin:
    """One effective timeout of a workload and where it came from."""

    field: str
    """The spec's name: idle, absolute, renewal or warningLead."""
    value: Duration | None
    """None: the workload has none (no policy sets it, or it was dropped)."""
    policies: tuple[str, ...]
    """The policies whose own value it is (several when they tie)."""
    origin: str
    """One sentence saying why the value is what it is."""


@dataclass(frozen=True)
class ProfileCheck:
    """One compliance profile judged against a workload's effective config."""

    profile: str
    title: str
    clause: str
    """The standard and clause the profile's limits come from."""
    required_by: tuple[str, ...]
    """The selecting policies that list the profile."""
    meets: bool
    reasons: tuple[str, ...]
    """Every limit checked, met or missed, in words."""


@dataclass(frozen=True)
class WorkloadReport:
    """One workload of the namespace, selected or not."""

    kind: str
    name: str
    sources: tuple[str, ...] = ()
    """Every policy that selects it, sorted; empty when none does."""
    winner: str | None = None
    """The policy the settings other than the timeouts come from."""
    enforcement: str | None = None
    timeouts: tuple[TimeoutOrigin, ...] = ()
    profiles: tuple[ProfileCheck, ...] = ()
    config_hash: str | None = None

    @property
    def selected(self) -> bool:
        return bool(self.sources)

    @property
    def compliant(self) -> bool:
        """Selected and meeting every profile its policies list."""
        return self.selected and all(p.meets for p in self.profiles)


@dataclass(frozen=True)
class PurgeReport:
    """What is known of one policy's purge runs."""

    schedule: str
    time_zone: str | None
    suspended: bool
    available: bool
    """False when the report was made from files: no run can be known."""
    last: LastPurge | None = None
    consecutive_failures: int = 0


@dataclass(frozen=True)
class PolicyReport:
    """One SessionPolicy of the namespace."""

    key: str
    name: str
    problem: str | None = None
    """Why the policy is not in force (invalid spec); None when it is."""
    priority: int = 0
    enforcement: str = ""
    timeouts: Timeouts | None = None
    profiles: tuple[str, ...] = ()
    selected: tuple[str, ...] = ()
    """``Kind/name`` of each workload it selects."""
    overlaps: tuple[str, ...] = ()
    purge: PurgeReport | None = None
    conditions: tuple[tuple[str, str, str], ...] = ()
    """(type, status, message) of each condition on its status (from a cluster only)."""


@dataclass(frozen=True)
class NamespaceReport:
    """The document of one namespace."""

    namespace: str
    policies: tuple[PolicyReport, ...]
    workloads: tuple[WorkloadReport, ...]

    @property
    def selected(self) -> tuple[WorkloadReport, ...]:
        return tuple(w for w in self.workloads if w.selected)

    @property
    def unselected(self) -> tuple[WorkloadReport, ...]:
        return tuple(w for w in self.workloads if not w.selected)

    @property
    def noncompliant(self) -> tuple[WorkloadReport, ...]:
        return tuple(w for w in self.selected if not w.compliant)


@dataclass(frozen=True)
class Report:
    """The whole report: one :class:`NamespaceReport` per namespace, sorted."""

    generated_at: str
    source: str
    """What it was made from, in words: the files, or the cluster's context."""
    version: str
    namespaces: tuple[NamespaceReport, ...]


def _join(keys: Sequence[str]) -> str:
    return ", ".join(keys)


def build_timeout_origins(sources: Sequence[SessionPolicy]) -> tuple[TimeoutOrigin, ...]:
    """Each effective timeout of a workload selected by ``sources`` and why it is that value.

    The values are :func:`~curfew.render.build_effective_timeouts`' own; this only explains
    them, so the report can never disagree with what the operator writes.
    """
    effective = build_effective_timeouts(sources)
    ordered = sorted(sources, key=winner_order)
    out = []
    for attribute, name in TIMEOUT_FIELDS:
        value: Duration | None = getattr(effective, attribute)
        own = [(p.key, getattr(p.spec.timeouts, attribute)) for p in ordered]
        given = [(k, d) for k, d in own if d is not None]
        from_policies = tuple(k for k, d in given if d == value)
        listed = _join([f"{k} {d}" for k, d in given])
        if value is None and not given:
            origin = "not set by any policy"
        elif value is None:
            origin = (f"dropped: {listed} exceeds the effective absolute "
                      f"{effective.absolute}, so the session id is never renewed")
        elif not from_policies:
            origin = (f"half the effective idle {effective.idle}: {listed} is not shorter "
                      "than it, which would warn at once")
        elif len(given) == 1:
            origin = f"set by {from_policies[0]}"
        else:
            origin = f"the shortest of {listed}: from {_join(from_policies)}"
        out.append(TimeoutOrigin(name, value, from_policies, origin))
    return tuple(out)


def _limit_reason(what: str, actual: Duration, limit: Duration | None) -> str | None:
    if limit is None:
        return None
    verdict = "exceeds" if actual > limit else "is within"
    return f"{what} {actual} {verdict} the limit of {limit}"


def build_profile_checks(sources: Sequence[SessionPolicy]) -> tuple[ProfileCheck, ...]:
    """Every profile any of ``sources`` lists, judged against the effective config.

    A workload is judged by what it enforces: its effective timeouts, and its enforcement (in
    Audit nothing expires, so no limit is met).
    """
    effective = build_effective_timeouts(sources)
    winner = min(sources, key=winner_order)
    audit = winner.spec.enforcement == "Audit"
    out = []
    for name, profile in PROFILES.items():
        required_by = tuple(sorted(p.key for p in sources if name in p.spec.compliance.profiles))
        if not required_by:
            continue
        missed = evaluate(effective, [name])
        reasons = [r for r in (
            _limit_reason("idle", effective.idle, profile.max_idle),
            _limit_reason("absolute", effective.absolute, profile.max_absolute),
        ) if r is not None]
        if profile.max_absolute is None:
            reasons.append("the standard sets no absolute limit")
        if audit:
            reasons.append(f"enforcement is Audit (from {winner.key}): sessions past the limits "
                           "are reported, not expired")
        out.append(ProfileCheck(name, profile.title, profile.source, required_by,
                                not missed and not audit, tuple(reasons)))
    return tuple(out)


def _purge(policy: SessionPolicy, status: Mapping[str, Any] | None) -> PurgeReport:
    spec = policy.spec.purge
    last = None
    failures = 0
    if status is not None:
        raw = status.get("lastPurge")
        if isinstance(raw, Mapping):
            try:
                last = LastPurge.model_validate(dict(raw))
            except ValidationError:
                last = None  # written by another version: shown as unknown, not guessed
        count = status.get("purgeFailures")
        failures = count if isinstance(count, int) else 0
    return PurgeReport(spec.schedule, spec.time_zone, spec.suspend, status is not None, last,
                       failures)


def _conditions(status: Mapping[str, Any] | None) -> tuple[tuple[str, str, str], ...]:
    raw = (status or {}).get("conditions")
    if not isinstance(raw, list):
        return ()
    return tuple((str(c.get("type", "")), str(c.get("status", "")), str(c.get("message", "")))
                 for c in raw if isinstance(c, Mapping))


def build_namespace_report(
    namespace: str,
    policies: Sequence[SessionPolicy],
    rendered: Rendered,
    workloads: Sequence[WorkloadId],
    *,
    statuses: Mapping[str, Mapping[str, Any]] | None = None,
    invalid: Mapping[str, str] | None = None,
) -> NamespaceReport:
    """The document of ``namespace`` from what :func:`~curfew.render.render` decided.

    ``statuses`` (policy key -> its ``status``) is None when there is no cluster to read them
    from; ``invalid`` maps the keys of policies that failed validation to why.
    """
    here = sorted((p for p in policies if p.metadata.namespace == namespace),
                  key=lambda p: p.key)
    by_key = {p.key: p for p in here}
    selected_by: dict[WorkloadId, list[SessionPolicy]] = {}
    for policy in here:
        for w in rendered.selections.get(policy.key, ()):
            selected_by.setdefault(w, []).append(policy)

    entries = []
    # Workloads selected by the same policies share their explanations: built once per set,
    # as render builds one config per set (thousands of workloads often share one policy).
    shared: dict[tuple[str, ...], WorkloadReport] = {}
    for w in sorted({w for w in workloads if w.namespace == namespace},
                    key=lambda w: (w.kind, w.name)):
        sources = selected_by.get(w)
        if not sources:
            entries.append(WorkloadReport(w.kind, w.name))
            continue
        keys = tuple(sorted(p.key for p in sources))
        common = shared.get(keys)
        if common is None:
            winner = min(sources, key=winner_order)
            common = shared[keys] = WorkloadReport(
                kind="", name="", sources=keys, winner=winner.key,
                enforcement=winner.spec.enforcement,
                timeouts=build_timeout_origins(sources),
                profiles=build_profile_checks(sources),
            )
        config = rendered.configs.get(w)
        entries.append(replace(common, kind=w.kind, name=w.name,
                               config_hash=config.hash if config is not None else None))

    reports = [
        PolicyReport(
            key=key, name=p.metadata.name,
            priority=p.spec.priority, enforcement=p.spec.enforcement,
            timeouts=p.spec.timeouts,
            profiles=tuple(p.spec.compliance.profiles),
            selected=tuple(f"{w.kind}/{w.name}" for w in rendered.selections.get(key, ())),
            overlaps=rendered.overlaps.get(key, ()),
            purge=_purge(p, None if statuses is None else statuses.get(key, {})),
            conditions=_conditions(None if statuses is None else statuses.get(key)),
        )
        for key, p in by_key.items()
    ]
    for key, problem in (invalid or {}).items():
        ns, _, name = key.partition("/")
        if ns == namespace:
            reports.append(PolicyReport(
                key=key, name=name, problem=problem,
                conditions=_conditions(None if statuses is None else statuses.get(key))))
    return NamespaceReport(namespace, tuple(sorted(reports, key=lambda r: r.key)),
                           tuple(entries))


def build_report(
    policies: Sequence[SessionPolicy],
    workloads: Sequence[Mapping[str, Any]],
    *,
    generated_at: str,
    source: str,
    version: str,
    statuses: Mapping[str, Mapping[str, Any]] | None = None,
    invalid: Mapping[str, str] | None = None,
    namespaces: Sequence[str] | None = None,
) -> Report:
    """The report over ``namespaces`` (unset: every namespace a policy or a workload is in).

    Raises :class:`~curfew.api.CurfewInputError` on a policy or a workload given twice.
    """
    rendered = render(policies, workloads)
    ids = [workload_id(w) for w in workloads]
    if namespaces is None:
        namespaces = sorted({p.metadata.namespace for p in policies}
                            | {w.namespace for w in ids}
                            | {k.partition("/")[0] for k in invalid or {}})
    return Report(generated_at, source, version, tuple(
        build_namespace_report(ns, policies, rendered, ids, statuses=statuses, invalid=invalid)
        for ns in sorted(set(namespaces))
    ))
