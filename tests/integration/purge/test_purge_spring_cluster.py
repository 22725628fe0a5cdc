"""Spring Session on a real 3-master Redis Cluster, records written by the JDK
(``fixtures.apps.spring``) into a scratch redis-server and moved over byte for byte (DUMP and
RESTORE): a session's keys lie in different slots, so its removal goes per slot, the hash first
and the keys that name the session by its id last. The purge and the sidecar's expiry remove
the whole session, and a removal stopped between its steps is finished by the next purge."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from redis.crc import key_slot

from curfew.sessions import jdk, keys, spring
from curfew.sessions.codec import build_codec
from curfew.sessions.identity import session_hash
from curfew.sessions.lifetime import Decision
from curfew.sessions.store import (
    DELETE_SPRING_COMPANION,
    DELETE_SPRING_SESSION,
    RedisSessionStore,
    remove_spring_companions,
)
from fixtures.apps.spring import NAMESPACE, SpringRecord, SpringWriter
from fixtures.purge import SESSION_KEY, curfew_purge, purge_config, write_config
from fixtures.sessions import MIN

LAYOUTS = ("indexed", "sorted", "reactive", "plain")
PRINCIPAL = "ali\x00ce\U0001F600"


@pytest.fixture
async def cluster(redis_cluster_url: str) -> AsyncIterator[RedisSessionStore]:
    store = RedisSessionStore.from_url(redis_cluster_url, key_prefix=NAMESPACE,
                                  format="spring-session", socket_timeout=5)
    yield store
    await store.aclose()


@pytest.fixture
def scratch(redis_url: str) -> redis.Redis:
    """The redis-server the Java writer writes to, emptied."""
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    return client


async def write(
    writer: SpringWriter, scratch: redis.Redis, redis_url: str, cluster: RedisSessionStore,
    *records: SpringRecord,
) -> None:
    """Save ``records`` as Spring does, then move every key to the Cluster unchanged."""
    writer.write(redis_url, *records)
    for key in scratch.scan_iter(count=1000):
        ttl = scratch.pttl(key)
        await cluster.client.restore(key, max(ttl, 0), scratch.dump(key), replace=True)
    scratch.flushall()


def record(now: int, layout: str, *, idle: bool) -> SpringRecord:
    last_ago = 16 * MIN if idle else 1 * MIN
    return SpringRecord(str(uuid.uuid4()), now - 20 * MIN, now - last_ago, principal=PRINCIPAL,
                        principal_kind="context-user", layout=layout)


async def left_of(client: Any, s: SpringRecord) -> list[str]:
    """What is still there of session ``s``, in every key Spring keeps for it."""
    found = []
    ns = NAMESPACE
    member = jdk.write_string(s.id)
    checks = {
        "hash": client.exists(f"{ns}sessions:{s.id}"),
        "expires": client.exists(f"{ns}sessions:expires:{s.id}"),
        "idx": client.exists(f"{ns}sessions:{s.id}:idx"),
        "zset": client.zscore(f"{ns}sessions:expirations", member),
        "principal": client.sismember(keys.spring_principal_index_key_bytes(ns, PRINCIPAL),
                                      member),
        "reactive-index": client.sismember(s.reactive_index.encode(), member),
    }
    for name, pending in checks.items():
        if await pending:
            found.append(name)
    async for key in client.scan_iter(match=f"{ns}expirations:*"):
        if await client.sismember(key, jdk.write_string("expires:" + s.id)):
            found.append("minute")
    return found


def full(layout: str) -> list[str]:
    return {
        "indexed": ["hash", "expires", "principal", "minute"],
        "sorted": ["hash", "expires", "zset", "principal"],
        "reactive": ["hash", "expires", "idx", "zset", "reactive-index"],
        "plain": ["hash"],
    }[layout]


async def test_the_keys_of_one_session_lie_on_different_masters(
    cluster: RedisSessionStore, scratch: redis.Redis, redis_url: str, spring_writer: SpringWriter,
) -> None:
    now = await cluster.server_time_ms()
    s = record(now, "reactive", idle=False)
    await write(spring_writer, scratch, redis_url, cluster, s)
    slots = {key_slot(k) for k in (
        f"{NAMESPACE}sessions:{s.id}".encode(), f"{NAMESPACE}sessions:expires:{s.id}".encode(),
        f"{NAMESPACE}sessions:{s.id}:idx".encode(), s.reactive_index.encode())}
    assert len(slots) == 4, "so no one script could take them together"
    assert await left_of(cluster.client, s) == full("reactive")


async def test_the_purge_on_a_cluster_removes_expired_sessions_whole_and_keeps_active_ones(
    cluster: RedisSessionStore, scratch: redis.Redis, redis_url: str, redis_cluster_url: str,
    spring_writer: SpringWriter, tmp_path: Path,
) -> None:
    now = await cluster.server_time_ms()
    expired = [record(now, layout, idle=True) for layout in LAYOUTS for _ in range(2)]
    active = [record(now, layout, idle=False) for layout in LAYOUTS for _ in range(3)]
    await write(spring_writer, scratch, redis_url, cluster, *expired, *active)
    run = curfew_purge(write_config(tmp_path, purge_config(
        format="spring-session", key_prefix=NAMESPACE)), redis_cluster_url)
    assert run.code == 0, run.stderr
    assert run.summary["expired"]["idle"] == len(expired)
    assert run.summary["repaired"] == 0
    for s in expired:
        assert await left_of(cluster.client, s) == [], s.layout
    for s in active:
        assert await left_of(cluster.client, s) == full(s.layout), s.layout


@pytest.mark.parametrize("layout", LAYOUTS[:3])
async def test_the_sidecars_expiry_on_a_cluster_removes_the_whole_session(
    cluster: RedisSessionStore, scratch: redis.Redis, redis_url: str, spring_writer: SpringWriter,
    layout: str,
) -> None:
    now = await cluster.server_time_ms()
    doomed, other = record(now, layout, idle=False), record(now, layout, idle=False)
    await write(spring_writer, scratch, redis_url, cluster, doomed, other)
    app_key = build_codec("spring-session", NAMESPACE).app_key(doomed.id)
    await cluster.expire(session_hash(SESSION_KEY.encode(), doomed.id), app_key=app_key,
                         reason=Decision.EXPIRED_IDLE)
    assert await left_of(cluster.client, doomed) == []
    assert await left_of(cluster.client, other) == full(layout), "the same user's other session"


async def stop_after(client: Any, s: SpringRecord, steps: int) -> None:
    """Remove ``s`` as a Cluster removal does, but stop after ``steps`` of its steps: 1, the
    hash; 2, the set members too (the keys named by the id are left)."""
    fields = await client.hmget(f"{NAMESPACE}sessions:{s.id}", *spring.FIELDS)
    removal = spring.build_removal(NAMESPACE, s.id, fields, hash_only=True)
    assert await client.eval(DELETE_SPRING_SESSION.source, len(removal.keys), *removal.keys,
                             *removal.args) == 1
    if steps < 2:
        return
    members = list(await client.smembers(spring.idx_key(NAMESPACE, s.id)))
    first, _ = spring.cluster_phases(spring.build_companions(NAMESPACE, s.id, fields, members))
    for c in first:
        await client.eval(DELETE_SPRING_COMPANION.source, 1, c.key, c.op, *c.members)


@pytest.mark.parametrize("steps", [1, 2], ids=["after the hash", "after the set members"])
@pytest.mark.parametrize("layout", LAYOUTS[:3])
async def test_a_removal_stopped_between_its_steps_is_finished_by_the_next_purge(
    cluster: RedisSessionStore, scratch: redis.Redis, redis_url: str, redis_cluster_url: str,
    spring_writer: SpringWriter, tmp_path: Path, layout: str, steps: int,
) -> None:
    now = await cluster.server_time_ms()
    half, live = record(now, layout, idle=True), record(now, layout, idle=False)
    await write(spring_writer, scratch, redis_url, cluster, half, live)
    await stop_after(cluster.client, half, steps)
    assert "hash" not in await left_of(cluster.client, half)
    assert "expires" in await left_of(cluster.client, half), "the id-named keys go last"

    run = curfew_purge(write_config(tmp_path, purge_config(
        format="spring-session", key_prefix=NAMESPACE)), redis_cluster_url)
    assert run.code == 0, run.stderr
    assert run.summary["repaired"] == 1
    left = await left_of(cluster.client, half)
    if layout == "reactive" or steps == 2:
        assert left == [], "every key and member of the session is gone"
    else:
        # Only the hash named these (the principal, the minute): with it gone they cannot be
        # found. Spring skips an index member without its hash; the minute's set goes whole
        # with Spring's own cleanup of that minute.
        assert left == [m for m in ("principal", "minute") if m in full(layout)]
    assert await left_of(cluster.client, live) == full(layout)
    again = curfew_purge(write_config(tmp_path, purge_config(
        format="spring-session", key_prefix=NAMESPACE)), redis_cluster_url)
    assert again.summary["repaired"] == 0, "nothing left to repair"


async def test_finishing_a_removal_twice_changes_nothing_the_second_time(
    cluster: RedisSessionStore, scratch: redis.Redis, redis_url: str, spring_writer: SpringWriter,
) -> None:
    now = await cluster.server_time_ms()
    half = record(now, "reactive", idle=True)
    await write(spring_writer, scratch, redis_url, cluster, half)
    await stop_after(cluster.client, half, 1)
    client: aioredis.RedisCluster = cluster.client
    assert await remove_spring_companions(client, NAMESPACE, [(half.id, None)]) == 1
    assert await remove_spring_companions(client, NAMESPACE, [(half.id, None)]) == 0
    assert await left_of(client, half) == []
