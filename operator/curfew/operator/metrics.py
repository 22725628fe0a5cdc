"""Prometheus metrics of the operator, in a registry of its own, served on their own port."""

from __future__ import annotations

from dataclasses import dataclass, field

import prometheus_client as prom
from aiohttp import web


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
