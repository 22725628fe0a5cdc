"""The sentences and table cells both renderings of the report share, so the Markdown and the
HTML always say the same thing."""

from __future__ import annotations

from typing import Final

from curfew.api.durations import Duration
from curfew.report.model import NamespaceReport, PolicyReport, Report, WorkloadReport

TITLE: Final = "Session timeout compliance report"
NOT_SELECTED: Final = "no policy selects it"
FROM_FILES: Final = ("not available: this report was made from files; a report made from the "
                     "cluster shows each policy's latest purge run")
WINNER: Final = ("each timeout is the shortest among them; the other settings come from {winner} "
                 "(highest priority, then oldest, then name)")
BASIS: Final = (
    "Each workload is judged by what it enforces: its effective timeouts (the shortest among "
    "the policies that select it) and its enforcement mode, against the limits of every "
    "compliance profile those policies list, each citing the clause of its standard. This is "
    "the documentation of session inactivity and absolute timeouts that OWASP ASVS 5.0 "
    "requirement 7.1.1 asks for."
)
WORKLOAD_COLUMNS: Final = ("Workload", "Policies", "Enforcement", "Idle", "Absolute", "Renewal",
                           "Warning", "Profiles")
TIMEOUT_COLUMNS: Final = ("Timeout", "Value", "Where it came from")
PROFILE_COLUMNS: Final = ("Profile", "Standard", "Result", "Why", "Required by")
POLICY_COLUMNS: Final = ("Policy", "Priority", "Enforcement", "Idle", "Absolute", "Renewal",
                         "Profiles", "Selects", "Overlaps with", "Conditions")
PURGE_COLUMNS: Final = ("Policy", "Schedule", "Last run", "Outcome", "Scanned",
                        "Expired (idle / absolute / tightened)", "Duration", "Failures in a row",
                        "Message")


def header(report: Report) -> str:
    return (f"Generated {report.generated_at} by Curfew {report.version} from "
            f"{report.source}.")


def plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def summary(ns: NamespaceReport) -> str:
    selected, missing = len(ns.selected), len(ns.noncompliant)
    policies = [p for p in ns.policies if p.problem is None]
    out = (f"{plural(len(policies), 'policy', 'policies')} in force; "
           f"{selected} of {plural(len(ns.workloads), 'workload', 'workloads')} selected, "
           f"{selected - missing} meeting every profile their policies list and {missing} "
           "missing one")
    if ns.unselected:
        out += f"; {len(ns.unselected)} selected by no policy"
    invalid = [p.key for p in ns.policies if p.problem is not None]
    if invalid:
        out += f"; {plural(len(invalid), 'policy', 'policies')} not in force: {', '.join(invalid)}"
    return out + "."


def duration(value: Duration | None) -> str:
    return str(value) if value is not None else "none"


def verdict(meets: bool) -> str:
    return "Meets" if meets else "Misses"


def profiles_cell(workload: WorkloadReport) -> str:
    if not workload.profiles:
        return "none listed"
    return ", ".join(f"{verdict(p.meets).lower()} {p.profile}" for p in workload.profiles)


def workload_row(w: WorkloadReport) -> tuple[str, ...]:
    if not w.selected:
        return (f"{w.kind}/{w.name}", NOT_SELECTED, "", "", "", "", "", "")
    values = {t.field: duration(t.value) for t in w.timeouts}
    return (f"{w.kind}/{w.name}", ", ".join(w.sources), w.enforcement or "",
            values["idle"], values["absolute"], values["renewal"], values["warningLead"],
            profiles_cell(w))


def policy_row(p: PolicyReport) -> tuple[str, ...]:
    conditions = "; ".join(f"{t}={s}" + (f": {m}" if m and s != "True" else "")
                           for t, s, m in p.conditions)
    if p.problem is not None or p.timeouts is None:
        return (p.key, "", "", "", "", "", "", "", "", f"not in force: {p.problem}"
                + (f"; {conditions}" if conditions else ""))
    t = p.timeouts
    return (p.key, str(p.priority), p.enforcement, str(t.idle), str(t.absolute),
            duration(t.renewal), ", ".join(p.profiles) or "none",
            ", ".join(p.selected) or "nothing", ", ".join(p.overlaps) or "none",
            conditions or "not available")


def purge_row(p: PolicyReport) -> tuple[str, ...] | None:
    purge = p.purge
    if purge is None:
        return None
    schedule = purge.schedule + (f" ({purge.time_zone})" if purge.time_zone else "")
    if purge.suspended:
        schedule += ", suspended"
    if not purge.available:
        return (p.key, schedule, FROM_FILES, "", "", "", "", "", "")
    last = purge.last
    if last is None:
        return (p.key, schedule, "no run has finished yet", "", "", "", "",
                str(purge.consecutive_failures), "")
    expired = f"{last.expired.idle} / {last.expired.absolute} / {last.expired.tightened}"
    return (p.key, schedule, last.time, last.outcome, str(last.scanned), expired,
            f"{last.duration_seconds:.1f}s", str(purge.consecutive_failures), last.message)


def selected_by(w: WorkloadReport) -> str:
    """The sentence that opens a selected workload's details."""
    text = f"Selected by {', '.join(w.sources)}, enforcement {w.enforcement}"
    if len(w.sources) > 1:
        text += "; " + WINNER.format(winner=w.winner)
    return text + "."
