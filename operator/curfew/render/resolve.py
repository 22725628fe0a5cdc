"""Overlap resolution: the effective config of a workload selected by one or more policies.

Each timeout takes the shortest value among the policies (the most restrictive wins, as
Teleport does for roles); every other field comes from the winning policy: highest
``priority``, then oldest ``creationTimestamp``, then name. ``sources`` lists every
contributing policy, sorted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from curfew.api.config import (
    ConfigActivity,
    ConfigClient,
    ConfigPurge,
    ConfigReauthentication,
    ConfigSecretRef,
    ConfigSession,
    ConfigStore,
    ConfigTimeouts,
    PurgeConfig,
    PurgeWorkload,
    UnifiedConfig,
    WorkloadId,
)
from curfew.api.durations import Duration
from curfew.api.policy import Purge, SecretKeyRef, SessionPolicy, Store, Timeouts

_NEWEST = datetime.max


def _created(policy: SessionPolicy) -> datetime:
    """Creation time; a policy without one (read from a file) counts as the newest."""
    stamp = policy.metadata.creation_timestamp
    if not stamp:
        return _NEWEST
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).replace(tzinfo=None)


def winner_order(policy: SessionPolicy) -> tuple[int, datetime, str, str]:
    """Sort key that puts the winning policy first."""
    return (-policy.spec.priority, _created(policy), policy.metadata.name,
            policy.metadata.namespace)


def _shortest(values: Sequence[Duration | None]) -> Duration | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def build_effective_timeouts(policies: Sequence[SessionPolicy]) -> Timeouts:
    """Each timeout the shortest among ``policies``, kept mutually consistent.

    Mixing policies can break the single-policy rules: a renewal longer than the effective
    absolute would never happen (so it is dropped), and a warning lead that is not shorter than
    the effective idle would warn at once (so it is cut to half the idle timeout).
    """
    all_timeouts = [p.spec.timeouts for p in policies]
    idle = min(t.idle for t in all_timeouts)
    absolute = min(t.absolute for t in all_timeouts)
    renewal = _shortest([t.renewal for t in all_timeouts])
    warning = _shortest([t.warning_lead for t in all_timeouts])
    if renewal is not None and renewal > absolute:
        renewal = None
    if warning is not None and warning >= idle:
        warning = Duration(idle.nanoseconds // 2)
    return Timeouts(idle=idle, absolute=absolute, renewal=renewal, warning_lead=warning)


def _ref(ref: SecretKeyRef) -> ConfigSecretRef:
    return ConfigSecretRef(name=ref.name, key=ref.key)


def build_config_store(store: Store) -> ConfigStore:
    """The store section of ``policy.json`` / ``purge.json``: formats and Secret references."""
    return ConfigStore(
        format=store.format,
        key_prefix=store.effective_key_prefix,
        redis_secret_ref=_ref(store.redis_secret_ref),
        session_key_secret_ref=_ref(store.effective_session_key_ref),
        id_pattern=store.effective_id_pattern,
        app_secret_ref=_ref(store.app_secret_ref) if store.app_secret_ref else None,
        app_ttl_seconds=store.effective_app_ttl_seconds,
    )


def build_config_timeouts(timeouts: Timeouts) -> ConfigTimeouts:
    return ConfigTimeouts(
        idle_seconds=timeouts.idle.seconds,
        absolute_seconds=timeouts.absolute.seconds,
        renewal_seconds=timeouts.renewal.seconds if timeouts.renewal else None,
        warning_lead_seconds=timeouts.warning_lead.seconds if timeouts.warning_lead else None,
    )


def build_unified_config(workload: WorkloadId, policies: Sequence[SessionPolicy]) -> UnifiedConfig:
    """The sealed ``policy.json`` of ``workload`` from every policy that selects it."""
    if not policies:
        raise ValueError(f"no policy selects {workload}")
    winner = min(policies, key=winner_order)
    spec = winner.spec
    return UnifiedConfig(
        workload=workload,
        sources=tuple(sorted({p.key for p in policies})),
        enforcement=spec.enforcement,
        failure_policy=spec.failure_policy,
        timeouts=build_config_timeouts(build_effective_timeouts(policies)),
        session=ConfigSession(
            cookie_name=spec.session.cookie_name,
            header=spec.session.header,
            header_prefix=spec.session.header_prefix,
            id_encoding=spec.effective_id_encoding,
        ),
        activity=ConfigActivity(
            exclude_paths=tuple(spec.activity.exclude_paths),
            exclude_methods=tuple(spec.activity.exclude_methods),
        ),
        reauthentication=ConfigReauthentication(
            login_url=spec.reauthentication.login_url,
            return_to_parameter=spec.reauthentication.return_to_parameter,
        ),
        store=build_config_store(spec.store),
        purge=build_config_purge(spec.purge),
        client=ConfigClient(enabled=spec.client.enabled),
    ).sealed()


def build_config_purge(purge: Purge) -> ConfigPurge:
    """The purge settings of the config documents; ``appWalk`` only when not the default."""
    return ConfigPurge(max_purge_fraction=purge.max_purge_percent / 100,
                       app_walk=None if purge.app_walk == "Scan" else purge.app_walk)


def build_purge_config(
    policy: SessionPolicy, workloads: Sequence[tuple[WorkloadId, UnifiedConfig]]
) -> PurgeConfig:
    """The sealed ``purge.json`` of ``policy``: its own store and timeouts, and the effective
    limits of every workload it selects (tightened by any overlapping policy)."""
    spec = policy.spec
    return PurgeConfig(
        policy=policy.metadata.name,
        namespace=policy.metadata.namespace,
        enforcement=spec.enforcement,
        store=build_config_store(spec.store),
        timeouts=build_config_timeouts(spec.timeouts),
        purge=build_config_purge(spec.purge),
        workloads=tuple(
            PurgeWorkload(
                kind=w.kind,
                name=w.name,
                idle_seconds=config.timeouts.idle_seconds,
                absolute_seconds=config.timeouts.absolute_seconds,
            )
            for w, config in workloads
        ),
    ).sealed()
