"""The report of one namespace as an OpenReports ``Report`` (``openreports.io/v1alpha1``), the
format Kyverno and other policy engines write and dashboards and auditors read (pure).

One result per selected workload and compliance profile its policies list: ``policy`` is the
policy that lists the profile, ``rule`` the profile, ``result`` pass or fail, the workload in
``resources``, the reasons in ``message`` and the effective values in ``properties``. A selected
workload whose policies list no profile gets one ``skip`` result. Nothing in it changes unless
the policies or workloads do (no timestamps), so a resync writes nothing.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Final

from curfew.render.objects import LABEL_COMPONENT, MANAGED_BY, MANAGER, WORKLOAD_API_VERSION
from curfew.report.model import NamespaceReport, WorkloadReport
from curfew.report.words import duration

API_VERSION: Final = "openreports.io/v1alpha1"
KIND: Final = "Report"
NAME: Final = "curfew-session-timeouts"
"""The one Report the operator keeps in each namespace with a policy."""
SOURCE: Final = "curfew"
CATEGORY: Final = "Session timeouts"
COMPONENT: Final = "compliance-report"
MAX_RESULTS: Final = 1000
"""Results kept in one Report (failures first), far below the API server's object size limit;
the summary still counts every result."""


def _properties(w: WorkloadReport, clause: str | None = None) -> dict[str, str]:
    # properties is a map of strings in the CRD.
    props = {t.field: duration(t.value) for t in w.timeouts}
    props["enforcement"] = w.enforcement or ""
    props["sources"] = ",".join(w.sources)
    if clause:
        props["clause"] = clause
    return props


def _results(w: WorkloadReport) -> list[dict[str, Any]]:
    ref = {"apiVersion": WORKLOAD_API_VERSION, "kind": w.kind, "name": w.name}
    name = f"{w.kind}/{w.name}"
    if not w.profiles:
        return [{"policy": w.winner or "", "result": "skip", "scored": False,
                 "category": CATEGORY, "source": SOURCE, "resources": [ref],
                 "message": f"{name}: its policies list no compliance profile",
                 "properties": _properties(w)}]
    return [{
        "policy": check.required_by[0], "rule": check.profile,
        "result": "pass" if check.meets else "fail", "scored": True,
        "category": CATEGORY, "source": SOURCE, "resources": [ref],
        "message": (f"{name} {'meets' if check.meets else 'misses'} {check.title} "
                    f"({check.clause}): {'; '.join(check.reasons)}"),
        "properties": _properties(w, check.clause),
    } for check in w.profiles]


def build_open_report(ns: NamespaceReport, *,
                      max_results: int = MAX_RESULTS) -> dict[str, Any]:
    """The ``Report`` object of ``ns``'s selected workloads, as sent to the API server."""
    every = [r for w in ns.selected for r in _results(w)]
    summary = Counter(r["result"] for r in every)
    kept = every
    if len(every) > max_results:
        # Failures are what an auditor must see: they are kept first, then the natural order.
        order = {id(r): i for i, r in enumerate(every)}
        chosen = sorted(every, key=lambda r: (r["result"] != "fail", order[id(r)]))[:max_results]
        kept = sorted(chosen, key=lambda r: order[id(r)])
    report: dict[str, Any] = {
        "apiVersion": API_VERSION, "kind": KIND,
        "metadata": {"name": NAME, "namespace": ns.namespace,
                     "labels": {MANAGED_BY: MANAGER, LABEL_COMPONENT: COMPONENT}},
        "scope": {"apiVersion": "v1", "kind": "Namespace", "name": ns.namespace},
        "source": SOURCE,
        "summary": {key: summary.get(key, 0) for key in ("pass", "fail", "warn", "error", "skip")},
        "results": kept,
    }
    if len(kept) < len(every):
        report["configuration"] = {"limits": {"maxResults": max_results}}
    return report
