"""`curfew operator` as a real process, configured by the CURFEW_INJECTION_* environment the chart
renders, against the kmock API server: it keeps its CA in the Secret, patches the caBundle and
answers AdmissionReviews over HTTPS next to the operator's own reconciling."""

from __future__ import annotations

import base64
import json
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest_asyncio
from tests.integration.operator.harness import (
    Cluster,
    eventually,
    running_cluster,
    running_operator,
)
from webhook_harness import injection_settings, serve_injection_objects

from curfew.k8s.client import MUTATING_WEBHOOK_CONFIGURATIONS, SECRETS, SESSION_POLICIES
from fixtures.pods import applied, assert_valid_pod, pod, policy, review


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest_asyncio.fixture()
async def operator_process(tmp_path: Path) -> AsyncIterator[tuple[Cluster, int]]:
    async with running_cluster() as cluster:
        await serve_injection_objects(cluster)
        await cluster.client.create(SESSION_POLICIES, "shop", policy())
        port = _free_port()
        async with running_operator(cluster, tmp_path, settings=injection_settings(port)):
            yield cluster, port


async def _ca(cluster: Cluster) -> bytes | None:
    config = cluster.api.object(MUTATING_WEBHOOK_CONFIGURATIONS, None, "curfew-injection")
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
