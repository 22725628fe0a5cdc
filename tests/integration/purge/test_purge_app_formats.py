"""`curfew purge` over the apps' own sessions: Spring Session (JDK and JSON serializers),
connect-redis and generic, each written byte for byte as its library writes it."""

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from curfew.sessions.identity import session_hash
from curfew.sessions.lifetime import Decision
from curfew.sessions.store import RedisSessionStore
from fixtures.purge import (
    SESSION_KEY,
    WEB,
    curfew_purge,
    iso_ms,
    jdk_integer,
    jdk_long,
    jdk_string,
    purge_config,
    write_config,
)
from fixtures.sessions import MIN, plant, read

SPRING = "spring:session:"
PRINCIPAL_INDEX = (
    SPRING + "index:org.springframework.session.FindByIndexNameSessionRepository"
    ".PRINCIPAL_NAME_INDEX_NAME:"
)
PRINCIPAL_ATTR = (
    "sessionAttr:org.springframework.session.FindByIndexNameSessionRepository"
    ".PRINCIPAL_NAME_INDEX_NAME"
)


def sid(raw: str) -> str:
    return session_hash(SESSION_KEY.encode(), raw)


async def store_for(url: str, fmt: str, prefix: str) -> RedisSessionStore:
    return RedisSessionStore.from_url(url, key_prefix=prefix, format=fmt, socket_timeout=5)


@pytest.fixture
async def spring_store(store_url: str) -> AsyncIterator[RedisSessionStore]:
    s = await store_for(store_url, "spring-session", SPRING)
    yield s
    await s.aclose()


async def write_spring(
    client: Any,
    raw_id: str,
    *,
    now: int,
    created_ago: int,
    last_ago: int,
    max_inactive: int = 1800,
    principal: str | None = None,
    serializer: str = "jdk",
    sorted_set: bool = False,
) -> None:
    """A session as Spring Session's RedisIndexedSessionRepository saves it: the hash, the
    ``sessions:expires:<id>`` key, the ``expirations:<minute>`` set member (``sorted_set``: the
    3.4+ ``sessions:expirations`` sorted set's instead) and the principal index. Keys whose TTL
    would already have passed are written without one."""
    created, last = now - created_ago * MIN, now - last_ago * MIN
    if serializer == "jdk":
        enc_long, enc_int, enc_str = jdk_long, jdk_integer, jdk_string
    else:  # GenericJackson2JsonRedisSerializer: numbers as JSON numbers, strings as JSON strings
        enc_long = enc_int = lambda n: str(n).encode()
        enc_str = lambda s: json.dumps(s).encode()  # noqa: E731
    key = f"{SPRING}sessions:{raw_id}"
    mapping = {
        "creationTime": enc_long(created),
        "lastAccessedTime": enc_long(last),
        "maxInactiveInterval": enc_int(max_inactive),
        "sessionAttr:cart": enc_str("3 items"),
    }
    if principal:
        mapping[PRINCIPAL_ATTR] = enc_str(principal)
    await client.hset(key, mapping=mapping)
    expires_at = last + max_inactive * 1000
    if expires_at + 5 * MIN > now:
        await client.pexpireat(key, expires_at + 5 * MIN)
    expires_key = f"{SPRING}sessions:expires:{raw_id}"
    await client.append(expires_key, "")
    if expires_at > now:
        await client.pexpireat(expires_key, expires_at)
    if sorted_set:
        await client.zadd(f"{SPRING}sessions:expirations", {enc_str(raw_id): expires_at})
    else:
        minute = (expires_at // 60_000 + 1) * 60_000
        await client.sadd(f"{SPRING}expirations:{minute}", enc_str(f"expires:{raw_id}"))
    if principal:
        await client.sadd(PRINCIPAL_INDEX + principal, enc_str(raw_id))


async def spring_keys_of(client: Any, raw_id: str, principal: str | None, now: int) -> list[str]:
    """Which of a Spring session's keys and set members still exist."""
    present = []
    if await client.exists(f"{SPRING}sessions:{raw_id}"):
        present.append("session")
    if await client.exists(f"{SPRING}sessions:expires:{raw_id}"):
        present.append("expires")
    for serialized in (jdk_string(f"expires:{raw_id}"), json.dumps(f"expires:{raw_id}").encode()):
        for minute_offset in range(-600, 60):
            minute = (now // 60_000 + minute_offset) * 60_000
            if await client.sismember(f"{SPRING}expirations:{minute}", serialized):
                present.append("expirations")
    for serialized in (jdk_string(raw_id), json.dumps(raw_id).encode()):
        if await client.zscore(f"{SPRING}sessions:expirations", serialized) is not None:
            present.append("expirations-zset")
    if principal:
        for serialized in (jdk_string(raw_id), json.dumps(raw_id).encode()):
            if await client.sismember(PRINCIPAL_INDEX + principal, serialized):
                present.append("principal")
    return present


@pytest.mark.parametrize("serializer", ["jdk", "json"])
async def test_spring_sessions_in_the_sorted_set_expiration_store_leave_it_when_removed(
    spring_store: RedisSessionStore, store_url: str, tmp_path: Path, serializer: str
) -> None:
    client = spring_store.client
    now = await spring_store.server_time_ms()
    w = {"now": now, "serializer": serializer, "sorted_set": True}
    for i in range(3):
        await write_spring(client, f"live-{i}", created_ago=60, last_ago=1, **w)
    await write_spring(client, "idle", created_ago=60, last_ago=20, **w)
    run = curfew_purge(
        write_config(tmp_path, purge_config(format="spring-session", key_prefix=SPRING)),
        store_url,
    )
    assert run.code == 0, run.stderr
    # The sorted set itself is not taken for a session.
    assert run.summary["scanned"] == 4
    assert run.summary["expired"] == {"idle": 1, "absolute": 0, "tightened": 0}
    assert await spring_keys_of(client, "idle", None, now) == []
    for i in range(3):
        assert await spring_keys_of(client, f"live-{i}", None, now) \
            == ["session", "expires", "expirations-zset"]


@pytest.mark.parametrize("serializer", ["jdk", "json"])
async def test_spring_sessions_past_a_limit_are_removed_with_every_key_spring_keeps(
    spring_store: RedisSessionStore, store_url: str, tmp_path: Path, serializer: str
) -> None:
    client = spring_store.client
    now = await spring_store.server_time_ms()
    w = {"now": now, "serializer": serializer}
    for i in range(8):
        await write_spring(client, f"live-{i}", created_ago=60, last_ago=1, **w)
    await write_spring(client, "idle", created_ago=60, last_ago=20, principal="alice", **w)
    await write_spring(client, "own-limit", created_ago=60, last_ago=10, max_inactive=300, **w)
    await write_spring(client, "absolute", created_ago=9 * 60, last_ago=1, **w)
    # The app saw a request a minute ago (a poll), but Curfew, whose activity rules exclude
    # polls, last saw activity 20 minutes ago: Curfew's record decides.
    await write_spring(client, "curfew-idle", created_ago=60, last_ago=1, **w)
    await plant(spring_store, sid("curfew-idle"), created_ago_ms=60 * MIN,
                last_ago_ms=20 * MIN, now_ms=now, workload=WEB)
    await write_spring(client, "curfew-live", created_ago=60, last_ago=1, **w)
    await plant(spring_store, sid("curfew-live"), created_ago_ms=60 * MIN,
                last_ago_ms=1 * MIN, now_ms=now, workload=WEB)

    run = curfew_purge(
        write_config(tmp_path, purge_config(format="spring-session", key_prefix=SPRING)),
        store_url,
    )
    assert run.code == 0, run.stderr
    assert run.summary["expired"] == {"idle": 3, "absolute": 1, "tightened": 0}
    assert run.summary["scanned"] == 13
    for raw in ("idle", "own-limit", "absolute", "curfew-idle"):
        principal = "alice" if raw == "idle" else None
        assert await spring_keys_of(client, raw, principal, now) == [], raw
    for raw in [f"live-{i}" for i in range(8)] + ["curfew-live"]:
        assert await spring_keys_of(client, raw, None, now) == ["session", "expires", "expirations"]
    tomb = await read(spring_store, sid("curfew-idle"))
    assert tomb is not None
    assert tomb.expired is Decision.EXPIRED_IDLE
    assert {e["session"] for e in run.events} == {
        sid(r) for r in ("idle", "own-limit", "absolute", "curfew-idle")
    }
    assert "own-limit" not in run.stdout + run.stderr


async def test_a_spring_session_curfew_already_expired_is_removed(
    spring_store: RedisSessionStore, store_url: str, tmp_path: Path
) -> None:
    client = spring_store.client
    now = await spring_store.server_time_ms()
    for i in range(4):
        await write_spring(client, f"live-{i}", now=now, created_ago=60, last_ago=1)
    await write_spring(client, "logged-out", now=now, created_ago=60, last_ago=1)
    await plant(spring_store, sid("logged-out"), created_ago_ms=60 * MIN, last_ago_ms=1 * MIN,
                now_ms=now)
    await spring_store.expire(sid("logged-out"), reason=Decision.EXPIRED_ABSOLUTE)
    run = curfew_purge(
        write_config(tmp_path, purge_config(format="spring-session", key_prefix=SPRING)),
        store_url,
    )
    assert run.summary["expired"] == {"idle": 0, "absolute": 1, "tightened": 0}
    assert await spring_keys_of(client, "logged-out", None, now) == []


async def test_an_orphaned_spring_expiry_key_is_repaired(
    spring_store: RedisSessionStore, store_url: str, tmp_path: Path
) -> None:
    client = spring_store.client
    now = await spring_store.server_time_ms()
    for i in range(3):
        await write_spring(client, f"live-{i}", now=now, created_ago=60, last_ago=1)
    # What a run stopped between deleting the hash and the expiry key leaves behind.
    await client.append(f"{SPRING}sessions:expires:half-deleted", "")
    run = curfew_purge(
        write_config(tmp_path, purge_config(format="spring-session", key_prefix=SPRING)),
        store_url,
    )
    assert run.summary["repaired"] == 1
    assert not await client.exists(f"{SPRING}sessions:expires:half-deleted")


def connect_value(*, expires_ms: int | None, max_age_ms: int | None, user: str) -> str:
    """express-session's JSON.stringify(session), as connect-redis SETs it."""
    cookie: dict[str, Any] = {"originalMaxAge": max_age_ms}
    if expires_ms is not None:
        cookie["expires"] = iso_ms(expires_ms)
    cookie.update({"httpOnly": True, "path": "/"})
    return json.dumps({"cookie": cookie, "user": user}, separators=(",", ":"))


async def test_connect_redis_sessions_are_judged_by_expires_minus_their_max_age(
    store_url: str, tmp_path: Path
) -> None:
    store = await store_for(store_url, "connect-redis", "sess:")
    try:
        client = store.client
        now = await store.server_time_ms()
        day = 24 * 60 * MIN
        for i in range(6):  # rolling sessions, last request a minute ago
            value = connect_value(expires_ms=now - MIN + day, max_age_ms=day, user=f"u{i}")
            await client.set(f"sess:live-{i}", value, px=day - MIN)
        await client.set(
            "sess:idle", connect_value(expires_ms=now - 20 * MIN + day, max_age_ms=day, user="x"),
            px=day - 20 * MIN,
        )
        # A browser-session cookie has no expiry: only Curfew's record can judge it.
        await client.set("sess:browser", connect_value(expires_ms=None, max_age_ms=None, user="b"))
        await client.set("sess:browser-idle", connect_value(expires_ms=None, max_age_ms=None,
                                                            user="c"))
        await plant(store, sid("browser-idle"), created_ago_ms=60 * MIN, last_ago_ms=30 * MIN,
                    now_ms=now, workload=WEB)
        run = curfew_purge(
            write_config(tmp_path, purge_config(format="connect-redis", key_prefix="sess:")),
            store_url,
        )
        assert run.code == 0, run.stderr
        assert run.summary["expired"] == {"idle": 2, "absolute": 0, "tightened": 0}
        assert run.summary["scanned"] == 9
        assert not await client.exists("sess:idle", "sess:browser-idle")
        assert await client.exists("sess:browser") == 1
        assert await client.exists(*[f"sess:live-{i}" for i in range(6)]) == 6
        assert not [k async for k in client.scan_iter(match="sess:{*")], "Curfew keys in sess:"
    finally:
        await store.aclose()


async def test_generic_sessions_go_with_curfews_record_and_stay_without_one(
    store_url: str, tmp_path: Path
) -> None:
    store = await store_for(store_url, "generic", "session:")
    try:
        client = store.client
        now = await store.server_time_ms()
        for i in range(4):
            await client.hset(f"session:live-{i}", mapping={"user": f"u{i}"})
            await plant(store, sid(f"live-{i}"), created_ago_ms=60 * MIN, last_ago_ms=MIN,
                        now_ms=now, workload=WEB)
        await client.set("session:unknown", "opaque")
        await client.set("session:idle", "opaque")
        await plant(store, sid("idle"), created_ago_ms=60 * MIN, last_ago_ms=20 * MIN,
                    now_ms=now, workload=WEB)
        run = curfew_purge(
            write_config(tmp_path, purge_config(format="generic", key_prefix="session:")),
            store_url,
        )
        assert run.code == 0, run.stderr
        assert run.summary["expired"] == {"idle": 1, "absolute": 0, "tightened": 0}
        assert not await client.exists("session:idle")
        assert await client.exists("session:unknown") == 1
        assert await client.exists(*[f"session:live-{i}" for i in range(4)]) == 4
        tomb = await read(store, sid("idle"))
        assert tomb is not None
        assert tomb.expired is Decision.EXPIRED_IDLE
    finally:
        await store.aclose()


async def test_an_app_format_without_the_session_key_is_a_usage_error(
    store_url: str, tmp_path: Path
) -> None:
    run = curfew_purge(
        write_config(tmp_path, purge_config(format="generic", key_prefix="session:")),
        store_url,
        session_key=None,
    )
    assert run.code == 2
    assert "CURFEW_SESSION_KEY" in run.stderr
    assert "Traceback" not in run.stderr
