"""Every series the chart's dashboard and alert rules read is one Curfew exports.

The real sidecar (against a real Redis) is driven through a registered, an allowed, an expired
and a store-unavailable request and a config reload; the real operator, as a process against the
kmock API server with its injection webhook on, reconciles a valid and an invalid policy, records
a purge run and answers an admission. Both ``/metrics`` pages are scraped and parsed with
prometheus_client's parser, and each metric name the dashboard and the rendered rules select
must be a sample on one of them. The one exception is ``up``, which Prometheus writes itself for
every target it scrapes.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from curfew.k8s.client import (
    DEPLOYMENTS,
    MUTATING_WEBHOOK_CONFIGURATIONS,
    SESSION_POLICIES,
)
from fixtures.pods import pod, policy, review
from fixtures.policy_docs import policy_doc
from fixtures.redis_servers import RedisServer
from fixtures.sessions import plant
from tests.integration.injection.webhook_harness import (
    injection_settings,
    serve_injection_objects,
)
from tests.integration.observability.series import (
    dashboard,
    dashboard_expressions,
    metric_names,
    rendered_rules,
    rule_expressions,
)
from tests.integration.operator.harness import (
    Cluster,
    build_workload,
    condition,
    eventually,
    running_cluster,
    running_operator,
)
from tests.integration.operator.scenarios import SUMMARY_OK, finish_purge_job
from tests.integration.sidecar.sidecar_harness import StartSidecar, sid_of

PROMETHEUS_OWN = {"up"}
"""Series Prometheus writes for each scrape target, not read from any /metrics page."""
MIN = 60_000
JSON_ACCEPT = {"Accept": "application/json"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _sample_names(text: str) -> set[str]:
    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}


def _referenced() -> dict[str, set[str]]:
    """Metric name -> where it is read (dashboard panels, alert rules)."""
    where: dict[str, set[str]] = {}
    for source, exprs in (("dashboard", dashboard_expressions(dashboard())),
                          ("alerts", rule_expressions(rendered_rules()))):
        for expr in exprs:
            for name in metric_names(expr):
                where.setdefault(name, set()).add(source)
    return where


async def _sidecar_metrics(start_sidecar: StartSidecar, redis: RedisServer) -> str:
    running = await start_sidecar(redis_url=redis.url)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        await running.issue("raw-live")
        async with http.get(running.url + "/cart",
                            headers={"Cookie": "session=raw-live", **JSON_ACCEPT}) as r:
            assert r.status == 200
        await plant(running.store, sid_of("raw-idle"), created_ago_ms=20 * MIN,
                    last_ago_ms=16 * MIN)
        async with http.get(running.url + "/cart",
                            headers={"Cookie": "session=raw-idle", **JSON_ACCEPT}) as r:
            assert r.status == 401
        old = running.sidecar.watcher.policy.hash
        running.config.write(policy_doc(timeouts={"idleSeconds": 600, "absoluteSeconds": 3600}))
        deadline = time.monotonic() + 5
        while running.sidecar.watcher.policy.hash == old:
            assert time.monotonic() < deadline, "the new config was never picked up"
            await asyncio.sleep(0.02)
        redis.kill()
        async with http.get(running.url + "/cart",
                            headers={"Cookie": "session=raw-live", **JSON_ACCEPT}) as r:
            assert r.status == 503
        async with http.get(running.ops_url + "/metrics") as r:
            assert r.status == 200
            return await r.text()


@pytest_asyncio.fixture()
async def operator_process(tmp_path: Path) -> AsyncIterator[tuple[Cluster, int, int]]:
    """``curfew operator`` as the chart runs it, injection on, against the emulator: the
    cluster, the webhook's port and the metrics port."""
    async with running_cluster() as cluster:
        await serve_injection_objects(cluster)
        webhook, metrics = _free_port(), _free_port()
        settings = {
            "CURFEW_OPERATOR_METRICS_HOST": "127.0.0.1",
            "CURFEW_OPERATOR_BATCH_DELAY_SECONDS": "0.05",
            **injection_settings(webhook),
        }
        async with running_operator(cluster, tmp_path, settings=settings,
                                    metrics_port=metrics):
            yield cluster, webhook, metrics


async def _admit(port: int, ca: bytes, body: dict[str, Any]) -> bool:
    context = ssl.create_default_context(cadata=ca.decode())
    try:
        async with aiohttp.ClientSession() as session, session.post(
                f"https://127.0.0.1:{port}/inject-pod", json=body, ssl=context,
                server_hostname="curfew-webhook.curfew.svc") as response:
            return response.status == 200
    except aiohttp.ClientConnectionError:
        return False  # not serving yet


def _ca(cluster: Cluster) -> bytes | None:
    config = cluster.api.object(MUTATING_WEBHOOK_CONFIGURATIONS, None, "curfew-injection")
    bundles = {h["clientConfig"].get("caBundle") for h in (config or {}).get("webhooks", [])}
    return base64.b64decode(bundles.pop()) if len(bundles) == 1 and None not in bundles \
        else None


async def _operator_metrics(cluster: Cluster, webhook: int, port: int) -> str:
    await cluster.client.create(DEPLOYMENTS, "shop", build_workload("web", labels={"app": "web"}))
    await cluster.client.create(SESSION_POLICIES, "shop", policy())
    broken = policy("broken")
    broken["spec"]["timeouts"] = {"idle": "forever", "absolute": "8h"}
    await cluster.client.create(SESSION_POLICIES, "shop", broken)
    await eventually(lambda: condition(cluster.api.object(SESSION_POLICIES, "shop", "storefront"),
                                       "Ready")["status"] == "True")
    await finish_purge_job(cluster, "shop", "storefront", "curfew-purge-storefront-1",
                           SUMMARY_OK)
    await eventually(lambda: (cluster.api.object(SESSION_POLICIES, "shop", "storefront")
                              or {}).get("status", {}).get("lastPurge"))
    ca = await eventually(lambda: _ca(cluster), timeout=30)
    await eventually(lambda: _admit(webhook, ca, review(pod())), timeout=30)
    assert await _admit(webhook, ca, {"apiVersion": "admission.k8s.io/v1",
                                      "kind": "AdmissionReview", "request": {"uid": "x"}})

    async def scrape() -> str | None:
        async with aiohttp.ClientSession() as http, \
                http.get(f"http://127.0.0.1:{port}/metrics") as r:
            text = await r.text()
        done = ("curfew_operator_purge_runs_total{" in text
                and 'curfew_operator_errors_total{kind="invalid"}' in text
                and 'curfew_operator_webhook_admissions_total{outcome="malformed"}' in text)
        return text if done else None

    text: str = await eventually(scrape, timeout=30)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    storefront = (("namespace", "shop"), ("policy", "storefront"))
    assert samples[("curfew_operator_purge_runs_total",
                    (*storefront[:1], ("outcome", "ok"), *storefront[1:]))] == 1
    assert samples[("curfew_operator_purge_runs_total",
                    (*storefront[:1], ("outcome", "aborted"), *storefront[1:]))] == 0
    assert samples[("curfew_operator_purge_removed_sessions_total",
                    (*storefront, ("reason", "idle")))] == SUMMARY_OK["expired"]["idle"]
    assert samples[("curfew_operator_purge_last_scanned_sessions", storefront)] == 120
    assert samples[("curfew_operator_policy_ready", storefront)] == 1
    assert samples[("curfew_operator_policy_ready",
                    (("namespace", "shop"), ("policy", "broken")))] == 0
    assert samples[("curfew_operator_webhook_admissions_total", (("outcome", "injected"),))] >= 1
    assert samples[("curfew_operator_webhook_admissions_total", (("outcome", "malformed"),))] == 1
    return text


async def test_every_series_the_dashboard_and_the_alerts_read_is_exported(
    start_sidecar: StartSidecar, own_redis: RedisServer,
    operator_process: tuple[Cluster, int, int],
) -> None:
    sidecar = _sample_names(await _sidecar_metrics(start_sidecar, own_redis))
    operator = _sample_names(await _operator_metrics(*operator_process))
    referenced = _referenced()
    assert len(referenced) > 15
    missing = {name: sorted(where) for name, where in referenced.items()
               if name not in sidecar | operator | PROMETHEUS_OWN}
    assert missing == {}
    # Each side's series really came from that side: the scan is not matching by prefix.
    assert {n for n in referenced if n.startswith("curfew_sidecar_")} <= sidecar
    assert {n for n in referenced if n.startswith("curfew_operator_")} <= operator


@pytest.mark.parametrize("name", ["curfew_sidecar_requests_totl", "kube_pod_info"])
def test_a_series_nobody_exports_would_be_reported_missing(name: str) -> None:
    expr = f"sum(rate({name}[5m])) * on () group_left () max(curfew_sidecar_config_info)"
    assert name in metric_names(expr)
