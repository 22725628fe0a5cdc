"""Kubernetes API calls of the injection webhook: keep its TLS material in a Secret shared by the
operator's replicas, and patch its CA into the MutatingWebhookConfiguration's caBundle.

Made through the operator's one :class:`~curfew.k8s.client.KubeClient`, so these calls are
classified and bounded like every other request of the process.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from curfew.k8s.client import (
    MUTATING_WEBHOOK_CONFIGURATIONS,
    SECRETS,
    ApiError,
    KubeClient,
)

TLS_KEYS = ("ca.crt", "ca.key", "tls.crt", "tls.key")


def _decoded(data: Mapping[str, Any] | None) -> dict[str, bytes] | None:
    if not data or any(k not in data for k in TLS_KEYS):
        return None
    return {k: base64.b64decode(data[k]) for k in TLS_KEYS}


async def read_tls_secret(client: KubeClient, namespace: str,
                          name: str) -> dict[str, bytes] | None:
    """The PEM files kept in the Secret; None when it does not exist or lacks one of them."""
    try:
        secret = await client.get(SECRETS, namespace, name)
    except ApiError as exc:
        if exc.not_found:
            return None
        raise
    return _decoded(secret.get("data"))


async def apply_tls_secret(client: KubeClient, namespace: str, name: str,
                           files: dict[str, bytes], *, replace: bool) -> dict[str, bytes]:
    """Store ``files`` in the Secret and return what it holds afterwards.

    Creating races with the other replicas: when another replica created it first, its files are
    returned and ours are dropped, so all replicas serve one CA. ``replace`` overwrites an
    existing Secret (a renewed serving certificate).
    """
    data = {k: base64.b64encode(v).decode() for k, v in files.items()}
    if replace:
        await client.patch(SECRETS, namespace, name, {"data": data})
        return files
    body = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "data": data,
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {"app.kubernetes.io/managed-by": "curfew",
                                    "app.kubernetes.io/component": "injection"}}}
    try:
        await client.create(SECRETS, namespace, body)
    except ApiError as exc:
        if not exc.conflict:
            raise
        existing = await read_tls_secret(client, namespace, name)
        if existing is not None:
            return existing
        await client.patch(SECRETS, namespace, name, {"data": data})
    return files


async def apply_ca_bundle(client: KubeClient, name: str, ca_pem: bytes) -> int:
    """Set ``caBundle`` of every webhook of the MutatingWebhookConfiguration ``name``; returns
    how many changed (0: already current, and nothing is written)."""
    config = await client.get(MUTATING_WEBHOOK_CONFIGURATIONS, None, name)
    bundle = base64.b64encode(ca_pem).decode()
    ops: list[Mapping[str, Any]] = [
        {"op": "add", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": bundle}
        for i, hook in enumerate(config.get("webhooks") or [])
        if (hook.get("clientConfig") or {}).get("caBundle") != bundle]
    if ops:
        await client.patch_json(MUTATING_WEBHOOK_CONFIGURATIONS, None, name, ops)
    return len(ops)
