"""The injection webhook running for real: kopf's HTTPS server with Curfew's handlers, in its own
thread and event loop, against the operator tests' kmock API server (``KubeEmulator``, which can
fail requests on purpose) on loopback, holding the SessionPolicies, the
MutatingWebhookConfiguration whose caBundle the operator patches, and the TLS Secret.

Only the injection part of the operator is registered (a fresh kopf registry), so these tests
prove the webhook alone.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import kmock
import kopf
import pytest
import yaml
from tests.integration.operator.harness import Cluster, KubeEmulator

from curfew.k8s.client import (
    MUTATING_WEBHOOK_CONFIGURATIONS,
    SECRETS,
    KubeClient,
    load_connection,
)
from curfew.operator.injection import register_injection
from curfew.operator.settings import InjectionWebhookSettings

CONFIGURATION = "curfew-injection"
SECRET = "curfew-webhook-tls"
NAMESPACE = "curfew"
CACHE_SECONDS = 0.5
VERBS = {"get", "list", "watch", "create", "patch", "delete"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def injection_settings(port: int) -> dict[str, str]:
    """The operator's injection settings as the chart sets them, the webhook on ``port``."""
    return {
        "CURFEW_INJECTION_ENABLED": "true",
        "CURFEW_INJECTION_HOST": "127.0.0.1",
        "CURFEW_INJECTION_PORT": str(port),
        "CURFEW_INJECTION_NAMESPACE": "curfew",
        "CURFEW_INJECTION_SERVICE": "curfew-webhook",
        "CURFEW_INJECTION_TLS_SECRET": "curfew-webhook-tls",
        "CURFEW_INJECTION_WEBHOOK_CONFIGURATION": "curfew-injection",
        "CURFEW_INJECTION_IMAGE": "registry.example.com/curfew:0.1.0",
    }


async def serve_injection_objects(cluster: Cluster) -> None:
    """Teach the emulator Secrets and webhook configurations, and create the chart's webhook
    configuration, as an operator process with injection on needs them."""
    for res, namespaced in ((SECRETS, True), (MUTATING_WEBHOOK_CONFIGURATIONS, False)):
        key = f"{res.group}/{res.version}/{res.plural}" if res.group \
            else f"{res.version}/{res.plural}"
        cluster.api.resources[key] = kmock.ResourceInfo(
            kind=res.kind, namespaced=namespaced,
            verbs={"get", "list", "watch", "create", "patch", "delete"})
    await cluster.client.create(MUTATING_WEBHOOK_CONFIGURATIONS, None, webhook_configuration())


def webhook_configuration() -> dict[str, Any]:
    """The two webhooks as the chart renders them, with an empty caBundle."""
    def hook(name: str, path: str) -> dict[str, Any]:
        return {
            "name": name,
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": "Ignore",
            "timeoutSeconds": 5,
            "clientConfig": {"service": {"name": "curfew-webhook", "namespace": NAMESPACE,
                                         "path": path, "port": 443}},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                       "resources": ["pods"], "scope": "Namespaced"}],
        }
    return {"apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": CONFIGURATION},
            "webhooks": [hook("pods.inject.curfew.dev", "/inject-pod"),
                         hook("namespaces.inject.curfew.dev", "/inject-namespace")]}


@dataclass
class Webhook:
    """A running webhook server and the API server it reads policies from."""

    url: str
    api: str
    ca: bytes
    emulator: Any
    loop: asyncio.AbstractEventLoop

    def post_to_api(self, path: str, body: dict[str, Any]) -> None:
        async def post() -> None:
            async with aiohttp.ClientSession() as session, \
                    session.post(f"{self.api}{path}", json=body) as response:
                assert response.status < 300, await response.text()
        asyncio.run_coroutine_threadsafe(post(), self.loop).result(10)


def _run(ready: threading.Event, stop: threading.Event, box: dict[str, Any],
         tmp: Path) -> None:
    async def main() -> None:
        async with KubeEmulator() as emulator, kmock.Server(emulator) as server:
            for key, kind, namespaced in (
                ("v1/secrets", "Secret", True),
                ("admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
                 "MutatingWebhookConfiguration", False),
            ):
                emulator.resources[key] = kmock.ResourceInfo(kind=kind, namespaced=namespaced,
                                                             verbs=VERBS)
            api = str(server.url)
            async with aiohttp.ClientSession() as session:
                await session.post(
                    f"{api}/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
                    json=webhook_configuration())
            kubeconfig = tmp / "kubeconfig"
            kubeconfig.write_text(yaml.safe_dump({
                "apiVersion": "v1", "kind": "Config", "current-context": "kmock",
                "clusters": [{"name": "kmock", "cluster": {"server": api}}],
                "users": [{"name": "kmock", "user": {}}],
                "contexts": [{"name": "kmock", "context": {"cluster": "kmock",
                                                           "user": "kmock"}}]}))
            port = _free_port()
            settings = InjectionWebhookSettings(
                enabled=True, host="127.0.0.1", port=port, namespace=NAMESPACE,
                extra_names=["127.0.0.1"], tls_secret=SECRET,
                webhook_configuration=CONFIGURATION,
                image="registry.example.com/curfew:0.1.0", policy_cache_seconds=CACHE_SECONDS)
            registry = kopf.OperatorRegistry()
            client = KubeClient(load_connection(str(kubeconfig)))
            register_injection(registry, settings, client)

            @kopf.on.login(registry=registry)
            def login(**_: Any) -> kopf.ConnectionInfo:
                return kopf.ConnectionInfo(server=api, insecure=True)

            @kopf.on.startup(registry=registry)
            def quiet(settings: kopf.OperatorSettings, **_: Any) -> None:
                settings.scanning.disabled = True  # kmock has no CRDs to scan
                settings.watching.server_timeout = 10

            box.update(api=api, port=port, emulator=emulator, loop=asyncio.get_running_loop())
            ready.set()
            async with client:
                await kopf.operator(registry=registry, standalone=True, clusterwide=True,
                                    stop_flag=stop)

    try:
        asyncio.run(main())
    except BaseException as exc:
        box["error"] = exc
        ready.set()


def _wait_for_port(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"the webhook server never listened on port {port}")


@pytest.fixture(scope="module")
def webhook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webhook]:
    ready, stop, box = threading.Event(), threading.Event(), {}
    thread = threading.Thread(target=_run, args=(ready, stop, box,
                                                 tmp_path_factory.mktemp("injection")),
                              daemon=True)
    thread.start()
    assert ready.wait(30), "the API server did not start"
    if "error" in box:
        raise box["error"]
    _wait_for_port(box["port"], time.monotonic() + 30)
    emulator = box["emulator"]
    key = (kmock.resource(group="admissionregistration.k8s.io", version="v1",
                          plural="mutatingwebhookconfigurations"), None, CONFIGURATION)
    bundle = emulator.objects[key].raw["webhooks"][0]["clientConfig"]["caBundle"]
    yield Webhook(url=f"https://127.0.0.1:{box['port']}", api=box["api"],
                  ca=base64.b64decode(bundle), emulator=emulator, loop=box["loop"])
    stop.set()
    thread.join(30)
    assert not thread.is_alive(), "the operator did not stop within 30 s"
