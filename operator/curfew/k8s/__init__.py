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
    RejectedApiError,
    Resource,
    TransientApiError,
    error_class,
    load_connection,
)
from curfew.k8s.events import EVENTS, build_event

__all__ = [
    "CONFIG_MAPS", "CRON_JOBS", "DAEMON_SETS", "DEPLOYMENTS", "EVENTS", "JOBS", "PODS",
    "SESSION_POLICIES", "STATEFUL_SETS", "ApiError", "Connection", "KubeClient",
    "RejectedApiError", "Resource", "TransientApiError", "build_event", "error_class",
    "load_connection",
]
