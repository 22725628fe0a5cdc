"""The php-redis format's store calls against real Redis, one server and a 3-master Cluster:
records only for a PHP session that exists as a string, and an expiry that removes it with
delete_php_session.lua whatever its TTL (Curfew's record decided), never a key of another type."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from curfew.sessions.codec import build_codec
from curfew.sessions.identity import session_hash
from curfew.sessions.lifetime import Decision, Limits
from curfew.sessions.store import RedisSessionStore

KEY = b"test-session-key-0123456789"
PREFIX = "PHPREDIS_SESSION:"
PHP = build_codec("php-redis", PREFIX)
PHP_ID = "bc3s1er1oe2gtaa0pmril1hj4o"
LIMITS = Limits(idle_seconds=900, absolute_seconds=28800)


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[RedisSessionStore]:
    s = RedisSessionStore.from_url(store_url, key_prefix=PREFIX, format="php-redis",
                                   socket_timeout=5)
    yield s
    await s.aclose()


async def check(store: RedisSessionStore, app_id: str) -> Decision:
    verdict = await store.check_and_touch(
        session_hash(KEY, app_id), LIMITS, activity=True, policy="shop/storefront",
        workload="Deployment/shop/web", app_key=PHP.app_key(app_id),
    )
    return verdict.decision


async def test_a_php_session_gets_a_record_only_once_php_wrote_it_as_a_string(
    store: RedisSessionStore,
) -> None:
    assert await check(store, PHP_ID) is Decision.UNKNOWN
    await store.client.hset(PREFIX + PHP_ID, mapping={"user": "alice"})
    assert await check(store, PHP_ID) is Decision.UNKNOWN, "a hash is no PHP session"
    await store.client.delete(PREFIX + PHP_ID)
    await store.client.set(PREFIX + PHP_ID, 'user|s:5:"alice";', ex=1440)
    assert await check(store, PHP_ID) is Decision.NEW
    assert await check(store, PHP_ID) is Decision.ALLOWED


@pytest.mark.parametrize("script_cache", ["loaded", "flushed"])
async def test_expiry_removes_a_php_session_however_fresh_its_ttl(
    store: RedisSessionStore, script_cache: str
) -> None:
    await store.client.set(PREFIX + PHP_ID, 'user|s:5:"alice";', ex=1440)
    assert await check(store, PHP_ID) is Decision.NEW
    if script_cache == "flushed":
        await store.client.script_flush()
    app_key = PHP.app_key(PHP_ID)
    assert app_key is not None
    await store.expire(session_hash(KEY, PHP_ID), app_key=app_key)
    assert await store.client.exists(PREFIX + PHP_ID) == 0
    assert await check(store, PHP_ID) is Decision.EXPIRED_IDLE


async def test_expiry_leaves_a_key_of_another_type_under_phps_prefix(
    store: RedisSessionStore,
) -> None:
    await store.client.set(PREFIX + PHP_ID, 'user|s:5:"alice";', ex=1440)
    assert await check(store, PHP_ID) is Decision.NEW
    # The app replaced the key with a list since (or someone else's data sits there now).
    await store.client.delete(PREFIX + PHP_ID)
    await store.client.rpush(PREFIX + PHP_ID, "not a session")
    app_key = PHP.app_key(PHP_ID)
    assert app_key is not None
    await store.expire(session_hash(KEY, PHP_ID), app_key=app_key)
    assert await store.client.llen(PREFIX + PHP_ID) == 1
