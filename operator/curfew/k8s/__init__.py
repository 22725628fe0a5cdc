"""Kubernetes API adapters: a small async client, resource handles, and Event building."""

from curfew.k8s.client import (
    CONFIG_MAPS,
    CRON_JOBS,
    DAEMON_SETS,
    DEPLOYMENTS,
    JOBS,
    PODS,
    SESSION_POLICIES,
    STATEFUL_SETS,
    ApiError,
    Connection,
    KubeClient,
    Resource,
    load_connection,
)
from curfew.k8s.events import EVENTS, build_event

__all__ = [
    "CONFIG_MAPS", "CRON_JOBS", "DAEMON_SETS", "DEPLOYMENTS", "EVENTS", "JOBS", "PODS",
    "SESSION_POLICIES", "STATEFUL_SETS", "ApiError", "Connection", "KubeClient", "Resource",
    "build_event", "load_connection",
]
