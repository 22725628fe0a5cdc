"""The OpenReports ``Report`` of each namespace (opt-in, ``CURFEW_OPERATOR_REPORTS``): built from
the pass's own render (:func:`curfew.report.build_open_report`) and kept equal to it the way
every other object is: created when missing, patched only when it differs (its applied hash or
its results), deleted when no policy is left in the namespace, held while one is invalid or
refused, so an invalid edit never rewrites what was reported.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from curfew.api import SessionPolicy
from curfew.k8s.client import Resource
from curfew.operator.plan import ANNOTATION_APPLIED_HASH, Action, build_merge_patch
from curfew.render import MANAGED_BY, MANAGER, Rendered
from curfew.report import build_namespace_report
from curfew.report.openreports import build_open_report

REPORTS: Final = Resource("openreports.io", "v1alpha1", "reports", "Report")
CONTENT: Final = ("scope", "source", "summary", "results", "configuration")
"""The top-level fields of a Report the operator owns besides its labels and annotations."""


def build_report_hash(obj: Mapping[str, Any]) -> str:
    """Hash of what the operator owns in a Report (its applied-hash annotation aside)."""
    meta = obj.get("metadata", {})
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                   if k != ANNOTATION_APPLIED_HASH}
    owned = {"labels": meta.get("labels") or {}, "annotations": annotations,
             **{k: obj.get(k) for k in CONTENT}}
    canonical = json.dumps(owned, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def build_desired_report(namespace: str, policies: Sequence[SessionPolicy],
                         rendered: Rendered) -> dict[str, Any] | None:
    """The Report ``namespace`` should hold, stamped; None when no policy is in force there."""
    if not policies:
        return None
    report = build_open_report(build_namespace_report(
        namespace, policies, rendered, list(rendered.configs)))
    report["metadata"]["annotations"] = {ANNOTATION_APPLIED_HASH: build_report_hash(report)}
    return report


def _differs(current: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    applied = desired["metadata"]["annotations"][ANNOTATION_APPLIED_HASH]
    have = (current.get("metadata", {}).get("annotations") or {}).get(ANNOTATION_APPLIED_HASH)
    return have != applied or any(current.get(k) != desired.get(k) for k in CONTENT)


def build_report_actions(namespace: str, desired: Mapping[str, Any] | None,
                         current: Iterable[Mapping[str, Any]], *,
                         hold: bool = False) -> list[Action]:
    """The writes that make ``namespace``'s Reports equal to ``desired`` (none when ``hold``)."""
    if hold:
        return []
    have = {o["metadata"]["name"]: o for o in current
            if (o.get("metadata", {}).get("labels") or {}).get(MANAGED_BY) == MANAGER}
    actions = []
    if desired is not None:
        name = desired["metadata"]["name"]
        existing = have.pop(name, None)
        if existing is None:
            actions.append(Action("create", "report", REPORTS, namespace, name, dict(desired)))
        elif _differs(existing, desired):
            patch = build_merge_patch(existing, desired)
            patch.update({k: desired.get(k) for k in CONTENT
                          if existing.get(k) != desired.get(k)})
            actions.append(Action("patch", "report", REPORTS, namespace, name, patch))
    actions += [Action("delete", "report", REPORTS, namespace, name) for name in sorted(have)]
    return actions
