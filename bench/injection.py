"""Benchmark: how long the injection webhook keeps a pod creation waiting, measured in one run.

Runs kopf's HTTPS webhook server with Curfew's injection handlers against a kmock API server
holding one SessionPolicy, plus a baseline handler on the same server that changes nothing
(kopf's admission path, TLS, JSON and the server's policy lookup included: the difference is
Curfew's decision and patch). One HTTPS connection posts the same pod's AdmissionReview
alternately to the baseline and to Curfew's ``/inject-pod``, ``--requests`` times each, and
compares the latencies. The policy list is cached as in production (``--cache-seconds``), so
most requests reuse it and one in each cache period lists from the API (``api_lists``, the
baseline's requests included); ``--cache-seconds 0`` lists on every request.

Ends with one line: ``RESULT baseline_p50_ms=… inject_p50_ms=… added_p50_ms=… inject_p99_ms=…
p50_ratio=… api_lists=…``.

Usage: ``python bench/injection.py [--requests 500] [--cache-seconds 2]``. Everything shares this
machine's cores: compare figures within one run only; the webhook's budget is its timeoutSeconds
(5 s by default).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import ssl
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import kmock
import kopf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from curfew.k8s.client import Connection, KubeClient  # noqa: E402
from curfew.operator.certificates import build_tls_bundle  # noqa: E402
from curfew.operator.injection import register_injection  # noqa: E402
from curfew.operator.settings import InjectionWebhookSettings  # noqa: E402
from fixtures.pods import pod, policy, review  # noqa: E402

VERBS = {"get", "list", "watch", "create", "patch", "delete"}


class CountingEmulator(kmock.KubernetesEmulator):  # type: ignore[misc]
    """kmock's emulator, counting the SessionPolicy lists the webhook makes."""

    policy_lists = 0

    async def _handle(self, request: kmock.Request) -> Any:
        if request.resource is not None and request.resource.plural == "sessionpolicies" \
                and request.name is None and request.params.get("watch") is None \
                and str(request.method).upper().endswith("GET"):
            type(self).policy_lists += 1
        return await super()._handle(request)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(port: int, tls_dir: Path, cache_seconds: float, box: dict[str, Any],
           ready: threading.Event, stop: threading.Event) -> None:
    async def main() -> None:
        async with CountingEmulator() as api, kmock.Server(api) as server:
            for key, kind, namespaced in (
                ("v1/namespaces", "Namespace", False),
                ("apiextensions.k8s.io/v1/customresourcedefinitions",
                 "CustomResourceDefinition", False),
                ("curfew.dev/v1alpha1/sessionpolicies", "SessionPolicy", True),
                ("v1/pods", "Pod", True),
            ):
                api.resources[key] = kmock.ResourceInfo(kind=kind, namespaced=namespaced,
                                                        verbs=VERBS)
            url = str(server.url)
            async with aiohttp.ClientSession() as session:
                await session.post(f"{url}/apis/curfew.dev/v1alpha1/namespaces/shop/"
                                   "sessionpolicies", json=policy())
            client = KubeClient(Connection(server=url))
            registry = kopf.OperatorRegistry()
            register_injection(registry, InjectionWebhookSettings(
                enabled=True, host="127.0.0.1", port=port, tls_dir=str(tls_dir),
                policy_cache_seconds=cache_seconds), client)

            @kopf.on.mutate(group="", version="v1", plural="pods", id="baseline",
                            operations=["CREATE"], registry=registry)
            def baseline(**_: Any) -> None:
                """Changes nothing: kopf's admission path alone."""

            @kopf.on.login(registry=registry)
            def login(**_: Any) -> kopf.ConnectionInfo:
                return kopf.ConnectionInfo(server=url, insecure=True)

            @kopf.on.startup(registry=registry)
            def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
                settings.scanning.disabled = True
                settings.posting.enabled = False

            ready.set()
            async with client:
                await kopf.operator(registry=registry, standalone=True, clusterwide=True,
                                    stop_flag=stop)

    asyncio.run(main())


async def _measure(port: int, ca: bytes, requests: int) -> tuple[list[float], list[float]]:
    context = ssl.create_default_context(cadata=ca.decode())
    body = json.dumps(review(pod())).encode()
    headers = {"Content-Type": "application/json"}
    timings: dict[str, list[float]] = {"baseline": [], "inject-pod": []}
    connector = aiohttp.TCPConnector(limit=1, ssl=context)
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(200):  # the server starts once discovery is done
            try:
                async with session.post(f"https://127.0.0.1:{port}/baseline", data=body,
                                        headers=headers) as response:
                    await response.read()
                break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
        for _ in range(requests):
            for path, out in timings.items():
                started = time.perf_counter()
                async with session.post(f"https://127.0.0.1:{port}/{path}", data=body,
                                        headers=headers) as response:
                    answer = await response.json()
                out.append((time.perf_counter() - started) * 1000)
                if path == "inject-pod":
                    assert answer["response"]["patch"], answer
                else:
                    assert "patch" not in answer["response"], answer
    return timings["baseline"], timings["inject-pod"]


def _p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--cache-seconds", type=float, default=2.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tls_dir = Path(tmp)
        bundle = build_tls_bundle(["127.0.0.1"])
        (tls_dir / "tls.crt").write_bytes(bundle.cert)
        (tls_dir / "tls.key").write_bytes(bundle.key)
        (tls_dir / "ca.crt").write_bytes(bundle.ca_cert)
        port = _free_port()
        box: dict[str, Any] = {}
        ready, stop = threading.Event(), threading.Event()
        thread = threading.Thread(target=_serve, daemon=True, args=(
            port, tls_dir, args.cache_seconds, box, ready, stop))
        thread.start()
        ready.wait(30)
        started = time.monotonic()
        baseline, inject = asyncio.run(_measure(port, bundle.ca_cert, args.requests))
        elapsed = time.monotonic() - started
        lists = CountingEmulator.policy_lists
        stop.set()
        thread.join(30)

    base50, inj50 = statistics.median(baseline), statistics.median(inject)
    print(f"{args.requests} reviews each in {elapsed:.1f}s, one HTTPS keep-alive connection")
    print(f"baseline (no-op handler): p50 {base50:.2f} ms  p99 {_p(baseline, 99):.2f} ms")
    print(f"curfew inject-pod:        p50 {inj50:.2f} ms  p99 {_p(inject, 99):.2f} ms")
    print(f"RESULT baseline_p50_ms={base50:.2f} inject_p50_ms={inj50:.2f} "
          f"added_p50_ms={inj50 - base50:.2f} inject_p99_ms={_p(inject, 99):.2f} "
          f"p50_ratio={inj50 / base50:.2f} api_lists={lists}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
