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
- ``RedisSessionRepository`` (the default since Spring Session 3.0): the hash alone, with a TTL.
  The same script removes it; the commands for keys that do not exist change nothing.

Set members are written by the template's value serializer (JDK by default, so a String in
modified UTF-8), keys by ``StringRedisSerializer`` (standard UTF-8). On a Redis Cluster these keys
lie in different slots (Spring uses no hash tags), so no script can take them together: there
the hash alone is removed, and Spring's own cleanup meets the rest.

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


@dataclass(frozen=True, slots=True)
class Removal:
    """One call of ``delete_spring_session.lua``: its keys and arguments."""

    keys: tuple[bytes, ...]
    args: tuple[bytes | str | int, ...]


def build_removal(prefix: str, raw_id: str, fields: Sequence[bytes | None]) -> Removal:
    """The script call that removes session ``raw_id`` whose hash held ``fields`` (values of
    ``FIELDS``, None where absent): each field is guarded, and the members to remove are
    computed from them."""
    serializer = next((serializer_of(v) for v in fields if v is not None), Serializer.JDK)
    _created, last, max_inactive, principal_attr, context = fields
    last_ms = read_spring_number(last) if last is not None else None
    max_s = read_spring_number(max_inactive) if max_inactive is not None else None
    principal = read_spring_principal(principal_attr, context)
    id_member = write_spring_string(raw_id, serializer)
    set_keys: list[bytes] = []
    members: list[bytes] = []
    if last_ms is not None and max_s is not None:
        set_keys.append(keys.spring_expirations_key(prefix, expirations_minute_ms(last_ms, max_s))
                        .encode())
        members.append(write_spring_string("expires:" + raw_id, serializer))
    if principal is not None:
        set_keys.append(keys.spring_principal_index_key_bytes(prefix, principal))
        members.append(id_member)
    guards: list[bytes | str] = []
    for name, value in zip(FIELDS, fields, strict=True):
        guards += [name, b"-" if value is None else b"+" + value]
    return Removal(
        (
            keys.spring_session_key(prefix, raw_id).encode(),
            keys.spring_expires_key(prefix, raw_id).encode(),
            keys.spring_expirations_zset_key(prefix).encode(),
            *set_keys,
        ),
        (len(FIELDS), *guards, id_member, *members),
    )
