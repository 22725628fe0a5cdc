"""Kubernetes API calls of the injection webhook: keep its TLS material in a Secret shared by the
operator's replicas, and patch its CA into the MutatingWebhookConfiguration's caBundle.

Blocking calls of the official client, for a few calls at startup: callers run them in a thread.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from typing import Any

import kubernetes
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

TLS_KEYS = ("ca.crt", "ca.key", "tls.crt", "tls.key")


def build_api_client(kubeconfig: str | None = None) -> ApiClient:
    """A client of the cluster the operator runs in, else of ``kubeconfig`` / $KUBECONFIG."""
    configuration = kubernetes.client.Configuration()
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not kubeconfig:
        kubernetes.config.load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=configuration)
    else:
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, client_configuration=configuration)
    return ApiClient(configuration)


def _decoded(data: Mapping[str, Any] | None) -> dict[str, bytes] | None:
    if not data or any(k not in data for k in TLS_KEYS):
        return None
    return {k: base64.b64decode(data[k]) for k in TLS_KEYS}


def read_tls_secret(api: ApiClient, namespace: str, name: str) -> dict[str, bytes] | None:
    """The PEM files kept in the Secret; None when it does not exist or lacks one of them."""
    core = kubernetes.client.CoreV1Api(api)
    try:
        secret = core.read_namespaced_secret(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return _decoded(secret.data)


def apply_tls_secret(
    api: ApiClient, namespace: str, name: str, files: dict[str, bytes], *, replace: bool
) -> dict[str, bytes]:
    """Store ``files`` in the Secret and return what it holds afterwards.

    Creating races with the other replicas: when another replica created it first, its files are
    returned and ours are dropped, so all replicas serve one CA. ``replace`` overwrites an
    existing Secret (a renewed serving certificate).
    """
    core = kubernetes.client.CoreV1Api(api)
    data = {k: base64.b64encode(v).decode() for k, v in files.items()}
    if replace:
        core.patch_namespaced_secret(name, namespace, {"data": data})
        return files
    body = kubernetes.client.V1Secret(
        api_version="v1", kind="Secret", type="Opaque", data=data,
        metadata=kubernetes.client.V1ObjectMeta(
            name=name, namespace=namespace,
            labels={"app.kubernetes.io/managed-by": "curfew",
                    "app.kubernetes.io/component": "injection"}))
    try:
        core.create_namespaced_secret(namespace, body)
    except ApiException as exc:
        if exc.status != 409:
            raise
        existing = read_tls_secret(api, namespace, name)
        if existing is not None:
            return existing
        core.patch_namespaced_secret(name, namespace, {"data": data})
    return files


def apply_ca_bundle(api: ApiClient, name: str, ca_pem: bytes) -> int:
    """Set ``caBundle`` of every webhook of the MutatingWebhookConfiguration ``name``; returns
    how many changed (0: already current, and nothing is written)."""
    admission = kubernetes.client.AdmissionregistrationV1Api(api)
    config: Any = admission.read_mutating_webhook_configuration(name)
    bundle = base64.b64encode(ca_pem).decode()
    ops = [{"op": "add", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": bundle}
           for i, hook in enumerate(config.webhooks or [])
           if hook.client_config.ca_bundle != bundle]
    if ops:
        admission.patch_mutating_webhook_configuration(name, ops)
    return len(ops)
