"""``curfew sidecar`` as a real process: clear refusals, a full run, graceful SIGTERM, and logs
that never contain a raw session id."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from sidecar_harness import KEY, MountedConfig, policy_doc, sid_of

from curfew.sessions.store import RedisSessionStore
from fixtures.redis_servers import RedisServer, free_port
from fixtures.sessions import plant

CURFEW = [sys.executable, "-m", "curfew", "sidecar"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("REDIS_URL", "CURFEW_SESSION_KEY")}
    env.update(extra)
    return env


@pytest.fixture
def mounted(tmp_path: Path) -> MountedConfig:
    mount = MountedConfig(tmp_path / "config")
    mount.root.mkdir()
    mount.write(policy_doc())
    return mount


def _refusal(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run([*CURFEW, *args], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_it_refuses_to_start_without_a_session_key_and_says_why(mounted: MountedConfig) -> None:
    line = _refusal(["--config", str(mounted.path), "--upstream", "http://127.0.0.1:1"],
                    _env(REDIS_URL="redis://127.0.0.1:1/0"))
    assert "CURFEW_SESSION_KEY is not set" in line
    assert "--insecure-dev-key" in line


def test_it_refuses_a_short_key_a_missing_upstream_and_a_bad_config(
    mounted: MountedConfig, tmp_path: Path
) -> None:
    env = _env(REDIS_URL="redis://127.0.0.1:1/0", CURFEW_SESSION_KEY="short")
    assert "at least 16 bytes" in _refusal(
        ["--config", str(mounted.path), "--upstream", "http://127.0.0.1:1"], env)
    env["CURFEW_SESSION_KEY"] = KEY.decode()
    assert "--upstream" in _refusal(["--config", str(mounted.path)], env)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(policy_doc(timeouts={"idleSeconds": 0, "absoluteSeconds": 60})))
    line = _refusal(["--config", str(bad), "--upstream", "http://127.0.0.1:1"], env)
    assert str(bad) in line
    assert "timeouts.idleSeconds" in line
    line = _refusal(["--config", str(tmp_path / "missing.json"), "--mode", "authz"], env)
    assert "missing.json: cannot read" in line
    line = _refusal(["--config", str(mounted.path), "--mode", "authz",
                     "--redis-url", "memcached://127.0.0.1:1"], env)
    assert line.startswith("curfew sidecar: --redis-url / REDIS_URL: store URL: unsupported scheme")


async def test_a_real_run_finishes_requests_in_flight_on_sigterm_and_logs_no_raw_ids(
    mounted: MountedConfig, redis_server: RedisServer, upstream: str
) -> None:
    redis_server.client().flushall()
    port, ops = free_port(), free_port()
    proc = await asyncio.create_subprocess_exec(
        *CURFEW, "--config", str(mounted.path), "--listen", f"127.0.0.1:{port}",
        "--ops-listen", f"127.0.0.1:{ops}", "--upstream", upstream, "--log-level", "DEBUG",
        env=_env(REDIS_URL=redis_server.url, CURFEW_SESSION_KEY=KEY.decode()),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    raw_ids = ["raw-cli-alpha-4242", "raw-cli-expired-1717", "raw-cli-slow-9090"]
    store = RedisSessionStore.from_url(redis_server.url, key_prefix="curfew:")
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
            deadline = time.monotonic() + 20
            while True:
                try:
                    async with http.get(f"http://127.0.0.1:{ops}/readyz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                assert proc.returncode is None, "the sidecar exited"
                assert time.monotonic() < deadline, "the sidecar never became ready"
                await asyncio.sleep(0.1)

            # The app signs the session in through the sidecar, which registers it.
            async with http.get(base + "/issue?name=session&value=" + raw_ids[0]) as r:
                assert r.status == 200
            async with http.get(base + "/a?token=" + raw_ids[0],
                                headers={"Cookie": f"session={raw_ids[0]}"}) as r:
                assert r.status == 200
                assert "Curfew-Idle-Remaining" in r.headers
            await plant(store, sid_of(raw_ids[1]), created_ago_ms=3_600_000,
                        last_ago_ms=3_600_000)
            async with http.get(base + "/b", allow_redirects=False,
                                headers={"Cookie": f"session={raw_ids[1]}"}) as r:
                assert r.status == 302

            slow = asyncio.create_task(http.get(
                base + "/slow?seconds=1", headers={"Cookie": f"session={raw_ids[2]}"}))
            await asyncio.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
            response = await slow
            assert response.status == 200, "a request in flight at SIGTERM still completes"
            assert await response.text() == "slow done"
            response.release()
            code = await asyncio.wait_for(proc.wait(), timeout=10)
            assert code == 0
            with pytest.raises(aiohttp.ClientConnectionError):
                async with http.get(base + "/after"):
                    pass
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await store.aclose()
    out = (await proc.stdout.read()).decode() if proc.stdout else ""
    err = (await proc.stderr.read()).decode() if proc.stderr else ""
    for raw in raw_ids:
        assert raw not in out, f"raw session id {raw} leaked into the audit log"
        assert raw not in err, f"raw session id {raw} leaked into the operational log"
    events = [json.loads(line) for line in out.splitlines()]
    kinds = {e["event"] for e in events}
    assert {"session_first_seen", "session_expired", "reauthentication_redirect"} <= kinds
    assert {e["session"] for e in events} >= {sid_of(raw_ids[0]), sid_of(raw_ids[1])}
    assert "shutting down" in err
