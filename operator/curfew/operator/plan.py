"""Decide the writes of one namespace pass (pure): what the renderer wants against what exists.

Every object the operator writes carries ``curfew.dev/applied-hash``, a hash of the object as
rendered; an existing object is patched only when that hash (or, for a ConfigMap, its data)
differs, so a pass that finds nothing to change writes nothing, whatever the API server defaulted.

Workloads whose current ConfigMap came from a policy that is now invalid are *held*: their
ConfigMaps are neither changed nor deleted, so an invalid edit never loosens or removes what the
policy enforced before (fail closed). The purge objects of an invalid policy are held likewise.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from curfew.api.config import PURGE_FILE, PurgeConfig
from curfew.k8s.client import CONFIG_MAPS, CRON_JOBS, Resource
from curfew.render import (
    ANNOTATION_CONFIG_HASH,
    ANNOTATION_POLICY,
    ANNOTATION_SOURCES,
    LABEL_POLICY,
    LABEL_WORKLOAD_KIND,
    MANAGED_BY,
    MANAGER,
)

ANNOTATION_APPLIED_HASH: Final = "curfew.dev/applied-hash"
"""Hash of the object as rendered, stamped on everything the operator writes."""
ANNOTATION_PURGE_PENDING: Final = "curfew.dev/purge-pending"
"""On a purge ConfigMap: its limits were tightened and the purge Job that follows at once has not
been started yet. Written in the same patch as the tightened config and removed once the Job
exists, so a Job creation that fails is retried by the next pass instead of lost. Its value is
the hash of the tightened config."""

Role = Literal["config", "purge-config", "cron-job", "report"]
Verb = Literal["create", "patch", "delete"]


@dataclass(frozen=True)
class Action:
    """One write: create a whole object, merge-patch it, or delete it."""

    verb: Verb
    role: Role
    resource: Resource
    namespace: str
    name: str
    body: dict[str, Any] | None = None
    policies: tuple[str, ...] = ()
    """Keys of the policies this write is done for (they get the Event)."""
    workload: str = ""
    """``Kind/name`` of the workload, for per-workload ConfigMaps."""


@dataclass
class PassPlan:
    """The writes of one pass, and what was held back."""

    actions: list[Action] = field(default_factory=list)
    held_workloads: set[str] = field(default_factory=set)
    tightened: dict[str, str] = field(default_factory=dict)
    """Policies whose purge limits shrank (now, or in a pass whose Job was not started), with
    their purge ConfigMap's name: a purge Job is started for each at once."""


def build_applied_hash(obj: Mapping[str, Any]) -> str:
    """Hash of the parts of ``obj`` the operator owns (labels, annotations, owners, data, spec)."""
    meta = obj.get("metadata", {})
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                   if k != ANNOTATION_APPLIED_HASH}
    owned = {
        "labels": meta.get("labels") or {},
        "annotations": annotations,
        "ownerReferences": meta.get("ownerReferences") or [],
        "data": obj.get("data"),
        "spec": obj.get("spec"),
    }
    canonical = json.dumps(owned, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def build_stamped(obj: Mapping[str, Any], applied_hash: str | None = None) -> dict[str, Any]:
    """A copy of a rendered object carrying its applied hash (``applied_hash``, when the caller
    computed it already).

    Only the metadata and its annotations are copied; data and spec are shared with ``obj``,
    which nothing changes (a deep copy of every ConfigMap a first pass creates cost some 4 MB
    at 5000 workloads)."""
    meta = dict(obj["metadata"])
    meta["annotations"] = {**(meta.get("annotations") or {}),
                           ANNOTATION_APPLIED_HASH: applied_hash or build_applied_hash(obj)}
    return {**obj, "metadata": meta}


def build_merge_patch(current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """An RFC 7386 merge patch turning ``current``'s owned parts into ``desired``'s.

    Labels and annotations that others added are kept; ``curfew.dev/`` ones that are no longer
    rendered are removed, as are data keys.
    """
    cur_meta = current.get("metadata", {})
    des_meta = desired["metadata"]
    meta: dict[str, Any] = {}
    for part in ("labels", "annotations"):
        cur = cur_meta.get(part) or {}
        des = des_meta.get(part) or {}
        diff: dict[str, Any] = {k: v for k, v in des.items() if cur.get(k) != v}
        diff.update({k: None for k in cur if k not in des and k.startswith("curfew.dev/")})
        if diff:
            meta[part] = diff
    if (cur_meta.get("ownerReferences") or []) != (des_meta.get("ownerReferences") or []):
        meta["ownerReferences"] = des_meta.get("ownerReferences") or None
    patch: dict[str, Any] = {}
    if meta:
        patch["metadata"] = meta
    if "data" in desired:
        cur_data = current.get("data") or {}
        data: dict[str, Any] = {k: v for k, v in desired["data"].items() if cur_data.get(k) != v}
        data.update({k: None for k in cur_data if k not in desired["data"]})
        if data:
            patch["data"] = data
    if "spec" in desired and current.get("spec") != desired["spec"]:
        patch["spec"] = desired["spec"]
    return patch


def is_per_workload(obj: Mapping[str, Any]) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    return labels.get(MANAGED_BY) == MANAGER and LABEL_WORKLOAD_KIND in labels


def is_purge_object(obj: Mapping[str, Any]) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    return labels.get(MANAGED_BY) == MANAGER and LABEL_POLICY in labels


def sources_of(obj: Mapping[str, Any]) -> tuple[str, ...]:
    """Policy keys a per-workload ConfigMap was rendered from (its sources annotation)."""
    raw = (obj.get("metadata", {}).get("annotations") or {}).get(ANNOTATION_SOURCES, "")
    return tuple(s for s in str(raw).split(",") if s)


def policy_of(obj: Mapping[str, Any]) -> str:
    """Policy key a purge ConfigMap or CronJob belongs to (its policy annotation)."""
    return str((obj.get("metadata", {}).get("annotations") or {}).get(ANNOTATION_POLICY, ""))


def workload_of(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata", {})
    annotations = meta.get("annotations") or {}
    labels = meta.get("labels") or {}
    name = annotations.get("curfew.dev/workload-name") or labels.get("curfew.dev/workload-name")
    return f"{labels.get(LABEL_WORKLOAD_KIND, '?')}/{name}"


def _limits(config: PurgeConfig) -> dict[str, tuple[float, float]]:
    limits = {"": (config.timeouts.idle_seconds, config.timeouts.absolute_seconds)}
    for w in config.workloads:
        limits[f"{w.kind}/{w.name}"] = (w.idle_seconds, w.absolute_seconds)
    return limits


def is_tightened(current: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Whether ``desired``'s purge.json shortens any idle or absolute limit ``current`` had."""
    try:
        old = _limits(PurgeConfig.model_validate_json(current["data"][PURGE_FILE]))
        new = _limits(PurgeConfig.model_validate_json(desired["data"][PURGE_FILE]))
    except (KeyError, TypeError, ValueError):
        return False
    return any(key in old and (n[0] < old[key][0] or n[1] < old[key][1])
               for key, n in new.items())


def _purge_pending(current: Mapping[str, Any] | None) -> str | None:
    if current is None:
        return None
    value = (current.get("metadata", {}).get("annotations") or {}).get(ANNOTATION_PURGE_PENDING)
    return value if isinstance(value, str) else None


def _differs(current: Mapping[str, Any], desired: Mapping[str, Any], applied_hash: str) -> bool:
    annotations = current.get("metadata", {}).get("annotations") or {}
    if annotations.get(ANNOTATION_APPLIED_HASH) != applied_hash:
        return True
    return "data" in desired and current.get("data") != desired["data"]


def build_plan(
    namespace: str,
    *,
    config_maps: Iterable[Mapping[str, Any]],
    purge_config_maps: Iterable[Mapping[str, Any]],
    cron_jobs: Iterable[Mapping[str, Any]],
    current_config_maps: Iterable[Mapping[str, Any]],
    current_cron_jobs: Iterable[Mapping[str, Any]],
    invalid_policies: Iterable[str] = (),
) -> PassPlan:
    """The creates, patches and deletes that make ``namespace`` equal to the rendered objects."""
    invalid = set(invalid_policies)
    plan = PassPlan()
    have_cm = {o["metadata"]["name"]: o for o in current_config_maps
               if is_per_workload(o) or is_purge_object(o)}
    have_cj = {o["metadata"]["name"]: o for o in current_cron_jobs if is_purge_object(o)}
    held = {name for name, o in have_cm.items()
            if is_per_workload(o) and invalid.intersection(sources_of(o))}
    plan.held_workloads = {workload_of(have_cm[name]) for name in held}

    def converge(role: Role, resource: Resource, desired: Mapping[str, Any],
                 have: Mapping[str, Any] | None, policies: tuple[str, ...],
                 workload: str = "", pending: str | None = None) -> None:
        name = desired["metadata"]["name"]
        applied = build_applied_hash(desired)
        if have is not None and not _differs(have, desired, applied):
            return  # the common case of a resync: no copy made
        stamped = build_stamped(desired, applied)
        if pending is not None:
            # Not part of the applied hash: it never makes an object differ by itself.
            stamped["metadata"]["annotations"][ANNOTATION_PURGE_PENDING] = pending
        if have is None:
            plan.actions.append(Action("create", role, resource, namespace, name, stamped,
                                       policies, workload))
        else:
            plan.actions.append(Action("patch", role, resource, namespace, name,
                                       build_merge_patch(have, stamped), policies, workload))

    wanted_cm: set[str] = set()
    for cm in config_maps:
        name = cm["metadata"]["name"]
        wanted_cm.add(name)
        if name not in held:
            converge("config", CONFIG_MAPS, cm, have_cm.get(name), sources_of(cm),
                     workload_of(cm))
    for cm in purge_config_maps:
        name = cm["metadata"]["name"]
        wanted_cm.add(name)
        have = have_cm.get(name)
        pending = _purge_pending(have)
        if have is not None and is_tightened(have, cm):
            pending = cm["metadata"].get("annotations", {}).get(ANNOTATION_CONFIG_HASH, "")
        converge("purge-config", CONFIG_MAPS, cm, have, (policy_of(cm),), pending=pending)
        if pending is not None:
            plan.tightened[policy_of(cm)] = name
    wanted_cj: set[str] = set()
    for cj in cron_jobs:
        wanted_cj.add(cj["metadata"]["name"])
        converge("cron-job", CRON_JOBS, cj, have_cj.get(cj["metadata"]["name"]),
                 (policy_of(cj),))

    for name, have in sorted(have_cm.items()):
        if name in wanted_cm or name in held:
            continue
        if is_per_workload(have):
            plan.actions.append(Action("delete", "config", CONFIG_MAPS, namespace, name,
                                       policies=sources_of(have), workload=workload_of(have)))
        elif policy_of(have) not in invalid:
            plan.actions.append(Action("delete", "purge-config", CONFIG_MAPS, namespace, name,
                                       policies=(policy_of(have),)))
    for name, have in sorted(have_cj.items()):
        if name not in wanted_cj and policy_of(have) not in invalid:
            plan.actions.append(Action("delete", "cron-job", CRON_JOBS, namespace, name,
                                       policies=(policy_of(have),)))
    return plan
