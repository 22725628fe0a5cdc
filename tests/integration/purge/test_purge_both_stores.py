"""The same purge scenarios against both ``SessionStore`` implementations: Redis (a real
redis-server) and the in-memory store. The engine sees only the protocol, so both must end a
run with the same summary and leave the same sessions."""

from __future__ import annotations

import io
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest

from curfew.purge.engine import Purge
from curfew.purge.report import Audit, Progress, Summary
from curfew.purge.target import PurgeTarget, build_target
from curfew.sessions import keys
from curfew.sessions.identity import AppIdSeal, session_hash
from curfew.sessions.lifetime import Decision, Limits, SessionRecord
from curfew.sessions.memory import MemoryStore
from curfew.sessions.protocol import SessionStore
from curfew.sessions.store import RedisSessionStore
from fixtures.purge import POLICY, SESSION_KEY, WEB, purge_config
from fixtures.sessions import MIN, plant

SEAL = AppIdSeal(SESSION_KEY.encode())
LIMITS = Limits(15 * 60, 8 * 3600)


class Backend:
    """One store under test, and how a test plants what the sidecar and the app would have
    written (each implementation's own way: neither is the protocol's business)."""

    def __init__(self, store: SessionStore, redis: Any = None) -> None:
        self.store = store
        self.redis = redis

    async def plant(self, sid: str, *, created_ago: int, last_ago: int, now: int,
                    idle: int = 15 * MIN) -> None:
        if isinstance(self.store, MemoryStore):
            self.store.put_record(sid, SessionRecord(
                created_ms=now - created_ago, last_activity_ms=now - last_ago, idle_ms=idle,
                absolute_ms=480 * MIN, authenticated_ms=now - created_ago, policy=POLICY,
                workload=WEB))
        else:
            assert isinstance(self.store, RedisSessionStore)
            await plant(self.store, sid, created_ago_ms=created_ago, last_ago_ms=last_ago,
                        idle_ms=idle, now_ms=now, workload=WEB)

    async def app_set(self, key: str) -> None:
        if isinstance(self.store, MemoryStore):
            self.store.app_values[key] = b"opaque"
        else:
            await self.redis.set(key, "opaque")

    async def app_has(self, key: str) -> bool:
        if isinstance(self.store, MemoryStore):
            return key in self.store.app_values
        return bool(await self.redis.exists(key))


@pytest.fixture(params=["redis", "memory"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """A factory: ``await backend(format, prefix)`` opens an empty store of either kind."""
    opened: list[SessionStore] = []

    async def open_store(fmt: str = "curfew", prefix: str = "curfew:") -> Backend:
        if request.param == "memory":
            store: SessionStore = MemoryStore(namespace=keys.curfew_namespace(fmt, prefix))
            opened.append(store)
            return Backend(store)
        url = request.getfixturevalue("redis_url")
        redis_store = RedisSessionStore.from_url(url, key_prefix=prefix, format=fmt,
                                                 socket_timeout=5)
        opened.append(redis_store)
        return Backend(redis_store, redis_store.client)

    yield open_store
    for store in opened:
        await store.aclose()


def sid(raw: str) -> str:
    return session_hash(SESSION_KEY.encode(), raw)


async def run(store: SessionStore, target: PurgeTarget, *, dry_run: bool = False) -> Summary:
    audit = Audit(io.StringIO(), dry_run=dry_run, store_format=target.format)
    return await Purge(store, target, audit=audit, progress=Progress(False),
                       session_key=SESSION_KEY.encode(), dry_run=dry_run).run()


async def curfew_sessions(b: Backend, now: int) -> None:
    """Ten live sessions, three idle, one past its absolute limit."""
    for i in range(10):
        await b.plant(sid(f"live-{i}"), created_ago=60 * MIN, last_ago=MIN, now=now)
    for i in range(3):
        await b.plant(sid(f"idle-{i}"), created_ago=60 * MIN, last_ago=20 * MIN, now=now)
    await b.plant(sid("old"), created_ago=500 * MIN, last_ago=MIN, now=now)


async def test_expired_curfew_sessions_are_removed_and_answer_their_reason_after(
    backend: Any,
) -> None:
    b = await backend()
    now = await b.store.server_time_ms()
    await curfew_sessions(b, now)
    summary = await run(b.store, build_target(purge_config()))
    assert summary.outcome == "ok", summary.message
    assert (summary.scanned, dict(summary.expired)) == (14, {"idle": 3, "absolute": 1})
    assert await b.store.count_sessions() == 10
    answers = [await b.store.check_and_touch(sid(raw), LIMITS, activity=True, policy=POLICY,
                                             workload=WEB) for raw in ("idle-0", "old", "live-0")]
    assert [a.decision for a in answers] == [
        Decision.EXPIRED_IDLE, Decision.EXPIRED_ABSOLUTE, Decision.ALLOWED]


async def test_sessions_past_shrunk_limits_are_tightened_and_become_tombstones(
    backend: Any,
) -> None:
    b = await backend()
    now = await b.store.server_time_ms()
    for i in range(6):
        await b.plant(sid(f"live-{i}"), created_ago=60 * MIN, last_ago=MIN, now=now)
    await b.plant(sid("ten-minutes"), created_ago=60 * MIN, last_ago=10 * MIN, now=now)
    target = build_target(purge_config(idle=300, workloads=(("web", 300, 28800),)))
    summary = await run(b.store, target)
    assert summary.outcome == "ok", summary.message
    assert dict(summary.expired) == {"tightened": 1}
    (record,) = await b.store.read_records([sid("ten-minutes")])
    assert record is not None
    assert record.expired is Decision.EXPIRED_IDLE


async def test_a_dry_run_counts_the_same_and_removes_nothing(backend: Any) -> None:
    b = await backend()
    now = await b.store.server_time_ms()
    await curfew_sessions(b, now)
    summary = await run(b.store, build_target(purge_config()), dry_run=True)
    assert dict(summary.expired) == {"idle": 3, "absolute": 1}
    assert "removed nothing" in summary.message
    assert await b.store.count_sessions() == 14
    assert await b.store.count_due(now) == 4


async def test_a_run_past_the_cap_is_aborted_and_removes_nothing(backend: Any) -> None:
    b = await backend()
    now = await b.store.server_time_ms()
    for i in range(4):
        await b.plant(sid(f"live-{i}"), created_ago=60 * MIN, last_ago=MIN, now=now)
    for i in range(6):
        await b.plant(sid(f"idle-{i}"), created_ago=60 * MIN, last_ago=20 * MIN, now=now)
    summary = await run(b.store, build_target(purge_config()))
    assert summary.outcome == "aborted"
    assert await b.store.count_sessions() == 10


@pytest.mark.parametrize("app_walk", ["Scan", "IndexOnly"])
async def test_joined_generic_sessions_expire_with_their_record_either_way(
    backend: Any, app_walk: str
) -> None:
    b = await backend("generic", "app:")
    now = await b.store.server_time_ms()
    raws = {name: secrets.token_hex(16) for name in
            ("live-0", "live-1", "live-2", "live-3", "idle", "tampered")}
    for name, raw in raws.items():
        await b.app_set(f"app:{raw}")
        last = 20 * MIN if name in ("idle", "tampered") else MIN
        await b.plant(sid(raw), created_ago=60 * MIN, last_ago=last, now=now)
        sealed = SEAL.seal(sid(raw), raw)
        if name == "tampered":
            sealed = SEAL.seal(sid("another"), raw)  # moved from another record
        assert await b.store.seal_app_id(sid(raw), sealed)
    target = build_target(purge_config(format="generic", key_prefix="app:", app_walk=app_walk))
    summary = await run(b.store, target)
    assert summary.outcome == "ok", summary.message
    present = {name: await b.app_has(f"app:{raw}") for name, raw in raws.items()}
    if app_walk == "Scan":
        # The walk joins by the keyed hash of each key's id: the seal plays no part.
        assert (dict(summary.expired), summary.malformed) == ({"idle": 2}, 0)
        assert present == {**dict.fromkeys(raws, True), "idle": False, "tampered": False}
    else:
        assert (dict(summary.expired), summary.malformed) == ({"idle": 1}, 1)
        assert present == {**dict.fromkeys(raws, True), "idle": False}
