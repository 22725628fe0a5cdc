"""Kubernetes Events (``core/v1``) about an object, as ``kubectl describe`` shows them."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from curfew.k8s.client import Resource

EVENTS: Final = Resource("", "v1", "events", "Event")
COMPONENT: Final = "curfew-operator"


def build_event(obj: Mapping[str, Any], type_: str, reason: str, message: str, *,
                now: datetime | None = None) -> dict[str, Any]:
    """A ``core/v1`` Event about ``obj`` (named by the API server from ``generateName``)."""
    meta = obj.get("metadata", {})
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta.get('name', 'curfew')}.",
                     "namespace": meta.get("namespace") or "default"},
        "involvedObject": {
            "apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"),
            "name": meta.get("name"), "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
        },
        "type": type_,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": socket.gethostname()[:128],
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }
