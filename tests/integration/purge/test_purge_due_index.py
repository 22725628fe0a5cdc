"""`curfew purge` with `purge.appWalk: Off`: app sessions joined by a Curfew record are found
through the due index (the record's sealed app id names them) and removed whole, and nothing
else of the app's keyspace is walked."""

import io
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio.cluster import RedisCluster
from test_purge_app_formats import connect_value, spring_keys_of, store_for, write_spring

from curfew.purge.engine import Purge
from curfew.purge.report import Audit, Progress, Summary
from curfew.purge.target import PurgeTarget, build_target
from curfew.sessions import keys
from curfew.sessions.identity import AppIdSeal, session_hash
from curfew.sessions.lifetime import Decision
from curfew.sessions.store import RedisSessionStore
from fixtures.purge import SESSION_KEY, WEB, curfew_purge, purge_config, write_config
from fixtures.sessions import MIN, plant, read

SEAL = AppIdSeal(SESSION_KEY.encode())
DAY = 24 * 60 * MIN
SPRING = "spring:session:"

PREFIXES = {
    "spring-session": SPRING,
    "connect-redis": "sess:",
    "django": ":1:django.contrib.sessions.cache",
    "flask-session": "session:",
    "php-redis": "PHPREDIS_SESSION:",
    "generic": "app:",
}


def new_id(fmt: str) -> str:
    """A fresh id of the format's grammar (``codec.DEFAULT_ID_PATTERNS``)."""
    if fmt == "spring-session":
        return str(uuid.uuid4())
    if fmt == "connect-redis":
        return secrets.token_urlsafe(24)
    if fmt == "django":
        return secrets.token_hex(16)
    if fmt == "flask-session":
        return secrets.token_urlsafe(32)
    return secrets.token_hex(16)


def sid(raw: str) -> str:
    return session_hash(SESSION_KEY.encode(), raw)


def app_key(fmt: str, raw: str) -> str:
    key = keys.app_session_key(fmt, PREFIXES[fmt], raw)
    assert key is not None
    return key


async def write_app(client: Any, fmt: str, raw: str, now: int) -> None:
    """An app session as its library writes it, last used a minute ago by its own clock."""
    key = app_key(fmt, raw)
    if fmt == "spring-session":
        await write_spring(client, raw, now=now, created_ago=60, last_ago=1, principal="alice")
    elif fmt == "connect-redis":
        value = connect_value(expires_ms=now - MIN + DAY, max_age_ms=DAY, user="u")
        await client.set(key, value, px=DAY - MIN)
    elif fmt == "django":
        await client.set(key, json.dumps({"_auth_user_id": "1"}), px=14 * DAY - MIN)
    elif fmt == "flask-session":
        await client.set(key, b"\x81\xa4user\xa1u", px=31 * DAY - MIN)
    elif fmt == "php-redis":
        await client.set(key, 'user|s:1:"u";', px=1440_000 - MIN)
    else:
        await client.set(key, "opaque")


async def app_present(client: Any, fmt: str, raw: str, now: int) -> list[str]:
    if fmt == "spring-session":
        return await spring_keys_of(client, raw, "alice", now)
    return ["session"] if await client.exists(app_key(fmt, raw)) else []


async def joined(store: RedisSessionStore, raw: str, now: int, *, last_ago: int,
                 sealed: bool = True) -> None:
    """A Curfew record for the app session ``raw``, with its app id sealed in it as the
    sidecar writes it on first sight (``sealed``; without: a record from before)."""
    await plant(store, sid(raw), created_ago_ms=60 * MIN, last_ago_ms=last_ago * MIN,
                now_ms=now, workload=WEB)
    if sealed:
        assert await store.seal_app_id(sid(raw), SEAL.seal(sid(raw), raw))


async def live_connect_sessions(store: RedisSessionStore, now: int, count: int = 4) -> None:
    """``count`` connect-redis sessions active a minute ago, each joined to its sealed record:
    the run's live majority, which keeps its safety cap from tripping."""
    for _ in range(count):
        live = new_id("connect-redis")
        await write_app(store.client, "connect-redis", live, now)
        await joined(store, live, now, last_ago=1)


@pytest.fixture(params=list(PREFIXES))
def fmt(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
async def store(store_url: str, fmt: str) -> AsyncIterator[RedisSessionStore]:
    s = await store_for(store_url, fmt, PREFIXES[fmt])
    await s.load_scripts()
    yield s
    await s.aclose()


def index_only(tmp_path: Path, fmt: str) -> Path:
    return write_config(tmp_path, purge_config(format=fmt, key_prefix=PREFIXES[fmt],
                                               app_walk="IndexOnly"))


async def test_joined_sessions_that_expired_are_removed_whole_through_the_index(
    store: RedisSessionStore, store_url: str, tmp_path: Path, fmt: str
) -> None:
    client = store.client
    now = await store.server_time_ms()
    live = [new_id(fmt) for _ in range(6)]
    idle = [new_id(fmt) for _ in range(2)]
    unrecorded, unsealed = new_id(fmt), new_id(fmt)
    for raw in live:
        await write_app(client, fmt, raw, now)
        await joined(store, raw, now, last_ago=1)
    for raw in idle:
        await write_app(client, fmt, raw, now)
        await joined(store, raw, now, last_ago=20)
    # Without a record, or with one written before app ids were sealed: the index cannot name
    # the app's session, and with the walk off nothing else looks for it.
    await write_app(client, fmt, unrecorded, now)
    await write_app(client, fmt, unsealed, now)
    await joined(store, unsealed, now, last_ago=20, sealed=False)

    scans = await scan_calls(client)

    run = curfew_purge(index_only(tmp_path, fmt), store_url)

    assert run.code == 0, run.stderr
    assert await scan_calls(client) == scans  # the app's keyspace was not walked
    assert run.summary["expired"] == {"idle": 2, "absolute": 0, "tightened": 0}
    assert run.summary["scanned"] == 9  # the records, not the app's keys
    assert run.summary["malformed"] == 0
    assert "1 expired records named no app session" in run.summary["message"]
    for raw in idle:
        assert await app_present(client, fmt, raw, now) == [], raw
        record = await read(store, sid(raw))
        assert record is not None
        assert record.expired is Decision.EXPIRED_IDLE
    whole = await app_present(client, fmt, live[0], now)
    assert whole  # every key of a live session stays (all of Spring's companion keys)
    for raw in [*live, unrecorded, unsealed]:
        assert await app_present(client, fmt, raw, now) == whole, raw
    assert {e["session"] for e in run.events} == {sid(r) for r in idle}
    assert not any(raw in run.stdout + run.stderr for raw in [*idle, unsealed])


async def scan_calls(client: Any) -> int:
    """SCANs the store has answered (summed over the primaries of a Cluster)."""
    stats = await client.info("commandstats")
    if isinstance(client, RedisCluster):
        return sum(int(node.get("cmdstat_scan", {}).get("calls", 0)) for node in stats.values())
    return int(stats.get("cmdstat_scan", {}).get("calls", 0))


async def test_a_spring_session_is_removed_with_every_companion_key_and_index_member(
    store_url: str, tmp_path: Path
) -> None:
    store = await store_for(store_url, "spring-session", SPRING)
    try:
        client = store.client
        now = await store.server_time_ms()
        raws = [new_id("spring-session") for _ in range(3)]
        for raw in raws[:2]:
            await write_spring(client, raw, now=now, created_ago=60, last_ago=1, principal="bob")
            await joined(store, raw, now, last_ago=1)
        gone = raws[2]
        await write_spring(client, gone, now=now, created_ago=60, last_ago=1, principal="bob",
                           sorted_set=True)
        await joined(store, gone, now, last_ago=30)
        assert await spring_keys_of(client, gone, "bob", now) == [
            "session", "expires", "expirations-zset", "principal"]

        run = curfew_purge(index_only(tmp_path, "spring-session"), store_url)

        assert run.code == 0, run.stderr
        assert run.summary["expired"]["idle"] == 1
        assert await spring_keys_of(client, gone, "bob", now) == []
        for raw in raws[:2]:
            assert await spring_keys_of(client, raw, "bob", now) == [
                "session", "expires", "expirations", "principal"]
    finally:
        await store.aclose()


async def dump_all(client: Any) -> dict[bytes, tuple[Any, bool]]:
    """Every key of the store with its content and whether it has a TTL (not DUMP: a hash
    stored as a hashtable serializes in an order a read may change)."""
    found: dict[bytes, tuple[Any, bool]] = {}
    async for key in client.scan_iter(count=1000):  # every primary, on a Cluster
        kind = (await client.type(key)).decode()
        content: Any = {
            "string": client.get,
            "hash": client.hgetall,
            "set": client.smembers,
        }.get(kind, lambda k: client.zrange(k, 0, -1, withscores=True))(key)
        found[key] = (kind, await content, await client.pttl(key) >= 0)
    return found


async def test_a_dry_run_over_the_index_writes_nothing(
    store: RedisSessionStore, store_url: str, tmp_path: Path, fmt: str
) -> None:
    client = store.client
    now = await store.server_time_ms()
    raws = [new_id(fmt) for _ in range(5)]
    for i, raw in enumerate(raws):
        await write_app(client, fmt, raw, now)
        await joined(store, raw, now, last_ago=30 if i < 2 else 1)
    before = await dump_all(client)

    run = curfew_purge(index_only(tmp_path, fmt), store_url, "--dry-run")

    assert run.code == 0, run.stderr
    assert run.summary["expired"]["idle"] == 2
    assert "would remove 2 sessions, removed nothing" in run.summary["message"]
    assert await dump_all(client) == before


async def test_the_sealed_field_never_holds_the_raw_id(
    store: RedisSessionStore, fmt: str
) -> None:
    client = store.client
    now = await store.server_time_ms()
    raw = new_id(fmt)
    await write_app(client, fmt, raw, now)
    await joined(store, raw, now, last_ago=1)
    record = keys.record_key(store.namespace, sid(raw))
    fields = await client.hgetall(record)
    sealed = fields[b"s"]
    dumped = await client.dump(record)
    for form in (raw.encode(), raw.encode().hex().encode(), raw.upper().encode()):
        assert form not in dumped
        assert all(form not in value for value in fields.values())
    assert SEAL.open(sid(raw), sealed.decode()) == raw
    # Sealed twice, the same id reads differently (a fresh nonce): equal ids are not linkable.
    assert SEAL.seal(sid(raw), raw) != SEAL.seal(sid(raw), raw)
    # A seal is written once: a second one is refused.
    assert not await store.seal_app_id(sid(raw), SEAL.seal(sid(raw), raw))
    assert (await client.hget(record, "s")) == sealed


def tamper_flip(sealed: str) -> str:
    """One character of the ciphertext changed (still valid base64)."""
    i = len(sealed) // 2
    return sealed[:i] + ("A" if sealed[i] != "A" else "B") + sealed[i + 1:]


@pytest.mark.parametrize(("name", "tamper"), [
    ("a flipped ciphertext byte", tamper_flip),
    ("another record's seal", lambda _s: SEAL.seal(sid("some-other-session"), "x" * 32)),
    ("a raw id in place of the seal", lambda _s: "1.not-base64!"),
    ("an unknown version", lambda s: "2" + s[1:]),
    ("an empty field", lambda _s: ""),
])
async def test_a_tampered_sealed_field_is_malformed_and_deletes_nothing(
    store_url: str, tmp_path: Path, name: str, tamper: Callable[[str], str]
) -> None:
    fmt = "connect-redis"
    store = await store_for(store_url, fmt, PREFIXES[fmt])
    try:
        client = store.client
        now = await store.server_time_ms()
        await live_connect_sessions(store, now)
        raw = new_id(fmt)
        await write_app(client, fmt, raw, now)
        await joined(store, raw, now, last_ago=30)
        record = keys.record_key(store.namespace, sid(raw))
        await client.hset(record, "s", tamper((await client.hget(record, "s")).decode()))

        run = curfew_purge(index_only(tmp_path, fmt), store_url)

        assert run.code == 0, (name, run.stderr)
        assert run.summary["malformed"] == 1, name
        assert run.summary["expired"] == {"idle": 0, "absolute": 0, "tightened": 0}
        assert await client.exists(app_key(fmt, raw)) == 1
        kept = await read(store, sid(raw))
        assert kept is not None
        assert kept.expired is None  # the record is as it was: only its index entry went
        assert raw not in run.stdout + run.stderr
    finally:
        await store.aclose()


async def test_a_joined_session_the_app_touches_during_the_run_stays(
    store_url: str, tmp_path: Path
) -> None:
    fmt = "spring-session"
    store = await store_for(store_url, fmt, SPRING)
    try:
        client = store.client
        now = await store.server_time_ms()
        for _ in range(4):
            live = new_id(fmt)
            await write_spring(client, live, now=now, created_ago=60, last_ago=1)
            await joined(store, live, now, last_ago=1)
        raw = new_id(fmt)
        await write_spring(client, raw, now=now, created_ago=60, last_ago=1, principal="alice")
        await joined(store, raw, now, last_ago=30)
        target = build_target(purge_config(format=fmt, key_prefix=SPRING, app_walk="IndexOnly"))
        removing = store.purge_records

        async def after_the_app_touched(items: Any) -> Any:
            # Judged expired by its record; then a request reached the app, which wrote the
            # session's lastAccessedTime before the run came to remove it.
            key = app_key(fmt, raw)
            last = await client.hget(key, "lastAccessedTime")
            await client.hset(key, "lastAccessedTime", last[:-1] + bytes([last[-1] ^ 1]))
            return await removing(items)

        store.purge_records = after_the_app_touched  # type: ignore[method-assign]
        summary = await run_purge(store, target)

        assert summary.outcome == "ok", summary.message
        assert summary.expired["idle"] == 0
        assert await spring_keys_of(client, raw, "alice", now) == [
            "session", "expires", "expirations", "principal"]
    finally:
        await store.aclose()


async def test_a_tightened_joined_session_the_sidecar_touches_during_the_run_stays(
    store_url: str, tmp_path: Path
) -> None:
    fmt = "connect-redis"
    store = await store_for(store_url, fmt, PREFIXES[fmt])
    try:
        client = store.client
        now = await store.server_time_ms()
        await live_connect_sessions(store, now)
        # Recorded with 15 minutes idle, idle for 10: past the workload's current 5 minutes.
        raw = new_id(fmt)
        await write_app(client, fmt, raw, now)
        await joined(store, raw, now, last_ago=10)
        target = build_target(purge_config(format=fmt, key_prefix="sess:", app_walk="IndexOnly",
                                           idle=300, workloads=(("web", 300, 28800),)))
        removing = store.purge_records

        async def after_the_user_came_back(items: Any) -> Any:
            await client.hset(keys.record_key(store.namespace, sid(raw)), "l",
                              await store.server_time_ms())
            return await removing(items)

        store.purge_records = after_the_user_came_back  # type: ignore[method-assign]
        summary = await run_purge(store, target)

        assert summary.outcome == "ok", summary.message
        assert summary.expired["tightened"] == 0
        assert await client.exists(app_key(fmt, raw)) == 1
        record = await read(store, sid(raw))
        assert record is not None
        assert record.expired is None
    finally:
        await store.aclose()


async def run_purge(store: RedisSessionStore, target: PurgeTarget) -> Summary:
    """One run in this process, so a test can step in between its gather and its removal."""
    audit = Audit(io.StringIO(), dry_run=False, store_format=target.format)
    return await Purge(store, target, audit=audit, progress=Progress(False),
                       session_key=SESSION_KEY.encode()).run()
