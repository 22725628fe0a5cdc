"""Prometheus metrics of the operator, in a registry of its own, served on their own port.

The per-policy gauges are set from the status each pass builds (level-based: an operator restart
or a resync sets them again), the purge counters once per purge result the operator records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import prometheus_client as prom
from aiohttp import web

PURGE_OUTCOMES = ("ok", "aborted", "failed")
PURGE_REASONS = ("idle", "absolute", "tightened")


@dataclass
class Metrics:
    """The operator's counters, histogram and gauges (one set per operator run)."""

    registry: prom.CollectorRegistry = field(default_factory=prom.CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.reconciles = prom.Counter(
            "curfew_operator_reconciles_total", "Namespace passes, by result (ok, error).",
            ["result"], registry=r)
        self.errors = prom.Counter(
            "curfew_operator_errors_total",
            "Failures, by kind (api: a pass failed on an API error and is retried; rejected: the "
            "API server refused a write for a policy's spec; invalid: a policy spec is invalid).",
            ["kind"], registry=r)
        self.duration = prom.Histogram(
            "curfew_operator_reconcile_duration_seconds", "Duration of one namespace pass.",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60), registry=r)
        self.writes = prom.Counter(
            "curfew_operator_writes_total", "Objects written, by verb and kind.",
            ["verb", "kind"], registry=r)
        self.selected = prom.Gauge(
            "curfew_operator_selected_workloads", "Workloads each policy selects.",
            ["namespace", "policy"], registry=r)
        self.managed = prom.Gauge(
            "curfew_operator_managed_configmaps",
            "Per-workload ConfigMaps the operator manages, by namespace.",
            ["namespace"], registry=r)
        self.policy_ready = prom.Gauge(
            "curfew_operator_policy_ready",
            "1 when a policy's Ready condition is True, 0 otherwise.",
            ["namespace", "policy"], registry=r)
        self.queue_depth = prom.Gauge(
            "curfew_operator_queue_depth",
            "Namespaces waiting for a pass: requested and not started, or a retry scheduled.",
            registry=r)
        self.purge_runs = prom.Counter(
            "curfew_operator_purge_runs_total",
            "Purge runs recorded on a policy's status, by outcome (ok; aborted: stopped by the "
            "maxPurgeFraction cap; failed).",
            ["namespace", "policy", "outcome"], registry=r)
        self.purge_removed = prom.Counter(
            "curfew_operator_purge_removed_sessions_total",
            "Sessions the recorded purge runs removed, by reason (idle, absolute, tightened).",
            ["namespace", "policy", "reason"], registry=r)
        self.purge_failures = prom.Gauge(
            "curfew_operator_purge_consecutive_failures",
            "Purge runs since the last successful one (status.purgeFailures).",
            ["namespace", "policy"], registry=r)
        self.purge_last_success = prom.Gauge(
            "curfew_operator_purge_last_success_timestamp_seconds",
            "When the last successful purge run finished (Unix time).",
            ["namespace", "policy"], registry=r)
        self.purge_duration = prom.Gauge(
            "curfew_operator_purge_last_duration_seconds",
            "Duration of the last purge run.", ["namespace", "policy"], registry=r)
        self.purge_scanned = prom.Gauge(
            "curfew_operator_purge_last_scanned_sessions",
            "Sessions the last purge run judged: the policy's sessions in the store then.",
            ["namespace", "policy"], registry=r)
        self.admissions = prom.Counter(
            "curfew_operator_webhook_admissions_total",
            "Pod admissions the injection webhook answered, by outcome (injected, skipped; "
            "refused: the pod conflicts with the sidecar; unavailable: the policies could not "
            "be listed; malformed: an unreadable review).",
            ["outcome"], registry=r)
        self._policies: dict[str, set[str]] = {}

    def observe_policy(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """Set the policy's gauges from the status a pass built for it."""
        known = self._policies.setdefault(namespace, set())
        if name not in known:
            # Counters start at 0, so a policy's first aborted run is an increase, not a new
            # series that increase() and rate() cannot see.
            for outcome in PURGE_OUTCOMES:
                self.purge_runs.labels(namespace, name, outcome)
            for reason in PURGE_REASONS:
                self.purge_removed.labels(namespace, name, reason)
            known.add(name)
        ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in status.get("conditions") or [])
        self.policy_ready.labels(namespace, name).set(1 if ready else 0)
        self.purge_failures.labels(namespace, name).set(int(status.get("purgeFailures") or 0))
        last = status.get("lastPurge") or {}
        if not last:
            return
        self.purge_duration.labels(namespace, name).set(float(last.get("durationSeconds") or 0))
        self.purge_scanned.labels(namespace, name).set(int(last.get("scanned") or 0))
        finished = _unix_time(last.get("time"))
        if last.get("outcome") == "ok" and finished is not None:
            self.purge_last_success.labels(namespace, name).set(finished)

    def keep_policies(self, namespace: str, names: Iterable[str]) -> None:
        """Drop the series of the policies of ``namespace`` not in ``names`` (deleted ones)."""
        kept = set(names)
        for name in self._policies.get(namespace, set()) - kept:
            for gauge in (self.selected, self.policy_ready, self.purge_failures,
                          self.purge_last_success, self.purge_duration, self.purge_scanned):
                gauge.remove(namespace, name)
            for outcome in PURGE_OUTCOMES:
                self.purge_runs.remove(namespace, name, outcome)
            for reason in PURGE_REASONS:
                self.purge_removed.remove(namespace, name, reason)
        self._policies[namespace] = kept & self._policies.get(namespace, set())

    def count_purge(self, namespace: str, name: str, outcome: str,
                    removed: Mapping[str, int]) -> None:
        """Count one purge run recorded on a policy's status."""
        self.purge_runs.labels(namespace, name, outcome).inc()
        for reason, count in removed.items():
            self.purge_removed.labels(namespace, name, reason).inc(count)

    def render(self) -> bytes:
        return bytes(prom.generate_latest(self.registry))


async def start_metrics_server(metrics: Metrics, host: str, port: int) -> web.AppRunner:
    """Serve ``GET /metrics``; the caller cleans the returned runner up."""

    async def handle(_: web.Request) -> web.Response:
        return web.Response(body=metrics.render(),
                            headers={"Content-Type": prom.CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def _unix_time(value: Any) -> float | None:
    """An RFC 3339 status time as Unix seconds; None when absent or unreadable."""
    try:
        return datetime.fromisoformat(str(value)).timestamp() if value else None
    except ValueError:
        return None
