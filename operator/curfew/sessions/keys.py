"""The Redis key schema: every key and prefix Curfew reads or writes, in one module.

Curfew's own data lives under a *namespace* (see ``curfew_namespace``) and is split into
``SHARDS`` shards. Every key of a shard carries the same Redis Cluster hash tag (``{07}``), so a
session record and the index entries pointing at it are always in one slot and one Lua script
can update them atomically, while the shards spread over the masters of a Cluster::

    <ns>{NN}:r:<sid>   hash: one session record (fields in ``RecordField``)
    <ns>{NN}:due       sorted set: "<owner><sid>" -> earliest deadline (ms, ``due_score``)
    <ns>{NN}:limits    sorted set: "<idle_ms>:<absolute_ms>" -> latest absolute deadline using it

``NN`` is the shard of the session hash (``shard_of``). The due index carries what the purge
job needs to remove and report an expired session without reading its record: the record's
owner (``owner_id``) in the member, and which deadline comes first in the score. The app's own
session keys follow the app's library (``app_session_key``); Curfew never writes them, it only
deletes them.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from functools import lru_cache
from typing import Final

SHARDS: Final = 64
"""Number of shards of Curfew's keyspace. Part of the schema: changing it orphans records."""

RETAIN_SECONDS: Final = 86_400.0
"""How long a record outlives its deadline (and a tombstone its expiry): a replayed cookie is
answered "expired", not "new", for this long. Part of the schema, the same for the sidecar and
the purge job: the purge takes an index entry due longer ago than this for one whose record
Redis has dropped. Keep it longer than the app's own sessions or tokens live."""

OWNER_HEX_LENGTH: Final = 12
"""Length of an owner id (``owner_id``), the fixed-width head of every due index member."""

ABSOLUTE_MARK: Final = 0.5
"""Added to a due score when the absolute deadline comes first (``due_score``)."""

CURFEW_FORMAT: Final = "curfew"
APP_NAMESPACE_PREFIX: Final = "curfew:"
"""Namespace prefix of Curfew's records when the app keeps its own sessions in the store."""

SPRING_SESSIONS: Final = "sessions:"
SPRING_EXPIRES: Final = "sessions:expires:"
SPRING_EXPIRATIONS: Final = "expirations:"
SPRING_EXPIRATIONS_ZSET: Final = "sessions:expirations"
"""Spring Session 3.4+'s sorted-set expiration store: session id -> expiry (ms), one key."""
SPRING_PRINCIPAL_INDEX: Final = (
    "index:org.springframework.session.FindByIndexNameSessionRepository.PRINCIPAL_NAME_INDEX_NAME:"
)
SPRING_PRINCIPAL_ATTR: Final = (
    "sessionAttr:org.springframework.session.FindByIndexNameSessionRepository"
    ".PRINCIPAL_NAME_INDEX_NAME"
)
SPRING_SECURITY_CONTEXT_ATTR: Final = "sessionAttr:SPRING_SECURITY_CONTEXT"
"""Spring Security's context; ``PrincipalNameIndexResolver`` indexes its principal's name."""


class RecordField(StrEnum):
    """Fields of a session record hash. Times and limits are integer milliseconds."""

    CREATED = "c"
    LAST_ACTIVITY = "l"
    IDLE = "i"
    ABSOLUTE = "a"
    AUTHENTICATED = "u"
    POLICY = "p"
    WORKLOAD = "w"
    APP_SESSION = "k"
    OWNER = "o"
    EXPIRED = "x"
    EXPIRED_AT = "t"
    SEALED_APP_ID = "s"
    """The app's session id, sealed (``identity.AppIdSeal``): written once, right after the
    sidecar creates the record of an app format's session; the purge job opens it to reach the
    app's session from the due index. Never the raw id."""


@lru_cache(maxsize=1024)
def owner_id(policy: str, workload: str) -> str:
    """The fixed-width id of the (policy, workload) that created a session: the first 12 hex
    characters of SHA-256 over ``policy NUL workload`` (neither holds a NUL: both are
    Kubernetes names). It heads the session's due index member, so the purge job can group
    expired sessions by owner and name their policy and workload from one record per group."""
    digest = hashlib.sha256(f"{policy}\0{workload}".encode()).hexdigest()
    return digest[:OWNER_HEX_LENGTH]


def due_member(owner: str, sid: str) -> str:
    """A session's member in its shard's due index: its owner id, then its session hash."""
    return owner + sid


def split_due_member(member: str) -> tuple[str, str]:
    """The (owner id, session hash) of a due index member."""
    return member[:OWNER_HEX_LENGTH], member[OWNER_HEX_LENGTH:]


def due_score(idle_deadline_ms: int, absolute_deadline_ms: int) -> float:
    """A session's score in the due index: its earliest deadline in ms, plus ``ABSOLUTE_MARK``
    when that is the absolute one (an idle deadline that ties with it comes first, as in the
    rules). Exact: a double holds every integer and half up to 2**52, far past any ms time."""
    if absolute_deadline_ms < idle_deadline_ms:
        return absolute_deadline_ms + ABSOLUTE_MARK
    return float(idle_deadline_ms)


def due_deadline(score: float) -> tuple[int, bool]:
    """The deadline (ms) a due score stands for, and whether it is the absolute one."""
    deadline = int(score)
    return deadline, score != deadline


def due_until(ms: int) -> float:
    """The highest due score of a deadline at or before ``ms``: read the index up to this."""
    return ms + ABSOLUTE_MARK


def curfew_namespace(format: str, key_prefix: str) -> str:
    """The prefix of Curfew's own keys for a store of ``format`` with the given ``keyPrefix``.

    With ``format: curfew`` the prefix is Curfew's alone. With an app format the prefix belongs
    to the app, whose tools SCAN it (connect-redis ``all()``, for one), so Curfew's keys go
    under ``curfew:<keyPrefix>`` instead.
    """
    if format == CURFEW_FORMAT:
        return key_prefix
    return APP_NAMESPACE_PREFIX + key_prefix


def shard_of(sid: str) -> int:
    """The shard of a session hash: its first 16 bits modulo ``SHARDS``."""
    return int(sid[:4], 16) % SHARDS


def shard_tag(shard: int) -> str:
    return _SHARD_TAGS[shard]


_SHARD_TAGS: Final = tuple(f"{{{shard:02x}}}" for shard in range(SHARDS))
_RECORD: Final = ":r:"
_DUE: Final = ":due"
_LIMITS: Final = ":limits"


def record_key(namespace: str, sid: str) -> str:
    return namespace + _SHARD_TAGS[shard_of(sid)] + _RECORD + sid


def record_prefix(namespace: str, shard: int) -> str:
    """The prefix of every record key of ``shard`` (a record key is this plus the sid)."""
    return namespace + _SHARD_TAGS[shard] + _RECORD


def due_key(namespace: str, shard: int) -> str:
    return namespace + _SHARD_TAGS[shard] + _DUE


def limits_key(namespace: str, shard: int) -> str:
    return namespace + _SHARD_TAGS[shard] + _LIMITS


def session_keys(namespace: str, sid: str) -> tuple[str, str, str]:
    """The keys one session's script touches: record, due index, limits set (one slot)."""
    slot = namespace + _SHARD_TAGS[shard_of(sid)]
    return slot + _RECORD + sid, slot + _DUE, slot + _LIMITS


def app_session_key(format: str, prefix: str, raw_id: str) -> str | None:
    """The key of the app's own session for a raw session id, or None if the app keeps none.

    spring-session: ``<prefix>sessions:<id>``; connect-redis, django, flask-session, php-redis
    and generic: ``<prefix><id>`` (django's prefix is django-redis's ``<KEY_PREFIX>:<VERSION>:``
    and the session backend's ``django.contrib.sessions.cache`` or ``...cached_db``);
    curfew: None (the app keeps no session in the store).
    """
    if format == "spring-session":
        return f"{prefix}{SPRING_SESSIONS}{raw_id}"
    if format in ("connect-redis", "generic", "django", "flask-session", "php-redis"):
        return f"{prefix}{raw_id}"
    return None


DJANGO_CACHED_DB: Final = "django.contrib.sessions.cached_db"
"""The key prefix of Django's ``cached_db`` session backend, after django-redis's own."""


def empties_sessions(format: str, prefix: str) -> bool:
    """Whether an app session is ended by emptying it rather than deleting it: Django's
    ``cached_db`` backend, whose database brings a deleted cache entry back."""
    return format == "django" and prefix.endswith(DJANGO_CACHED_DB)


def app_scan_pattern(format: str, prefix: str) -> str:
    """The SCAN MATCH pattern of the app's session keys (glob characters in the prefix escaped)."""
    escaped = "".join("\\" + c if c in "*?[]\\" else c for c in prefix)
    if format == "spring-session":
        return f"{escaped}{SPRING_SESSIONS}*"
    return f"{escaped}*"


def app_raw_id(format: str, prefix: str, key: str) -> str | None:
    """The raw session id inside an app session key, or None if the key is not a session.

    Only used in memory by the purge job to compute the keyed hash; never stored or logged.
    Spring's ``sessions:expires:<id>`` keys and its sorted-set expiration store
    (``sessions:expirations``) are not sessions.
    """
    head = prefix + SPRING_SESSIONS if format == "spring-session" else prefix
    if not key.startswith(head):
        return None
    rest = key[len(head) :]
    if not rest or (format == "spring-session"
                    and (rest.startswith("expires:") or rest == "expirations")):
        return None
    return rest


def spring_session_key(prefix: str, raw_id: str) -> str:
    return f"{prefix}{SPRING_SESSIONS}{raw_id}"


def spring_expires_key(prefix: str, raw_id: str) -> str:
    return f"{prefix}{SPRING_EXPIRES}{raw_id}"


def spring_expirations_key(prefix: str, minute_ms: int) -> str:
    return f"{prefix}{SPRING_EXPIRATIONS}{minute_ms}"


def spring_expirations_zset_key(prefix: str) -> str:
    return f"{prefix}{SPRING_EXPIRATIONS_ZSET}"


def spring_principal_index_key(prefix: str, principal: str) -> str:
    return f"{prefix}{SPRING_PRINCIPAL_INDEX}{principal}"


def spring_principal_index_key_bytes(prefix: str, principal: str) -> bytes:
    """The principal index key as Spring's ``StringRedisSerializer`` writes it: UTF-8 of the
    Java string, a lone surrogate (which no UTF-8 holds) replaced by ``?`` as Java does."""
    return prefix.encode() + SPRING_PRINCIPAL_INDEX.encode() + principal.encode("utf-8", "replace")
