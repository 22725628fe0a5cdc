"""The Spring removal scripts on a real redis-server, against sessions the JDK wrote in the
reactive repository's layout (``fixtures.apps.spring``): the ``sessions:<id>:idx`` list is
guarded like the hash's fields, a list Spring did not write makes the script touch no other key,
and the per-key script of a Cluster removal checks every key's type."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from curfew.sessions import jdk, spring
from curfew.sessions.store import DELETE_SPRING_COMPANION, DELETE_SPRING_SESSION
from fixtures.apps.spring import NAMESPACE, SpringRecord, SpringWriter

MIN = 60_000


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    c.flushall()
    yield c
    c.close()


def reactive(client: redis.Redis, writer: SpringWriter, redis_url: str) -> SpringRecord:
    seconds, micros = client.time()
    now = seconds * 1000 + micros // 1000
    s = SpringRecord(str(uuid.uuid4()), now - MIN, now, principal="ann", principal_kind="attr",
                     layout="reactive")
    writer.write(redis_url, s)
    return s


def snapshot(client: redis.Redis) -> dict[bytes, object]:
    found: dict[bytes, object] = {}
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        found[key] = {"hash": client.hgetall, "set": client.smembers, "string": client.get,
                      "zset": lambda k: client.zrange(k, 0, -1)}[kind](key)
    return found


def removal_of(client: redis.Redis, s: SpringRecord) -> tuple[spring.Removal, list[bytes]]:
    fields = client.hmget(f"{NAMESPACE}sessions:{s.id}", list(spring.FIELDS))
    members = list(client.smembers(spring.idx_key(NAMESPACE, s.id)))
    return spring.build_removal(NAMESPACE, s.id, fields, members), members


def run(client: redis.Redis, removal: spring.Removal) -> int:
    return int(client.eval(DELETE_SPRING_SESSION.source, len(removal.keys), *removal.keys,
                           *removal.args))


def test_an_index_list_that_changed_since_it_was_read_removes_nothing(
    client: redis.Redis, spring_writer: SpringWriter, redis_url: str
) -> None:
    s = reactive(client, spring_writer, redis_url)
    removal, _ = removal_of(client, s)
    # The app indexed the session under one more value meanwhile (a custom IndexResolver).
    tenant = f"{NAMESPACE}sessions:index:tenant:acme"
    client.sadd(tenant, jdk.write_string(s.id))
    client.sadd(spring.idx_key(NAMESPACE, s.id), jdk.write_string(tenant))
    before = snapshot(client)
    assert run(client, removal) == spring.CHANGED
    assert snapshot(client) == before
    # Read again, the removal takes the new index too.
    assert run(client, removal_of(client, s)[0]) == 1
    assert snapshot(client) == {}


def test_an_index_list_emptied_since_it_was_read_removes_nothing(
    client: redis.Redis, spring_writer: SpringWriter, redis_url: str
) -> None:
    s = reactive(client, spring_writer, redis_url)
    removal, _ = removal_of(client, s)
    client.delete(spring.idx_key(NAMESPACE, s.id))
    before = snapshot(client)
    assert run(client, removal) == spring.CHANGED
    assert snapshot(client) == before


def test_an_index_list_naming_keys_spring_does_not_index_touches_none_of_them(
    client: redis.Redis, spring_writer: SpringWriter, redis_url: str
) -> None:
    s, other = (reactive(client, spring_writer, redis_url) for _ in range(2))
    # A list holding another session's hash, its own id list, and a key of another namespace.
    bystanders = [f"{NAMESPACE}sessions:{other.id}", spring.idx_key(NAMESPACE, other.id),
                  "billing:sessions:index:x:y"]
    client.sadd("billing:sessions:index:x:y", jdk.write_string(s.id))
    client.sadd(spring.idx_key(NAMESPACE, s.id), *(jdk.write_string(k) for k in bystanders))
    kept = {k: v for k, v in snapshot(client).items() if s.id.encode() not in k}
    removal, _ = removal_of(client, s)
    assert all(k.decode() not in bystanders for k in removal.keys)
    assert run(client, removal) == 1
    after = snapshot(client)
    assert not any(s.id.encode() in k for k in after)
    index = f"{NAMESPACE}sessions:index:PRINCIPAL_NAME_INDEX_NAME:ann".encode()
    assert after.pop(index) == {jdk.write_string(other.id)}
    kept.pop(index)
    kept[f"{NAMESPACE}sessions:expirations".encode()] = [jdk.write_string(other.id)]
    assert after == kept, "every other key as it was"


def test_an_index_list_of_another_type_neither_blocks_the_removal_nor_goes_with_it(
    client: redis.Redis, spring_writer: SpringWriter, redis_url: str
) -> None:
    s = reactive(client, spring_writer, redis_url)
    idx = spring.idx_key(NAMESPACE, s.id)
    client.delete(idx)
    client.set(idx, b"not Spring's")
    fields = client.hmget(f"{NAMESPACE}sessions:{s.id}", list(spring.FIELDS))
    assert run(client, spring.build_removal(NAMESPACE, s.id, fields, [])) == 1
    assert not client.exists(f"{NAMESPACE}sessions:{s.id}")
    assert client.get(idx) == b"not Spring's"


@pytest.mark.parametrize(
    ("op", "kind"),
    [("string", "set"), ("string", "hash"), ("zrem", "set"), ("srem", "zset"), ("set", "string"),
     ("set", "hash"), ("srem", "hash")],
)
def test_a_companion_of_another_type_than_spring_writes_is_left_alone(
    client: redis.Redis, op: str, kind: str
) -> None:
    key, member = f"{NAMESPACE}sessions:expirations", jdk.write_string("x")
    {"set": lambda: client.sadd(key, member), "hash": lambda: client.hset(key, "f", member),
     "zset": lambda: client.zadd(key, {member: 1}), "string": lambda: client.set(key, member),
     }[kind]()
    before = snapshot(client)
    members = () if op in ("string", "set") else (member,)
    assert client.eval(DELETE_SPRING_COMPANION.source, 1, key, op, *members) == 0
    assert snapshot(client) == before


def test_each_companion_operation_removes_what_spring_wrote_and_only_that(
    client: redis.Redis
) -> None:
    keep, gone = jdk.write_string("kept"), jdk.write_string("gone")
    client.sadd("s", keep, gone)
    client.zadd("z", {keep: 1, gone: 2})
    client.set("e", b"")
    client.sadd("idx", keep)
    ev = DELETE_SPRING_COMPANION.source
    assert client.eval(ev, 1, "s", "srem", gone) == 1
    assert client.eval(ev, 1, "s", "srem", gone) == 0, "idempotent"
    assert client.eval(ev, 1, "z", "zrem", gone) == 1
    assert client.eval(ev, 1, "e", "string") == 1
    assert client.eval(ev, 1, "idx", "set") == 1
    assert snapshot(client) == {b"s": {keep}, b"z": [keep]}
