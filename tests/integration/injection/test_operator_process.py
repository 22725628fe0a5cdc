"""`curfew operator` as a real process, configured by the CURFEW_INJECTION_* environment the chart
renders, against the kmock API server: it keeps its CA in the Secret, patches the caBundle and
answers AdmissionReviews over HTTPS next to the operator's own reconciling."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import kmock
import pytest_asyncio
from tests.integration.operator.harness import Cluster, eventually, running_cluster
from webhook_harness import webhook_configuration

from curfew.k8s.client import SESSION_POLICIES, Resource
from fixtures.pods import applied, assert_valid_pod, pod, policy, review

WEBHOOK_CONFIGURATIONS = Resource("admissionregistration.k8s.io", "v1",
                                  "mutatingwebhookconfigurations", "MutatingWebhookConfiguration")
SECRETS = Resource("", "v1", "secrets", "Secret")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest_asyncio.fixture()
async def operator_process(tmp_path: Path) -> AsyncIterator[tuple[Cluster, int]]:
    async with running_cluster() as cluster:
        for res, namespaced in ((SECRETS, True), (WEBHOOK_CONFIGURATIONS, False)):
            key = f"{res.group}/{res.version}/{res.plural}" if res.group \
                else f"{res.version}/{res.plural}"
            cluster.api.resources[key] = kmock.ResourceInfo(
                kind=res.kind, namespaced=namespaced,
                verbs={"get", "list", "watch", "create", "patch", "delete"})
        await cluster.client.create(WEBHOOK_CONFIGURATIONS, None, webhook_configuration())
        await cluster.client.create(SESSION_POLICIES, "shop", policy())
        port = _free_port()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("CURFEW_", "KUBERNETES_SERVICE"))}
        env.update({
            "CURFEW_OPERATOR_SCAN_CLUSTER": "false",
            "CURFEW_INJECTION_ENABLED": "true",
            "CURFEW_INJECTION_HOST": "127.0.0.1",
            "CURFEW_INJECTION_PORT": str(port),
            "CURFEW_INJECTION_NAMESPACE": "curfew",
            "CURFEW_INJECTION_SERVICE": "curfew-webhook",
            "CURFEW_INJECTION_TLS_SECRET": "curfew-webhook-tls",
            "CURFEW_INJECTION_WEBHOOK_CONFIGURATION": "curfew-injection",
            "CURFEW_INJECTION_IMAGE": "registry.example.com/curfew:0.1.0",
        })
        log = (tmp_path / "operator.log").open("wb")  # read it when the test fails
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "curfew", "operator", "--standalone",
            "--kubeconfig", cluster.kubeconfig, "--liveness-port", "0", "--metrics-port", "0",
            env=env, stdout=asyncio.subprocess.DEVNULL, stderr=log)
        try:
            yield cluster, port
        finally:
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                process.kill()
                await process.wait()
            log.close()


async def _ca(cluster: Cluster) -> bytes | None:
    config = cluster.api.object(WEBHOOK_CONFIGURATIONS, None, "curfew-injection")
    bundles = {h["clientConfig"].get("caBundle") for h in (config or {}).get("webhooks", [])}
    if len(bundles) != 1 or None in bundles:
        return None
    return base64.b64decode(bundles.pop())


async def _post(port: int, ca: bytes, body: dict[str, Any]) -> dict[str, Any]:
    context = ssl.create_default_context(cadata=ca.decode())
    async with aiohttp.ClientSession() as session, session.post(
            f"https://127.0.0.1:{port}/inject-pod", json=body, ssl=context,
            server_hostname="curfew-webhook.curfew.svc") as response:
        assert response.status == 200, await response.text()
        answer: dict[str, Any] = await response.json()
        return answer


async def test_the_operator_process_serves_injection_configured_as_the_chart_configures_it(
    operator_process: tuple[Cluster, int],
) -> None:
    cluster, port = operator_process
    ca = await eventually(lambda: _ca(cluster), timeout=30)
    secret = cluster.api.object(SECRETS, "curfew", "curfew-webhook-tls")
    assert secret is not None
    assert base64.b64decode(secret["data"]["ca.crt"]) == ca

    async def answered() -> dict[str, Any] | None:
        try:
            return await _post(port, ca, review(pod()))
        except aiohttp.ClientConnectionError:
            return None

    answer = await eventually(answered, timeout=30)
    assert answer["response"]["allowed"] is True
    patch = json.loads(base64.b64decode(answer["response"]["patch"]))
    result = applied(pod(), patch)
    assert_valid_pod(result)
    assert [c["name"] for c in result["spec"]["containers"]] == ["app", "curfew-sidecar"]
