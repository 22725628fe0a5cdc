"""Kubernetes API adapters: a small async client, its kubeconfig reader, resource handles, and
Event building."""

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
    KubeClient,
    RejectedApiError,
    Resource,
    TransientApiError,
    error_class,
)
from curfew.k8s.events import EVENTS, build_event
from curfew.k8s.kubeconfig import Connection, CredentialsError, load_connection

__all__ = [
    "CONFIG_MAPS", "CRON_JOBS", "DAEMON_SETS", "DEPLOYMENTS", "EVENTS", "JOBS", "PODS",
    "SESSION_POLICIES", "STATEFUL_SETS", "ApiError", "Connection", "CredentialsError", "KubeClient",
    "RejectedApiError", "Resource", "TransientApiError", "build_event", "error_class",
    "load_connection",
]
