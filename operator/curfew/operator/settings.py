"""The operator's settings: one typed object, read from ``CURFEW_OPERATOR_*`` environment variables
and overridden by ``curfew operator`` flags, and the injection webhook's, from
``CURFEW_INJECTION_*``."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from curfew.defaults import (
    IMAGE,
    PULL_POLICY,
    RUN_AS_USER,
    SIDECAR_OPS_PORT,
    build_sidecar_resources,
)
from curfew.render.injection import InjectionSettings


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
    reports: bool = Field(
        default=False,
        description="Keep an OpenReports Report (openreports.io/v1alpha1, its CRD installed "
        "separately) in each namespace with a policy, listing each selected workload's "
        "compliance results.",
    )
    scan_cluster: bool = Field(
        default=True,
        description="Follow CRDs and namespaces appearing while running (kopf's cluster "
        "scanning); off, the API is discovered once at startup and namespaces are taken "
        "literally.",
    )


class InjectionWebhookSettings(BaseSettings):
    """The injection webhook's part of ``curfew operator``, from ``CURFEW_INJECTION_*``."""

    model_config = SettingsConfigDict(env_prefix="CURFEW_INJECTION_", extra="forbid")

    enabled: bool = Field(default=False, description="Serve the sidecar-injection webhook.")
    host: str = Field(default="0.0.0.0", description="Address the webhook server listens on.")
    port: int = Field(default=9443, ge=1, le=65535,
                      description="HTTPS port of the webhook server (the Service targets it).")
    service: str = Field(
        default="curfew-webhook",
        description="Name of the webhook's Service: the serving certificate is made for its "
        "DNS names.")
    namespace: str = Field(
        default="curfew",
        description="The operator's namespace: where the Service and the TLS Secret live.")
    extra_names: list[str] = Field(
        default_factory=list,
        description="More DNS names or IP addresses for the self-signed serving certificate.")
    tls_dir: str = Field(
        default="",
        description="Directory holding tls.crt and tls.key (and ca.crt) issued by cert-manager; "
        "files are re-read when they change. Empty: the operator makes its own CA.")
    tls_secret: str = Field(
        default="",
        description="Secret (in `namespace`) where the self-made CA and serving certificate are "
        "kept, so every replica and restart serves the same CA. Empty: kept in memory only.")
    webhook_configuration: str = Field(
        default="",
        description="MutatingWebhookConfiguration whose caBundle is set to the self-made CA at "
        "startup. Empty: none is patched (cert-manager's CA injector does it, or tests).")
    policy_cache_seconds: float = Field(
        default=2.0, ge=0,
        description="How long the policies of a namespace, once listed, are reused: a rollout "
        "of many pods costs one list. A policy created this recently may not be seen yet.")
    api_timeout_seconds: float = Field(
        default=2.0, gt=0,
        description="Timeout of the policy list; keep it under the webhook's timeoutSeconds.")
    image: str = Field(default=IMAGE, description="Image of the injected sidecar.")
    image_pull_policy: str = Field(
        default=PULL_POLICY, pattern="^(Always|IfNotPresent|Never)$",
        description="imagePullPolicy of the injected sidecar.")
    ops_port: int = Field(default=SIDECAR_OPS_PORT, ge=1, le=65535,
                          description="Port of the sidecar's /healthz, /readyz and /metrics.")
    run_as_user: int = Field(default=RUN_AS_USER, ge=1,
                             description="Non-root uid (and gid) of the injected sidecar.")
    resources: dict[str, dict[str, str | int | float]] = Field(
        default_factory=build_sidecar_resources,
        description="Resources of the injected sidecar (JSON: requests and limits).")

    def sidecar(self) -> InjectionSettings:
        return InjectionSettings(image=self.image, image_pull_policy=self.image_pull_policy,
                                 ops_port=self.ops_port, run_as_user=self.run_as_user,
                                 resources=self.resources)
