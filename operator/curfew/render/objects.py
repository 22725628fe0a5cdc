"""The Kubernetes objects render writes: per-workload ConfigMaps, and each policy's purge
ConfigMap and CronJob. Plain dicts, exactly as they would be sent to the API server."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from curfew.api.config import POLICY_FILE, PURGE_FILE, ConfigStore, PurgeConfig, UnifiedConfig
from curfew.api.policy import API_VERSION, KIND, SessionPolicy
from curfew.defaults import IMAGE
from curfew.render.naming import (
    build_config_map_name,
    build_label_value,
    build_purge_names,
)

MANAGED_BY: Final = "app.kubernetes.io/managed-by"
MANAGER: Final = "curfew"
LABEL_WORKLOAD_KIND: Final = "curfew.dev/workload-kind"
LABEL_WORKLOAD_NAME: Final = "curfew.dev/workload-name"
LABEL_POLICY: Final = "curfew.dev/policy"
LABEL_COMPONENT: Final = "app.kubernetes.io/component"
ANNOTATION_SOURCES: Final = "curfew.dev/sources"
ANNOTATION_CONFIG_HASH: Final = "curfew.dev/config-hash"
ANNOTATION_WORKLOAD_NAME: Final = "curfew.dev/workload-name"
ANNOTATION_POLICY: Final = "curfew.dev/policy"

CONFIG_DIR: Final = "/etc/curfew"
TERMINATION_LOG: Final = "/dev/termination-log"
ENV_REDIS_URL: Final = "REDIS_URL"
ENV_SESSION_KEY: Final = "CURFEW_SESSION_KEY"
ENV_APP_SECRET: Final = "CURFEW_APP_SECRET"
WORKLOAD_API_VERSION: Final = "apps/v1"


@dataclass(frozen=True)
class Resources:
    """Requests and limits of the purge container."""

    cpu_request: str = "50m"
    memory_request: str = "64Mi"
    cpu_limit: str = "500m"
    memory_limit: str = "256Mi"

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": {"cpu": self.cpu_request, "memory": self.memory_request},
            "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit},
        }


@dataclass(frozen=True)
class RenderSettings:
    """How render builds the objects that are not dictated by a policy."""

    image: str = IMAGE
    """Container image of the purge job."""
    image_pull_policy: str = "IfNotPresent"
    resources: Resources = field(default_factory=Resources)
    run_as_user: int = 65532
    """Non-root uid of the purge container (the distroless ``nonroot`` user)."""
    backoff_limit: int = 0
    """A failed purge is not retried within its run: the next scheduled run is the retry."""
    active_deadline_seconds: int = 3600
    starting_deadline_seconds: int = 300
    successful_jobs_history_limit: int = 1
    failed_jobs_history_limit: int = 3


def _owner(api_version: str, kind: str, name: str, uid: str, *, controller: bool) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": controller,
        "blockOwnerDeletion": controller,
    }


def _policy_owner(policy: SessionPolicy) -> list[dict[str, Any]]:
    uid = policy.metadata.uid
    if not uid:
        return []
    return [_owner(API_VERSION, KIND, policy.metadata.name, uid, controller=True)]


def build_config_map(config: UnifiedConfig, workload_uid: str | None = None) -> dict[str, Any]:
    """The ConfigMap holding one workload's ``policy.json`` (DESIGN.md's ConfigMap contract).

    It is owned by the workload (not controlled: several policies may feed it), so Kubernetes
    deletes it together with the workload.
    """
    workload = config.workload
    label_name = build_label_value(workload.name)
    annotations = {
        ANNOTATION_SOURCES: ",".join(config.sources),
        ANNOTATION_CONFIG_HASH: config.hash,
    }
    if label_name != workload.name:
        annotations[ANNOTATION_WORKLOAD_NAME] = workload.name
    metadata: dict[str, Any] = {
        "name": build_config_map_name(workload),
        "namespace": workload.namespace,
        "labels": {
            MANAGED_BY: MANAGER,
            LABEL_WORKLOAD_KIND: workload.kind,
            LABEL_WORKLOAD_NAME: label_name,
        },
        "annotations": annotations,
    }
    if workload_uid:
        metadata["ownerReferences"] = [
            _owner(WORKLOAD_API_VERSION, workload.kind, workload.name, workload_uid,
                   controller=False)
        ]
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata,
            "data": {POLICY_FILE: config.to_json()}}


def _purge_labels(policy: SessionPolicy) -> dict[str, str]:
    return {
        MANAGED_BY: MANAGER,
        LABEL_COMPONENT: "purge",
        LABEL_POLICY: build_label_value(policy.metadata.name),
    }


def _purge_metadata(policy: SessionPolicy, name: str, config: PurgeConfig) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": policy.metadata.namespace,
        "labels": _purge_labels(policy),
        "annotations": {ANNOTATION_POLICY: policy.key, ANNOTATION_CONFIG_HASH: config.hash},
    }
    owners = _policy_owner(policy)
    if owners:
        metadata["ownerReferences"] = owners
    return metadata


def build_purge_config_map(policy: SessionPolicy, config: PurgeConfig) -> dict[str, Any]:
    """The ConfigMap holding one policy's ``purge.json``, owned by the policy."""
    name = build_purge_names(policy).config_map
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": _purge_metadata(policy, name, config),
            "data": {PURGE_FILE: config.to_json()}}


def build_cron_job(
    policy: SessionPolicy, config: PurgeConfig, settings: RenderSettings
) -> dict[str, Any]:
    """The policy's purge CronJob: ``curfew purge`` with ``purge.json`` mounted read-only and
    the Redis URL and session key from Secrets, in a restricted, token-less pod."""
    names = build_purge_names(policy)
    labels = _purge_labels(policy)
    container = {
        "name": "purge",
        "image": settings.image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["curfew"],
        "args": ["purge", "--config", f"{CONFIG_DIR}/{PURGE_FILE}"],
        "env": build_store_env(config.store),
        "volumeMounts": [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}],
        "resources": settings.resources.to_dict(),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "File",
    }
    pod_spec = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": settings.run_as_user,
            "runAsGroup": settings.run_as_user,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [{"name": "config", "configMap": {"name": names.config_map}}],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": _purge_metadata(policy, names.cron_job, config),
        "spec": {
            "schedule": policy.spec.purge.schedule,
            "suspend": policy.spec.purge.suspend,
            **({"timeZone": policy.spec.purge.time_zone}
               if policy.spec.purge.time_zone is not None else {}),
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": settings.starting_deadline_seconds,
            "successfulJobsHistoryLimit": settings.successful_jobs_history_limit,
            "failedJobsHistoryLimit": settings.failed_jobs_history_limit,
            "jobTemplate": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "backoffLimit": settings.backoff_limit,
                    "activeDeadlineSeconds": settings.active_deadline_seconds,
                    "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec},
                },
            },
        },
    }


def build_store_env(store: ConfigStore) -> list[dict[str, Any]]:
    """The Redis URL and the session key as env vars from the store's Secret references.

    The purge CronJob and the injected sidecar read them the same way; the values themselves
    never appear in any rendered object.
    """
    return [
        {"name": ENV_REDIS_URL, "valueFrom": {"secretKeyRef": {
            "name": store.redis_secret_ref.name, "key": store.redis_secret_ref.key}}},
        {"name": ENV_SESSION_KEY, "valueFrom": {"secretKeyRef": {
            "name": store.session_key_secret_ref.name,
            "key": store.session_key_secret_ref.key}}},
    ]


def build_app_secret_env(store: ConfigStore) -> list[dict[str, Any]]:
    """The app's cookie secret(s) as an env var from ``store.appSecretRef``, for the sidecar
    alone: only it reads cookies, so the purge job never receives them."""
    ref = store.app_secret_ref
    if ref is None:
        return []
    return [{"name": ENV_APP_SECRET, "valueFrom": {"secretKeyRef": {
        "name": ref.name, "key": ref.key}}}]
