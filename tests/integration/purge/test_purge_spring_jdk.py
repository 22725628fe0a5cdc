"""`curfew purge` over Spring Session records the JDK wrote (``fixtures.apps.spring``), in each of
Spring's layouts: active sessions stay whole, expired ones go with every key Spring keeps beside
them (principal names in modified UTF-8 included), and a dry run writes nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from curfew.sessions import jdk, keys
from fixtures.apps.spring import NAMESPACE, SpringRecord, SpringWriter
from fixtures.purge import curfew_purge, purge_config, write_config
from fixtures.sessions import MIN

PRINCIPALS = [
    ("attr", "ali\x00ce\U0001F600"),
    ("context-user", "\x00\ud55c\uae00"),
    ("context-string", "bob\U0001F600"),
    ("attr", "x\ud83d"),  # a lone surrogate: Spring's key has '?' in its place
]


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    c = aioredis.Redis.from_url(redis_url)
    yield c
    await c.aclose()


async def snapshot(client: aioredis.Redis) -> dict[bytes, object]:
    """Every key with its type, content and whether it expires: what a dry run must leave as it
    was. (Not DUMP: a hash in hashtable encoding dumps its fields in an order reads can change.)"""
    found: dict[bytes, object] = {}
    async for key in client.scan_iter(count=1000):
        kind = (await client.type(key)).decode()
        content = {
            "hash": client.hgetall, "set": client.smembers, "string": client.get,
            "zset": lambda k: client.zrange(k, 0, -1, withscores=True),
        }[kind](key)
        found[key] = (kind, await content, await client.pttl(key) > 0)
    return found


async def spring_keys(client: aioredis.Redis) -> set[bytes]:
    return {k async for k in client.scan_iter(match=f"{NAMESPACE}*")}


def sessions(now: int) -> tuple[list[SpringRecord], list[SpringRecord]]:
    """(active, expired) sessions over every layout and principal kind; the idle limit is 15
    minutes and the absolute one 8 hours (``purge_config``'s)."""
    active, expired = [], []
    for layout in ("indexed", "sorted", "reactive", "plain"):
        for kind, principal in PRINCIPALS:
            def rec(created_ago: int, last_ago: int, kind: str = kind, principal: str = principal,
                    layout: str = layout) -> SpringRecord:
                return SpringRecord(str(uuid.uuid4()), now - created_ago, now - last_ago,
                                    principal=principal, principal_kind=kind, layout=layout)
            # Kept alive only by the app's own touch (no Curfew record): lastAccessedTime.
            active += [rec(60 * MIN, 1 * MIN), rec(2 * MIN, 0), rec(470 * MIN, 14 * MIN)]
            expired += [rec(20 * MIN, 16 * MIN), rec(500 * MIN, 1 * MIN)]
    return active, expired


async def test_the_purge_keeps_active_spring_sessions_and_removes_expired_ones_whole(
    client: aioredis.Redis, redis_url: str, spring_writer: SpringWriter, tmp_path: Path
) -> None:
    now = await client.time()
    now_ms = now[0] * 1000 + now[1] // 1000
    active, expired = sessions(now_ms)
    spring_writer.write(redis_url, *active, *expired)
    run = curfew_purge(write_config(tmp_path, purge_config(
        format="spring-session", key_prefix=NAMESPACE)), redis_url)
    assert run.code == 0, run.stderr
    assert run.summary["expired"]["idle"] == len(expired) // 2
    assert run.summary["expired"]["absolute"] == len(expired) // 2
    left = await spring_keys(client)
    for s in expired:
        assert not any(s.id.encode() in k for k in left), "a key named by the session stayed"
    for s in active:
        assert f"{NAMESPACE}sessions:{s.id}".encode() in left
        if s.layout != "plain":
            assert f"{NAMESPACE}sessions:expires:{s.id}".encode() in left
        if s.layout == "reactive":
            assert await client.smembers(f"{NAMESPACE}sessions:{s.id}:idx") == {
                jdk.write_string(s.reactive_index)}
    # Set members: exactly the active sessions' are left, in every set Spring keeps.
    index: set[bytes] = set()
    reactive_index: set[bytes] = set()
    for _, principal in PRINCIPALS:
        index |= set(await client.smembers(keys.spring_principal_index_key_bytes(NAMESPACE,
                                                                                  principal)))
        key = SpringRecord("", 0, 0, principal=principal).reactive_index
        reactive_index |= set(await client.smembers(key.encode("utf-8", "replace")))
    assert index == {jdk.write_string(s.id) for s in active if s.layout in ("indexed", "sorted")}
    assert reactive_index == {jdk.write_string(s.id) for s in active if s.layout == "reactive"}
    minute_members: set[bytes] = set()
    async for key in client.scan_iter(match=f"{NAMESPACE}expirations:*"):
        minute_members |= set(await client.smembers(key))
    assert minute_members == {jdk.write_string("expires:" + s.id) for s in active
                              if s.layout == "indexed"}
    zset = set(await client.zrange(f"{NAMESPACE}sessions:expirations", 0, -1))
    assert zset == {jdk.write_string(s.id) for s in active if s.layout in ("sorted", "reactive")}


async def test_the_principal_index_key_is_named_as_springs_string_serializer_names_it(
    client: aioredis.Redis, redis_url: str, spring_writer: SpringWriter
) -> None:
    raw_id = str(uuid.uuid4())
    spring_writer.write(redis_url, SpringRecord(raw_id, 0, 0, principal="x\ud83d\x00",
                                                principal_kind="attr"))
    key = f"{NAMESPACE}index:org.springframework.session.FindByIndexNameSessionRepository" \
          ".PRINCIPAL_NAME_INDEX_NAME:x?\x00".encode()
    assert await client.smembers(key) == {jdk.write_string(raw_id)}
    assert keys.spring_principal_index_key_bytes(NAMESPACE, "x\ud83d\x00") == key


async def test_a_dry_run_over_spring_sessions_writes_nothing(
    client: aioredis.Redis, redis_url: str, spring_writer: SpringWriter, tmp_path: Path
) -> None:
    now = await client.time()
    active, expired = sessions(now[0] * 1000 + now[1] // 1000)
    spring_writer.write(redis_url, *active, *expired)
    before = await snapshot(client)
    run = curfew_purge(write_config(tmp_path, purge_config(
        format="spring-session", key_prefix=NAMESPACE)), redis_url, "--dry-run")
    assert run.code == 0, run.stderr
    assert sum(run.summary["expired"].values()) == len(expired)
    assert await snapshot(client) == before


async def test_the_reactive_repositorys_index_sets_beside_the_sessions_are_no_sessions(
    client: aioredis.Redis, redis_url: str, spring_writer: SpringWriter, tmp_path: Path
) -> None:
    now = await client.time()
    now_ms = now[0] * 1000 + now[1] // 1000
    # A principal ending in ":idx" makes an index key that looks like a session's index list.
    live = [SpringRecord(str(uuid.uuid4()), now_ms - MIN, now_ms, principal=name,
                         principal_kind="attr", layout="reactive")
            for name in ("alice", "bob:idx")]
    spring_writer.write(redis_url, *live)
    before = await snapshot(client)
    run = curfew_purge(write_config(tmp_path, purge_config(
        format="spring-session", key_prefix=NAMESPACE)), redis_url)
    assert run.code == 0, run.stderr
    assert run.summary["scanned"] == 2
    assert run.summary["malformed"] == 0
    assert run.summary["repaired"] == 0
    assert await snapshot(client) == before


async def test_a_reactive_session_whose_hash_is_gone_is_finished_by_its_index_list(
    client: aioredis.Redis, redis_url: str, spring_writer: SpringWriter, tmp_path: Path
) -> None:
    """What Spring's own deleteById leaves when it stops after the hash (its order: the shadow
    key, the hash, then the indexes and the sorted set): the next purge removes the rest."""
    now = await client.time()
    now_ms = now[0] * 1000 + now[1] // 1000
    half, live = (SpringRecord(str(uuid.uuid4()), now_ms - MIN, now_ms, principal="carol",
                               principal_kind="context-user", layout="reactive")
                  for _ in range(2))
    spring_writer.write(redis_url, half, live)
    await client.delete(f"{NAMESPACE}sessions:expires:{half.id}", f"{NAMESPACE}sessions:{half.id}")
    run = curfew_purge(write_config(tmp_path, purge_config(
        format="spring-session", key_prefix=NAMESPACE)), redis_url)
    assert run.code == 0, run.stderr
    assert run.summary["repaired"] == 1
    assert not any(half.id.encode() in k for k in await spring_keys(client))
    assert await client.smembers(live.reactive_index) == {jdk.write_string(live.id)}
    assert await client.zrange(f"{NAMESPACE}sessions:expirations", 0, -1) == [
        jdk.write_string(live.id)]
