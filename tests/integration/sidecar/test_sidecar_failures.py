"""The sidecar under failure: Redis stopped mid-traffic in both failure modes, and config hot
reload through a kubelet-style symlink swap, bad configs included."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest
from sidecar_harness import StartSidecar, audit_events, policy_doc, sealed_json

from fixtures.redis_servers import RedisServer

JSON_ACCEPT = {"Accept": "application/json"}


async def test_fail_closed_answers_503_while_redis_is_down_and_recovers(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession, own_redis: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    running = await start_sidecar(redis_url=own_redis.url)
    session = {"Cookie": "session=raw-down", **JSON_ACCEPT}
    async with http.get(running.url + "/x", headers=session) as r:
        assert r.status == 200
    async with http.get(running.ops_url + "/readyz") as r:
        assert r.status == 200

    own_redis.kill()
    started = time.monotonic()
    async with http.get(running.url + "/x", headers=session) as r:
        assert r.status == 503
        assert await r.json() == {"error": "session_store_unavailable"}
        assert r.headers["Retry-After"] == "1"
    assert time.monotonic() - started < 2, "a dead store must not stall requests"
    async with http.get(running.url + "/login") as r:
        assert r.status == 200, "requests without a session never need the store"
    async with http.get(running.ops_url + "/readyz") as r:
        assert r.status == 503
        assert (await r.json())["store"].startswith("unreachable")
    async with http.get(running.url + "/.curfew/readyz") as r:
        assert r.status == 503
    [event] = audit_events(caplog, "store_unavailable")
    assert event["failure_policy"] == "Fail"
    async with http.get(running.ops_url + "/metrics") as r:
        metrics = await r.text()
    assert 'curfew_sidecar_requests_total{action="rejected",decision="unavailable"} 1.0' in metrics
    assert "curfew_sidecar_redis_errors_total 0.0" not in metrics

    own_redis.start()
    async with http.get(running.url + "/x", headers=session) as r:
        assert r.status == 200
    async with http.get(running.ops_url + "/readyz") as r:
        assert r.status == 200


async def test_fail_open_lets_sessions_through_while_redis_is_down(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession, own_redis: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    running = await start_sidecar(policy_doc(failurePolicy="Ignore"), redis_url=own_redis.url)
    own_redis.kill()
    for _ in range(3):
        async with http.get(running.url + "/x", headers={"Cookie": "session=raw-open"}) as r:
            assert r.status == 200
            assert "Curfew-Idle-Remaining" not in r.headers
    async with http.get(running.ops_url + "/readyz") as r:
        assert r.status == 200, "a fail-open sidecar stays ready without its store"
    events = audit_events(caplog, "store_unavailable")
    assert len(events) == 1, "one line per interval during an outage, not one per request"
    assert events[0]["failure_policy"] == "Ignore"
    async with http.get(running.ops_url + "/metrics") as r:
        metrics = await r.text()
    assert 'curfew_sidecar_requests_total{action="forwarded",decision="unavailable"} 3.0' in metrics


@pytest.mark.parametrize(("failure_policy", "while_down"), [("Fail", 503), ("Ignore", 200)])
async def test_continuous_traffic_across_a_redis_outage_never_hangs_and_recovers(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession, own_redis: RedisServer,
    failure_policy: str, while_down: int,
) -> None:
    running = await start_sidecar(policy_doc(failurePolicy=failure_policy),
                                  redis_url=own_redis.url)
    phase = "up"
    seen: list[tuple[str, str, int, float]] = []  # phase at start, at end, status, seconds
    stop = asyncio.Event()

    async def client(n: int) -> None:
        while not stop.is_set():
            begun, started = phase, time.monotonic()
            async with http.get(running.url + "/x",
                                headers={"Cookie": f"session=raw-load-{n}", **JSON_ACCEPT}) as r:
                await r.read()
            seen.append((begun, phase, r.status, time.monotonic() - started))

    workers = [asyncio.create_task(client(n)) for n in range(8)]
    await asyncio.sleep(0.4)
    phase = "stopping"
    await asyncio.to_thread(own_redis.kill)
    await asyncio.sleep(0.2)
    phase = "down"
    await asyncio.sleep(0.6)
    phase = "starting"
    await asyncio.to_thread(own_redis.start)
    await asyncio.sleep(0.3)
    phase = "back"
    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.gather(*workers)

    def statuses(name: str) -> set[int]:
        return {status for begun, ended, status, _ in seen if begun == ended == name}

    assert statuses("up") == {200}
    assert statuses("down") == {while_down}
    assert statuses("back") == {200}
    assert {status for _, _, status, _ in seen} <= {200, while_down}
    slowest = max(elapsed for *_, elapsed in seen)
    assert slowest < 1.5, f"a request took {slowest:.2f}s: the sidecar must not hang"


async def test_a_config_swapped_like_kubelet_does_is_picked_up_without_dropping_requests(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    running = await start_sidecar()
    old_hash = running.sidecar.watcher.policy.hash
    slow = asyncio.create_task(
        http.get(running.url + "/slow?seconds=0.4", headers={"Cookie": "session=raw-rl"}))
    await asyncio.sleep(0.1)
    running.config.write(policy_doc(
        timeouts={"idleSeconds": 60, "absoluteSeconds": 600}, enforcement="Audit"))
    deadline = time.monotonic() + 5
    while running.sidecar.watcher.policy.hash == old_hash:
        assert time.monotonic() < deadline, "the swapped config was never picked up"
        await asyncio.sleep(0.02)
    response = await slow
    assert response.status == 200
    assert await response.text() == "slow done"
    response.release()
    await running.issue("raw-new")
    async with http.get(running.url + "/x", headers={"Cookie": "session=raw-new"}) as r:
        assert r.headers["Curfew-Idle-Remaining"] in ("59", "60")
    [event] = audit_events(caplog, "config_reloaded")
    assert (event["previous"], event["hash"], event["enforcement"]) == (
        old_hash, running.sidecar.watcher.policy.hash, "Audit")


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("{not json", "policy.json"),
        (sealed_json(policy_doc()).replace('"idleSeconds": 900', '"idleSeconds": 901'),
         "hash does not match"),
        (json.dumps(policy_doc(timeouts={"idleSeconds": -5, "absoluteSeconds": 60})),
         "timeouts.idleSeconds"),
    ],
)
async def test_an_invalid_new_config_keeps_the_last_good_one_and_says_so(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture,
    content: str, says: str,
) -> None:
    running = await start_sidecar()
    good = running.sidecar.watcher.policy.hash
    running.config.write(content)
    deadline = time.monotonic() + 5
    while running.sidecar.watcher.error is None:
        assert time.monotonic() < deadline, "the bad config was never noticed"
        await asyncio.sleep(0.02)
    assert says in running.sidecar.watcher.error
    assert running.sidecar.watcher.policy.hash == good
    await running.issue("raw-b")
    async with http.get(running.url + "/x", headers={"Cookie": "session=raw-b"}) as r:
        assert r.headers["Curfew-Idle-Remaining"] in ("899", "900")
    async with http.get(running.ops_url + "/readyz") as r:
        report = await r.json()
    assert r.status == 200
    assert report["config"] == good
    assert says in report["configRejected"]
    async with http.get(running.ops_url + "/metrics") as r:
        metrics = await r.text()
    assert "curfew_sidecar_config_valid 0.0" in metrics
    assert 'curfew_sidecar_config_reloads_total{result="rejected"} 1.0' in metrics
    [event] = audit_events(caplog, "config_rejected")
    assert event["kept"] == good

    running.config.write(policy_doc(timeouts={"idleSeconds": 30, "absoluteSeconds": 300}))
    while running.sidecar.watcher.error is not None:
        assert time.monotonic() < deadline + 5, "the fixed config was never picked up"
        await asyncio.sleep(0.02)
    async with http.get(running.ops_url + "/metrics") as r:
        assert "curfew_sidecar_config_valid 1.0" in await r.text()
