"""The operator's settings: one typed object, read from ``CURFEW_OPERATOR_*`` environment variables
and overridden by ``curfew operator`` flags."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class OperatorSettings(BaseSettings):
    """Everything ``curfew operator`` can be told; every field has a description."""

    model_config = SettingsConfigDict(env_prefix="CURFEW_OPERATOR_", extra="forbid")

    namespaces: list[str] = Field(
        default_factory=list,
        description="Namespaces to watch; empty watches every namespace (cluster-wide).",
    )
    standalone: bool = Field(
        default=False,
        description="Run without kopf peering (one replica). With peering, only the replica of "
        "highest priority handles objects; the others wait.",
    )
    peering_name: str = Field(
        default="curfew", description="Name of the kopf peering object the replicas share."
    )
    priority: int = Field(default=0, description="Peering priority of this replica.")
    kubeconfig: str | None = Field(
        default=None,
        description="Kubeconfig file to use outside a cluster (default: $KUBECONFIG, then "
        "~/.kube/config); inside a cluster the service account is used.",
    )
    purge_image: str | None = Field(
        default=None,
        description="Container image of the purge CronJobs (default: the renderer's, the "
        "image of this Curfew release).",
    )
    resync_seconds: float = Field(
        default=300.0, gt=0,
        description="Every policy is re-reconciled this often, repairing drift (a deleted or "
        "edited ConfigMap); a resync that finds nothing to change writes nothing.",
    )
    batch_delay_seconds: float = Field(
        default=0.5, ge=0,
        description="How long a namespace's pass waits to gather more changes (a rollout that "
        "relabels many workloads becomes one pass, not one per workload).",
    )
    retry_min_seconds: float = Field(
        default=1.0, gt=0, description="First delay before a failed pass is retried."
    )
    retry_max_seconds: float = Field(
        default=60.0, gt=0, description="Longest delay between retries of a failing pass."
    )
    status_workloads_limit: int = Field(
        default=100, ge=0,
        description="Most workloads listed in a policy's status.workloads (selectedWorkloads "
        "counts them all): keeps the object far below the API server's size limit.",
    )
    api_concurrency: int = Field(
        default=16, ge=1, description="Most API requests the operator's writer sends at once."
    )
    api_timeout_seconds: float = Field(
        default=30.0, gt=0, description="Timeout of one API request of the writer."
    )
    purge_failure_threshold: int = Field(
        default=3, ge=1,
        description="Consecutive failed purge runs after which PurgeHealthy turns False "
        "(an aborted run turns it False at once).",
    )
    liveness_host: str = Field(default="0.0.0.0", description="Address of the liveness endpoint.")
    liveness_port: int = Field(
        default=8080, ge=0, le=65535,
        description="Port of the liveness endpoint (GET /healthz); 0 disables it.",
    )
    metrics_host: str = Field(default="0.0.0.0", description="Address of the metrics endpoint.")
    metrics_port: int = Field(
        default=9090, ge=0, le=65535,
        description="Port of the Prometheus metrics endpoint (GET /metrics); 0 disables it.",
    )
    log_format: str = Field(
        default="json", pattern="^(json|text)$",
        description="Log line format: json (one object per line) or text.",
    )
    log_level: str = Field(
        default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$", description="Lowest level logged."
    )
    watch_timeout_seconds: float | None = Field(
        default=600.0,
        description="Server-side timeout of watch requests; watches are re-established after it.",
    )
    scan_cluster: bool = Field(
        default=True,
        description="Follow CRDs and namespaces appearing while running (kopf's cluster "
        "scanning); off, the API is discovered once at startup and namespaces are taken "
        "literally.",
    )
