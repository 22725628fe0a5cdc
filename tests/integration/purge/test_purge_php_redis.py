"""`curfew purge` over PHP's own sessions: a real PHP app (php-cli, phpredis) writes them, the
key's TTL is their clock (renewed by PHP with EXPIRE under lazy_write, which leaves the value as
it was), and the removal re-checks that TTL atomically. Planted sessions are written as phpredis
writes them (``SETEX <key> <gc_maxlifetime> <data>``), on one server and on a Cluster."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest

from curfew.api.config import PurgeConfig
from curfew.purge.target import build_target
from curfew.sessions.apps import AppSessions
from curfew.sessions.identity import session_hash
from curfew.sessions.lifetime import Decision
from curfew.sessions.store import RedisSessionStore
from fixtures.apps.php import PhpApp, start_php_app
from fixtures.purge import SESSION_KEY, WEB, curfew_purge, purge_config, write_config
from fixtures.sessions import MIN, plant, read

PREFIX = "PHPREDIS_SESSION:"
LIFETIME = 60
"""session.gc_maxlifetime of the app, and the policy's store.appTTL."""


def sid(raw: str) -> str:
    return session_hash(SESSION_KEY.encode(), raw)


def php_config(*, idle: float, absolute: float = 28800, lifetime: float = LIFETIME,
               prefix: str = PREFIX, max_fraction: float = 0.5) -> PurgeConfig:
    doc = purge_config(format="php-redis", key_prefix=prefix, idle=idle, absolute=absolute,
                       workloads=(("web", idle, absolute),), max_fraction=max_fraction)
    store = doc.store.model_copy(update={"app_ttl_seconds": lifetime})
    return doc.model_copy(update={"store": store}).sealed()


@pytest.fixture
def php_app(redis_url: str) -> Iterator[PhpApp]:
    port = urlsplit(redis_url).port
    assert port is not None
    app = start_php_app(port, lifetime=LIFETIME)
    yield app
    app.stop()


@pytest.fixture
async def php_store(redis_url: str) -> AsyncIterator[RedisSessionStore]:
    store = RedisSessionStore.from_url(redis_url, key_prefix=PREFIX, format="php-redis",
                                       socket_timeout=5)
    yield store
    await store.aclose()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        yield session


async def sign_in(http: aiohttp.ClientSession, php: PhpApp, user: str) -> str:
    async with http.get(php.url + "/signin", params={"user": user}) as r:
        assert r.status == 200, await r.text()
        jar: SimpleCookie = SimpleCookie()
        for value in r.headers.getall("Set-Cookie"):
            jar.load(value)
    return jar["PHPSESSID"].value


async def signed_in_as(http: aiohttp.ClientSession, php: PhpApp, session: str) -> str | None:
    async with http.get(php.url + "/page", headers={"Cookie": f"PHPSESSID={session}"}) as r:
        text = await r.text()
    return text.removeprefix("hello ").strip() if r.status == 200 else None


async def dirty(store: RedisSessionStore) -> int:
    """Redis's count of writes to the dataset since start (no save is ever configured)."""
    info = await store.client.info("persistence")
    return int(info["rdb_changes_since_last_save"])


async def test_the_purge_keeps_sessions_php_renewed_and_removes_idle_ones_a_dry_run_nothing(
    php_app: PhpApp, php_store: RedisSessionStore, http: aiohttp.ClientSession, redis_url: str,
    tmp_path: Path,
) -> None:
    client = php_store.client
    users = [f"user{i}" for i in range(6)]
    sessions = {user: await sign_in(http, php_app, user) for user in users}
    active, idle = users[:4], users[4:]

    async def use_active_sessions() -> None:
        for user in active:
            before = await client.get(PREFIX + sessions[user])
            assert await signed_in_as(http, php_app, sessions[user]) == user
            # lazy_write: the unchanged session got only an EXPIRE, its value is as it was.
            assert await client.get(PREFIX + sessions[user]) == before
            assert await client.pttl(PREFIX + sessions[user]) > (LIFETIME - 2) * 1000

    # Seconds, not less: each run is a process of its own, slow to start on a busy machine, and
    # the active sessions must still be active when the second run judges them.
    for _ in range(2):
        await asyncio.sleep(2.6)
        await use_active_sessions()
    # The idle ones: 5.2 s without a request, past the 5 s limit; the active ones were just used.
    config = write_config(tmp_path, php_config(idle=5))

    writes = await dirty(php_store)
    run = curfew_purge(config, redis_url, "--dry-run")
    assert run.code == 0, run.stderr
    assert run.summary["scanned"] == 6
    assert run.summary["expired"] == {"idle": 2, "absolute": 0, "tightened": 0}
    assert await dirty(php_store) == writes, "a dry run writes nothing"

    await use_active_sessions()
    run = curfew_purge(config, redis_url)
    assert run.code == 0, run.stderr
    assert run.summary["expired"] == {"idle": 2, "absolute": 0, "tightened": 0}
    for user in idle:
        assert await client.exists(PREFIX + sessions[user]) == 0
        assert await signed_in_as(http, php_app, sessions[user]) is None
    for user in active:
        assert await signed_in_as(http, php_app, sessions[user]) == user
    assert not [k async for k in client.scan_iter(match=PREFIX + "{*")], "Curfew keys in PHP's"


async def test_a_curfew_record_decides_for_the_php_session_it_joins(
    php_app: PhpApp, php_store: RedisSessionStore, http: aiohttp.ClientSession, redis_url: str,
    tmp_path: Path,
) -> None:
    sessions = {user: await sign_in(http, php_app, user) for user in ("a", "b", "c", "d", "e")}
    now = await php_store.server_time_ms()
    # Fresh in PHP (just signed in), yet begun 9 hours ago by Curfew's record: absolute.
    await plant(php_store, sid(sessions["a"]), created_ago_ms=540 * MIN, last_ago_ms=MIN,
                now_ms=now, workload=WEB)
    # Active by Curfew's record, fresh in PHP: kept.
    await plant(php_store, sid(sessions["b"]), created_ago_ms=60 * MIN, last_ago_ms=MIN,
                now_ms=now, workload=WEB)
    run = curfew_purge(write_config(tmp_path, php_config(idle=900)), redis_url)
    assert run.code == 0, run.stderr
    assert run.summary["expired"] == {"idle": 0, "absolute": 1, "tightened": 0}
    assert await signed_in_as(http, php_app, sessions["a"]) is None
    tomb = await read(php_store, sid(sessions["a"]))
    assert tomb is not None
    assert tomb.expired is Decision.EXPIRED_ABSOLUTE
    for user in ("b", "c", "d", "e"):
        assert await signed_in_as(http, php_app, sessions[user]) == user


async def test_a_session_php_renews_after_its_ttl_was_judged_stays_unless_a_record_decided(
    php_app: PhpApp, php_store: RedisSessionStore, http: aiohttp.ClientSession,
) -> None:
    session = await sign_in(http, php_app, "alice")
    await asyncio.sleep(1.2)
    target = build_target(php_config(idle=1))
    apps = AppSessions(php_store.client, format="php-redis", prefix=PREFIX,
                       id_pattern=target.id_pattern, app_ttl_ms=target.app_ttl_ms)
    await php_store.load_scripts()
    found = [s async for batch in apps.walk() for s in batch.sessions]
    assert [s.raw_id for s in found] == [session]
    assert found[0].php is not None
    assert found[0].php.last_activity_ms is not None
    assert await php_store.server_time_ms() - found[0].php.last_activity_ms >= 1100
    # The user comes back between the judgement and the removal: PHP renews the TTL.
    assert await signed_in_as(http, php_app, session) == "alice"
    assert await apps.remove(found) == [False]
    assert await signed_in_as(http, php_app, session) == "alice"
    # When Curfew's record decided (its own guard ran first), PHP's renewal does not save it.
    assert await apps.remove(found, app_clock=[False]) == [True]
    assert await signed_in_as(http, php_app, session) is None


async def test_only_phps_own_sessions_are_walked(store_url: str, tmp_path: Path) -> None:
    store = RedisSessionStore.from_url(store_url, key_prefix=PREFIX, format="php-redis",
                                       socket_timeout=5)
    try:
        client = store.client
        old = (LIFETIME - 30) * 1000  # 30 s since PHP last wrote or renewed them
        live = [f"{i:02d}q4nr0v8dfbam5tk0ohp2e9k5sq" for i in range(8)]
        for raw in live:
            await client.set(PREFIX + raw, 'user|s:5:"alice";', px=LIFETIME * 1000 - 500)
        await client.set(PREFIX + "idle0v8dfbam5tk0ohp2e9k5sq", 'user|s:1:"x";', px=old)
        # phpredis's lock of a session, as old: no session of its own.
        await client.set(PREFIX + "idle0v8dfbam5tk0ohp2e9k5sq_LOCK", "lock-secret", px=old)
        # Under PHP's prefix but no session: another type, no TTL, or no id of the grammar.
        await client.hset(PREFIX + "hash0v8dfbam5tk0ohp2e9k5sq", mapping={"a": "b"})
        await client.pexpire(PREFIX + "hash0v8dfbam5tk0ohp2e9k5sq", old)
        await client.set(PREFIX + "keep0v8dfbam5tk0ohp2e9k5sq", "no ttl")
        await client.set(PREFIX + "config", "x", px=old)
        run = curfew_purge(write_config(tmp_path, php_config(idle=10)), store_url)
        assert run.code == 0, run.stderr
        assert run.summary["scanned"] == 10, "eight live, one idle, one without a TTL"
        assert run.summary["expired"] == {"idle": 1, "absolute": 0, "tightened": 0}
        assert await client.exists(PREFIX + "idle0v8dfbam5tk0ohp2e9k5sq") == 0
        assert await client.exists(*[PREFIX + raw for raw in live]) == 8
        for key in ("idle0v8dfbam5tk0ohp2e9k5sq_LOCK", "hash0v8dfbam5tk0ohp2e9k5sq",
                    "keep0v8dfbam5tk0ohp2e9k5sq", "config"):
            assert await client.exists(PREFIX + key) == 1, key
    finally:
        await store.aclose()


async def test_a_custom_prefix_and_the_php_serialize_handler_work_alike(
    redis_url: str, http: aiohttp.ClientSession, tmp_path: Path,
) -> None:
    port = urlsplit(redis_url).port
    assert port is not None
    php = start_php_app(port, lifetime=LIFETIME, prefix="shop:sess:", serializer="php_serialize")
    try:
        sessions = [await sign_in(http, php, f"u{i}") for i in range(1, 4)]
        store = RedisSessionStore.from_url(redis_url, key_prefix="shop:sess:", format="php-redis")
        try:
            value = await store.client.get("shop:sess:" + sessions[0])
            assert value == b'a:1:{s:4:"user";s:2:"u1";}', "php_serialize wrote it"
            await asyncio.sleep(4.2)
            sessions.insert(0, await sign_in(http, php, "u0"))
            run = curfew_purge(
                write_config(tmp_path, php_config(idle=4, prefix="shop:sess:", max_fraction=1)),
                redis_url)
            assert run.code == 0, run.stderr
            assert run.summary["expired"]["idle"] == 3
            assert await signed_in_as(http, php, sessions[0]) == "u0"
            assert [await signed_in_as(http, php, s) for s in sessions[1:]] == [None] * 3
        finally:
            await store.aclose()
    finally:
        php.stop()
