"""The sidecar's Prometheus metrics, in a registry of their own (one per sidecar instance).

The two metrics every request touches (the decision counter and the added-latency histogram)
are plain counts read by a collector at scrape time: prometheus_client's own take a lock per
update, which the sidecar's single event-loop thread does not need, and which costs a
noticeable share of a proxied request. They are exposed exactly as the library's would be.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import cast

from prometheus_client import CollectorRegistry, Counter, Gauge, Info
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

_bound_text = cast(Callable[[float], str], floatToGoString)
"""A bucket bound as prometheus_client writes it (``0.00025``, ``1.0``, ``+Inf``)."""

CONTENT_TYPE = CONTENT_TYPE_LATEST

# The sidecar's own cost is sub-millisecond when healthy; the upper buckets catch store stalls.
_LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                    0.25, 0.5, 1.0)


class SidecarMetrics:
    """Requests by decision, added latency, store errors, and the config in force."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = _DecisionCounter(
            "curfew_sidecar_requests",
            "Requests judged, by decision (none: no session; invalid: a value outside the id "
            "grammar; unknown: a session the app does not know; new, allowed, idle, absolute: "
            "the store's verdict; issued: a session the app issued, registered; unavailable: "
            "the store could not be asked; ambiguous: a session id readable two ways) and "
            "action taken.",
        )
        self.registry.register(self.requests)
        self.added_latency = _LatencyHistogram(
            "curfew_sidecar_added_latency_seconds",
            "Time the sidecar spends on a request before forwarding or answering it.",
            _LATENCY_BUCKETS,
        )
        self.registry.register(self.added_latency)
        self.redis_errors = Counter(
            "curfew_sidecar_redis_errors",
            "Store calls that failed (connection refused, timeout, ...).",
            registry=self.registry,
        )
        self.config_info = Info(
            "curfew_sidecar_config", "The unified config in force.", registry=self.registry
        )
        self.config_valid = Gauge(
            "curfew_sidecar_config_valid",
            "1 when the mounted config is the one in force; 0 when a newer one was rejected "
            "and the last good one is kept.",
            registry=self.registry,
        )
        self.config_reloads = Counter(
            "curfew_sidecar_config_reloads",
            "Config reloads, by result (ok or rejected).",
            ["result"], registry=self.registry,
        )

    def count(self, decision: str, action: str) -> None:
        counts = self.requests.counts
        key = (decision, action)
        counts[key] = counts.get(key, 0) + 1

    def set_config(self, config_hash: str, workload: str, sources: str, valid: bool) -> None:
        self.config_info.info({"hash": config_hash, "workload": workload, "sources": sources})
        self.config_valid.set(1 if valid else 0)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _DecisionCounter(Collector):
    """Requests by (decision, action): a counter with those two labels."""

    def __init__(self, name: str, documentation: str) -> None:
        self._name = name
        self._documentation = documentation
        self.counts: dict[tuple[str, str], int] = {}

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self._name, self._documentation,
                                     labels=("decision", "action"))
        for labels, count in sorted(self.counts.items()):
            family.add_metric(labels, count)
        yield family


class _LatencyHistogram(Collector):
    """A histogram without labels; ``observe`` as prometheus_client's (``le`` inclusive)."""

    def __init__(self, name: str, documentation: str, bounds: tuple[float, ...]) -> None:
        self._name = name
        self._documentation = documentation
        self._bounds = bounds
        self._counts = [0] * (len(bounds) + 1)
        self._sum = 0.0

    def observe(self, amount: float) -> None:
        self._counts[bisect_left(self._bounds, amount)] += 1
        self._sum += amount

    def collect(self) -> Iterator[Metric]:
        buckets = []
        total = 0
        for bound, count in zip((*self._bounds, float("inf")), self._counts, strict=True):
            total += count
            buckets.append((_bound_text(bound), total))
        yield HistogramMetricFamily(self._name, self._documentation, buckets=buckets,
                                    sum_value=self._sum)
