"""``render``: policies and workloads in, the objects the operator would write out.

Pure and deterministic: the same policies and workloads, in any order, give equal results and
byte-identical serialisations.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, get_args

from curfew.api.config import PurgeConfig, UnifiedConfig, WorkloadId
from curfew.api.errors import InvalidPolicy, InvalidWorkload
from curfew.api.policy import SessionPolicy
from curfew.render.objects import (
    RenderSettings,
    build_config_map,
    build_cron_job,
    build_purge_config_map,
)
from curfew.render.resolve import build_purge_config, build_unified_config
from curfew.render.selectors import selects

WORKLOAD_KINDS: Final[tuple[str, ...]] = get_args(WorkloadId.model_fields["kind"].annotation)
"""The kinds whose pod templates policies select."""

DEFAULT_SETTINGS: Final = RenderSettings()


def workload_id(obj: Mapping[str, Any]) -> WorkloadId:
    """The identity of a Deployment, StatefulSet or DaemonSet object."""
    kind = obj.get("kind")
    if kind not in WORKLOAD_KINDS:
        raise InvalidWorkload(f"kind: {kind!r} is not one of {', '.join(WORKLOAD_KINDS)}")
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping) or not isinstance(metadata.get("name"), str):
        raise InvalidWorkload("metadata.name: required")
    namespace = metadata.get("namespace") or "default"
    return WorkloadId(kind=kind, namespace=str(namespace), name=metadata["name"])


def pod_template_labels(obj: Mapping[str, Any]) -> dict[str, str]:
    """``spec.template.metadata.labels`` of a workload (empty when absent)."""
    labels = (((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels")
    if labels is None:
        return {}
    if not isinstance(labels, Mapping):
        raise InvalidWorkload("spec.template.metadata.labels: expected a mapping")
    return {str(k): str(v) for k, v in labels.items()}


def _sort_key(obj: Mapping[str, Any]) -> tuple[int, str, str]:
    order = 0 if obj["kind"] == "ConfigMap" else 1
    return (order, obj["metadata"]["namespace"], obj["metadata"]["name"])


@dataclass(frozen=True)
class Rendered:
    """Everything render decided, each collection in a deterministic order."""

    configs: dict[WorkloadId, UnifiedConfig]
    """The effective config of every selected workload."""
    config_maps: list[dict[str, Any]]
    """One ConfigMap (``policy.json``) per selected workload."""
    purge_config_maps: list[dict[str, Any]]
    """One ConfigMap (``purge.json``) per policy."""
    cron_jobs: list[dict[str, Any]]
    """One purge CronJob per policy."""
    selections: dict[str, tuple[WorkloadId, ...]]
    """Policy key ``ns/name`` -> the workloads it selects (every policy has an entry)."""
    overlaps: dict[str, tuple[str, ...]]
    """Policy key -> the other policies sharing at least one workload (every policy has one)."""
    purge_configs: dict[str, PurgeConfig]
    """Policy key -> its ``purge.json``."""

    @property
    def objects(self) -> list[dict[str, Any]]:
        """Every object, ConfigMaps first, then CronJobs, each by namespace and name."""
        return sorted([*self.config_maps, *self.purge_config_maps, *self.cron_jobs],
                      key=_sort_key)


def _workload_order(w: WorkloadId) -> tuple[str, str, str]:
    return (w.namespace, w.kind, w.name)


def render(
    policies: Iterable[SessionPolicy],
    workloads: Iterable[Mapping[str, Any]],
    *,
    settings: RenderSettings = DEFAULT_SETTINGS,
) -> Rendered:
    """The objects the operator would write for ``policies`` over ``workloads``.

    A policy selects the workloads of its own namespace whose pod-template labels match its
    selector. Raises :class:`InvalidPolicy` on two policies with one key and
    :class:`InvalidWorkload` on an object that is not a workload or is given twice.
    """
    by_key: dict[str, SessionPolicy] = {}
    for policy in policies:
        if policy.key in by_key:
            raise InvalidPolicy(f"policy {policy.key} is given twice")
        by_key[policy.key] = policy
    ordered = [by_key[k] for k in sorted(by_key)]

    labels: dict[WorkloadId, dict[str, str]] = {}
    uids: dict[WorkloadId, str | None] = {}
    for obj in workloads:
        wid = workload_id(obj)
        if wid in labels:
            raise InvalidWorkload(f"workload {wid} is given twice")
        labels[wid] = pod_template_labels(obj)
        uid = (obj.get("metadata") or {}).get("uid")
        uids[wid] = str(uid) if uid else None
    ordered_workloads = sorted(labels, key=_workload_order)

    selections: dict[str, tuple[WorkloadId, ...]] = {}
    selected_by: dict[WorkloadId, list[SessionPolicy]] = {}
    for policy in ordered:
        chosen = tuple(
            w for w in ordered_workloads
            if w.namespace == policy.metadata.namespace
            and selects(policy.spec.selector, labels[w])
        )
        selections[policy.key] = chosen
        for w in chosen:
            selected_by.setdefault(w, []).append(policy)

    configs: dict[WorkloadId, UnifiedConfig] = {}
    # Workloads selected by the same policies get the same config but for the workload itself:
    # built once and copied with the workload (and its own hash), the frozen sections shared.
    # Thousands of workloads under one policy would otherwise hold thousands of equal sections.
    built: dict[tuple[str, ...], UnifiedConfig] = {}
    for w in ordered_workloads:
        if w not in selected_by:
            continue
        sources = selected_by[w]
        first = built.get(key := tuple(p.key for p in sources))
        if first is None:
            configs[w] = built[key] = build_unified_config(w, sources)
        else:
            configs[w] = first.model_copy(update={"workload": w}).sealed()

    overlaps: dict[str, tuple[str, ...]] = {}
    for policy in ordered:
        others = {p.key for w in selections[policy.key] for p in selected_by[w]}
        others.discard(policy.key)
        overlaps[policy.key] = tuple(sorted(others))

    purge_configs = {
        p.key: build_purge_config(p, [(w, configs[w]) for w in selections[p.key]])
        for p in ordered
    }
    config_maps = sorted(
        (build_config_map(config, uids[w]) for w, config in configs.items()), key=_sort_key
    )
    purge_config_maps = sorted(
        (build_purge_config_map(p, purge_configs[p.key]) for p in ordered), key=_sort_key
    )
    cron_jobs = sorted(
        (build_cron_job(p, purge_configs[p.key], settings) for p in ordered), key=_sort_key
    )
    return Rendered(
        configs=configs,
        config_maps=config_maps,
        purge_config_maps=purge_config_maps,
        cron_jobs=cron_jobs,
        selections=selections,
        overlaps=overlaps,
        purge_configs=purge_configs,
    )
