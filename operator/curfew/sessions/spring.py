"""Removing a Spring Session (Data Redis) session whole: the hash and every key Spring keeps
beside it, by one script (``delete_spring_session.lua``) for the sidecar's expiry and the purge.

Spring's layout under its key namespace (``spring:session:`` unless the app sets
``redisNamespace``, which ``store.keyPrefix`` must then name with its trailing colon):

- ``RedisIndexedSessionRepository`` (``@EnableRedisIndexedHttpSession``): the hash
  ``sessions:<id>``; the shadow key ``sessions:expires:<id>`` whose expiry event tells Spring the
  session ended; the member ``expires:<id>`` of ``expirations:<minute>`` (the minute after the
  session's expiry; ``MinuteBasedRedisSessionExpirationStore``) or the member ``<id>`` of the
  sorted set ``sessions:expirations`` (``SortedSetRedisSessionExpirationStore``, 3.4+); the
  member ``<id>`` of ``index:...PRINCIPAL_NAME_INDEX_NAME:<principal>``.
- ``ReactiveRedisIndexedSessionRepository`` (``@EnableRedisIndexedWebSession``, 3.3+): the same
  hash, shadow key and ``sessions:expirations`` sorted set; its indexes
  (``ReactiveRedisSessionIndexer``) are the sets ``sessions:index:<name>:<value>`` holding
  ``<id>``, listed by the session's own set ``sessions:<id>:idx``, whose members are the index
  keys. That list is read with the hash, guarded like its fields, and names the index sets.
- ``RedisSessionRepository`` (the default since Spring Session 3.0): the hash alone, with a TTL.
  The same script removes it; the commands for keys that do not exist change nothing.

Set members are written by the template's value serializer (JDK by default, so a String in
modified UTF-8), keys by ``StringRedisSerializer`` (standard UTF-8).

On a Redis Cluster these keys lie in different slots (Spring uses no hash tags), so no script
can take them together. There the hash goes first, by the same guarded script called with the
hash alone: once it is gone the session is over for the app, and nothing of the app writes its
companions again. Then each companion goes by ``delete_spring_companion.lua`` on its own node
(:func:`cluster_phases`): the set members first, the two keys that name the session by its id
(``sessions:expires:<id>``, ``sessions:<id>:idx``) last, so a run that stops half-way leaves
one of them, which the next purge's walk finds without its hash and finishes
(:func:`build_companions` with no fields).

Pure: builds the script's keys and arguments from the fields read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from curfew.sessions import keys
from curfew.sessions.formats import (
    Serializer,
    expirations_minute_ms,
    read_spring_number,
    read_spring_principal,
    read_spring_string,
    serializer_of,
    write_spring_string,
)

FIELDS: Final = (
    "creationTime",
    "lastAccessedTime",
    "maxInactiveInterval",
    keys.SPRING_PRINCIPAL_ATTR,
    keys.SPRING_SECURITY_CONTEXT_ATTR,
)
"""The hash fields the removal reads and guards: the times and what names the principal."""

CHANGED: Final = -1
"""The script's reply when a guarded field changed since it was read."""

REACTIVE_INDEX: Final = "index:"
"""After ``<ns>sessions:``: the head of the reactive repository's index keys."""

IDX_SUFFIX: Final = ":idx"
"""After ``<ns>sessions:<id>``: the reactive repository's list of a session's index keys."""


@dataclass(frozen=True, slots=True)
class Companion:
    """What one key beside the hash holds of a session, and how it goes: ``string`` (the shadow
    key, deleted if a string), ``zrem`` / ``srem`` (``members`` removed from a sorted set or a
    set), ``set`` (the reactive ``sessions:<id>:idx``: a guard that it still holds ``members``
    in the one script, then deleted)."""

    key: bytes
    op: str
    members: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class Removal:
    """One call of ``delete_spring_session.lua``: its keys and arguments, and the companions
    it names (which, on a Cluster, go one by one after the hash)."""

    keys: tuple[bytes, ...]
    args: tuple[bytes | str | int, ...]
    companions: tuple[Companion, ...] = ()


def idx_key(prefix: str, raw_id: str) -> str:
    """The reactive repository's ``<ns>sessions:<id>:idx``."""
    return keys.spring_session_key(prefix, raw_id) + IDX_SUFFIX


def index_keys(prefix: str, members: Sequence[bytes]) -> list[bytes]:
    """The index keys a ``sessions:<id>:idx`` set lists, as ``StringRedisSerializer`` names
    them. A member that is no string of the serializer, or names a key outside the namespace's
    ``sessions:index:``, names nothing: a set Spring did not write cannot make Curfew touch
    another key."""
    head = prefix + keys.SPRING_SESSIONS + REACTIVE_INDEX
    found = []
    for member in members:
        name = read_spring_string(member)
        if name is not None and name.startswith(head) and len(name) > len(head):
            found.append(name.encode("utf-8", "replace"))
    return found


def build_companions(
    prefix: str,
    raw_id: str,
    fields: Sequence[bytes | None] | None,
    index_members: Sequence[bytes] = (),
) -> tuple[Companion, ...]:
    """Every companion of session ``raw_id`` (keys beside its hash), from its hash's ``FIELDS``
    as read (values, None where absent) and the members of its ``sessions:<id>:idx`` set.
    ``fields`` None: the hash is gone (an orphan the walk found), so neither the serializer
    nor the minute nor the principal is known: the id is removed in both serializers' bytes
    from the stores that need no field."""
    if fields is None:
        id_members: tuple[bytes, ...] = tuple(
            write_spring_string(raw_id, ser) for ser in (Serializer.JDK, Serializer.JSON))
        last_ms = max_s = principal = None
        serializer = Serializer.JDK
    else:
        serializer = next((serializer_of(v) for v in fields if v is not None), Serializer.JDK)
        _created, last, max_inactive, principal_attr, context = fields
        last_ms = read_spring_number(last) if last is not None else None
        max_s = read_spring_number(max_inactive) if max_inactive is not None else None
        principal = read_spring_principal(principal_attr, context)
        id_members = (write_spring_string(raw_id, serializer),)
    found = [
        Companion(keys.spring_expires_key(prefix, raw_id).encode(), "string"),
        Companion(keys.spring_expirations_zset_key(prefix).encode(), "zrem", id_members),
    ]
    if last_ms is not None and max_s is not None:
        minute = expirations_minute_ms(last_ms, max_s)
        found.append(Companion(keys.spring_expirations_key(prefix, minute).encode(), "srem",
                               (write_spring_string("expires:" + raw_id, serializer),)))
    if principal is not None:
        found.append(Companion(keys.spring_principal_index_key_bytes(prefix, principal), "srem",
                               id_members))
    found += [Companion(key, "srem", id_members) for key in index_keys(prefix, index_members)]
    found.append(Companion(idx_key(prefix, raw_id).encode(), "set", tuple(index_members)))
    return tuple(found)


def build_removal(
    prefix: str,
    raw_id: str,
    fields: Sequence[bytes | None],
    index_members: Sequence[bytes] = (),
    *,
    hash_only: bool = False,
) -> Removal:
    """The script call that removes session ``raw_id`` whose hash held ``fields`` (values of
    ``FIELDS``, None where absent) and whose ``sessions:<id>:idx`` set held ``index_members``:
    each field and that set are guarded, and the members to remove are computed from them.
    ``hash_only`` (a Cluster): the call takes the hash alone, guarded by its fields; the
    companions are named for :func:`cluster_phases`."""
    companions = build_companions(prefix, raw_id, fields, index_members)
    guards: list[bytes | str] = []
    for name, value in zip(FIELDS, fields, strict=True):
        guards += [name, b"-" if value is None else b"+" + value]
    ops: list[bytes | str | int] = []
    for c in () if hash_only else companions:
        ops += [c.op, len(c.members), *c.members]
    return Removal(
        (keys.spring_session_key(prefix, raw_id).encode(),
         *(() if hash_only else (c.key for c in companions))),
        (len(FIELDS), *guards, *ops),
        companions,
    )


def cluster_phases(companions: Sequence[Companion]) -> tuple[list[Companion], list[Companion]]:
    """The companions of a session whose hash is gone, in the order a Cluster removes them:
    first every set and sorted-set member (any order: each is idempotent), then the shadow key
    and the ``sessions:<id>:idx`` set, which name the session by its id: while either is left,
    the next walk finds it without its hash and finishes the removal."""
    markers = ("string", "set")
    return ([c for c in companions if c.op not in markers],
            [c for c in companions if c.op in markers])
