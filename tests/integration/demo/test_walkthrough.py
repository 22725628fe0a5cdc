"""docs/install.md's "See it enforce" step, on loopback: the demo-app chart's own app command
behind a real ``curfew sidecar`` and a real Redis, sent the requests the step sends.

What only a cluster adds (the kubelet mounting the ConfigMap, port-forward) is the opt-in e2e
suite's; here the config is the one the walk-through's policy renders to, with a short idle.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import yaml

from fixtures.policy_docs import policy_doc
from fixtures.redis_servers import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[3]
APP_TEMPLATE = ROOT / "tests" / "fixtures" / "charts" / "demo-app" / "templates" / "deployment.yaml"
POLICY = ROOT / "tests" / "e2e" / "manifests" / "policy.yaml"
KEY = "walkthrough-session-key-0123456789"
IDLE_SECONDS = 2


def chart_app_command(port: int) -> list[str]:
    """The app container's command in the demo-app chart, for a port, run from this checkout."""
    line = re.search(r"^\s*command: (\[.*\])\s*$", APP_TEMPLATE.read_text(), re.MULTILINE)
    assert line is not None, "the demo-app chart's app has no command line"
    command = yaml.safe_load(line.group(1).replace("{{ .Values.appPort }}", str(port)))
    assert command[0] == "curfew"
    return [sys.executable, "-m", "curfew", *command[1:]]


async def _ready(url: str, process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 20
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(url) as response:
                    if response.status < 500:
                        return
            except aiohttp.ClientConnectionError:
                pass
            assert process.returncode is None, f"{url}: the process exited"
            assert time.monotonic() < deadline, f"{url} never answered"
            await asyncio.sleep(0.1)


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout=10)
        except TimeoutError:
            process.kill()
            await process.wait()


@pytest.fixture
async def walkthrough(redis_server: RedisServer, tmp_path: Path) -> AsyncIterator[str]:
    """The sidecar's URL, with the chart's app behind it."""
    redis_server.client().flushall()
    cookie = yaml.safe_load(POLICY.read_text())["spec"]["session"]["cookieName"]
    config = tmp_path / "policy.json"
    config.write_text(json.dumps(policy_doc(
        timeouts={"idleSeconds": IDLE_SECONDS, "absoluteSeconds": 3600},
        session={"cookieName": cookie},
    )))
    app_port, port, ops = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CURFEW_SESSION_KEY")}
    app = await asyncio.create_subprocess_exec(
        *chart_app_command(app_port), env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    sidecar = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "curfew", "sidecar", "--config", str(config),
        "--listen", f"127.0.0.1:{port}", "--ops-listen", f"127.0.0.1:{ops}",
        "--upstream", f"http://127.0.0.1:{app_port}",
        env={**env, "REDIS_URL": redis_server.url, "CURFEW_SESSION_KEY": KEY},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        await _ready(f"http://127.0.0.1:{app_port}/login", app)
        await _ready(f"http://127.0.0.1:{ops}/readyz", sidecar)
        yield f"http://127.0.0.1:{port}"
    finally:
        await _stop(sidecar)
        await _stop(app)


async def test_the_documented_requests_pass_then_get_401_after_the_idle_time(
    walkthrough: str,
) -> None:
    api = {"Accept": "application/json"}
    # Its cookie jar is curl's -c/-b jar (unsafe: it keeps cookies of an IP address too).
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        # curl -c jar -d username=ada .../login
        async with http.post(walkthrough + "/login", data={"username": "ada"},
                             allow_redirects=False) as response:
            assert response.status == 303
            issued = response.cookies["demo_session"].value
        async with http.get(walkthrough + "/", headers=api, allow_redirects=False) as response:
            assert response.status == 200
            assert int(response.headers["Curfew-Idle-Remaining"]) in (IDLE_SECONDS - 1,
                                                                       IDLE_SECONDS)
        await asyncio.sleep(IDLE_SECONDS + 1)
        async with http.get(walkthrough + "/", headers=api, allow_redirects=False) as response:
            assert response.status == 401
            assert await response.json() == {"error": "session_expired", "reason": "idle"}
            assert response.cookies["demo_session"].value == ""  # the sidecar clears it
        # Refused for good: the stale cookie (curl's jar keeps it) never works again.
        async with http.get(walkthrough + "/", allow_redirects=False,
                            headers={**api, "Cookie": f"demo_session={issued}"}) as response:
            assert response.status == 401
