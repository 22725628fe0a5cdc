"""Unified config documents for the sidecar's unit tests."""

from __future__ import annotations

from typing import Any


def policy_doc(**sections: Any) -> dict[str, Any]:
    """A valid ``policy.json`` document; keyword arguments replace whole top-level sections."""
    doc: dict[str, Any] = {
        "schemaVersion": 1,
        "workload": {"kind": "Deployment", "namespace": "shop", "name": "web"},
        "sources": ["shop/storefront"],
        "enforcement": "Enforce",
        "timeouts": {"idleSeconds": 900, "absoluteSeconds": 28800, "warningLeadSeconds": 120},
        "session": {"cookieName": "session"},
        "activity": {"excludePaths": ["/healthz", "/api/notifications/*"],
                     "excludeMethods": ["OPTIONS", "HEAD"]},
        "reauthentication": {"loginURL": "https://login.example.com/",
                             "returnToParameter": "return_to"},
        "store": {"format": "curfew", "keyPrefix": "curfew:",
                  "redisSecretRef": {"name": "sessions-redis", "key": "url"},
                  "sessionKeySecretRef": {"name": "sessions-redis", "key": "session-key"}},
    }
    doc.update(sections)
    return doc
