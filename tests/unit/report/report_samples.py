"""Policies and workloads for the report's tests, as short as the case needs."""

from __future__ import annotations

from typing import Any

from curfew.api import SessionPolicy, parse_policy


def policy(name: str, *, selector: dict[str, str] | None = None, priority: int = 0,
           enforcement: str = "Enforce", profiles: tuple[str, ...] = (),
           namespace: str = "shop", **timeouts: str) -> SessionPolicy:
    return parse_policy({
        "apiVersion": "curfew.dev/v1alpha1", "kind": "SessionPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"matchLabels": selector or {"app": "web"}}, "priority": priority,
                 "enforcement": enforcement,
                 "timeouts": {"idle": "15m", "absolute": "8h", **timeouts},
                 "store": {"redisSecretRef": {"name": "redis"}},
                 "compliance": {"profiles": list(profiles)}},
    })


def workload(name: str = "web", labels: dict[str, str] | None = None,
             namespace: str = "shop", kind: str = "Deployment") -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": kind,
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"template": {"metadata": {"labels": labels or {"app": name}}}}}
