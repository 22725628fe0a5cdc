"""Builders of sample SessionPolicies and workload objects for the render tests."""

from __future__ import annotations

from typing import Any

from curfew.api import SessionPolicy, parse_policy


def policy(
    name: str = "storefront",
    namespace: str = "shop",
    *,
    selector: dict[str, Any] | None = None,
    idle: str = "15m",
    absolute: str = "8h",
    uid: str | None = None,
    created: str | None = None,
    **spec: Any,
) -> SessionPolicy:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if uid:
        metadata["uid"] = uid
    if created:
        metadata["creationTimestamp"] = created
    timeouts = {"idle": idle, "absolute": absolute, **spec.pop("timeouts", {})}
    return parse_policy({
        "apiVersion": "curfew.dev/v1alpha1",
        "kind": "SessionPolicy",
        "metadata": metadata,
        "spec": {
            "selector": {"matchLabels": {"app": "web"}} if selector is None else selector,
            "timeouts": timeouts,
            "store": {"redisSecretRef": {"name": "sessions-redis"}},
            **spec,
        },
    })


def workload(
    name: str = "web",
    namespace: str = "shop",
    kind: str = "Deployment",
    labels: dict[str, str] | None = None,
    uid: str | None = None,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if uid:
        metadata["uid"] = uid
    template_labels = {"app": "web"} if labels is None else labels
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": metadata,
        "spec": {"template": {"metadata": {"labels": template_labels}}},
    }
