"""The sidecar's Prometheus metrics, in a registry of their own (one per sidecar instance)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

CONTENT_TYPE = CONTENT_TYPE_LATEST

# The sidecar's own cost is sub-millisecond when healthy; the upper buckets catch store stalls.
_LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                    0.25, 0.5, 1.0)


class SidecarMetrics:
    """Requests by decision, added latency, store errors, and the config in force."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "curfew_sidecar_requests",
            "Requests judged, by decision (none: no session; new, allowed, idle, absolute: the "
            "store's verdict; unavailable: the store could not be asked) and action taken.",
            ["decision", "action"], registry=self.registry,
        )
        self.added_latency = Histogram(
            "curfew_sidecar_added_latency_seconds",
            "Time the sidecar spends on a request before forwarding or answering it.",
            buckets=_LATENCY_BUCKETS, registry=self.registry,
        )
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
        # Children created once: labels() costs a dict lookup and a lock per call.
        self._children: dict[tuple[str, str], Counter] = {}

    def count(self, decision: str, action: str) -> None:
        child = self._children.get((decision, action))
        if child is None:
            child = self._children[(decision, action)] = self.requests.labels(decision, action)
        child.inc()

    def set_config(self, config_hash: str, workload: str, sources: str, valid: bool) -> None:
        self.config_info.info({"hash": config_hash, "workload": workload, "sources": sources})
        self.config_valid.set(1 if valid else 0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
