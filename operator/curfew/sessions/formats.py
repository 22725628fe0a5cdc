"""Reading the apps' own session records as their libraries write them (pure: bytes in, values
out).

- Spring Session Data Redis keeps a hash per session whose values are written by the
  template's value serializer: by default the JDK serializer (``java.lang.Long`` and
  ``java.lang.Integer`` objects, ``TC_STRING`` strings), or a JSON one (plain numbers, or
  ``["java.lang.Long", n]`` with default typing), read through ``curfew.sessions.jdk``. Set
  members (the ``expirations`` sets, the principal index) use the same serializer, so removing
  them means writing the same bytes back.
- connect-redis (express-session) keeps one JSON string per session with ``cookie.expires``
  (ISO 8601) and ``cookie.originalMaxAge`` (ms). ``expires - originalMaxAge`` is the last
  *save*; under ``resave: false`` a request that changes nothing only renews the key's TTL
  (connect-redis's ``touch``: ``EXPIRE`` by ``ceil(originalMaxAge / 1000)`` seconds, or the
  store's ``ttl`` option when the cookie has no maxAge), so the last activity is read from the
  key's remaining TTL: ``read time - (that lifetime - remaining TTL)``, the later of the two.

A value that is not a session of the format reads as None. A session whose times cannot be
used (``originalMaxAge`` of ``1e400`` or ``NaN``, an ``expires`` in year 1, a Spring timestamp
that is no number) raises :class:`MalformedSession`: the purge job counts and skips it. Apps
write these values, sometimes from what their users send, so no value may stop a purge.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from curfew.sessions import jdk

MAX_TIME_MS: Final = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z: the latest time a session field can mean (ISO 8601's 4 digits)."""
MAX_DURATION_MS: Final = 2**53
"""A longer ``originalMaxAge`` or ``maxInactiveInterval`` is no duration (JSON's safe range)."""


class MalformedSession(ValueError):
    """A session of the format whose times cannot be read or are out of range; the message says
    which field, never the session id."""


def _time_ms(value: int | None, field: str) -> int | None:
    if value is not None and not 0 <= value <= MAX_TIME_MS:
        raise MalformedSession(f"{field} out of range")
    return value


class Serializer(StrEnum):
    """How a Spring Session hash value or set member is encoded."""

    JDK = "jdk"
    JSON = "json"


def serializer_of(value: bytes) -> Serializer:
    return Serializer.JDK if value.startswith(jdk.MAGIC) else Serializer.JSON


def read_spring_number(value: bytes) -> int | None:
    """A Long or Integer as Spring Session stored it, or None if it is neither."""
    if value.startswith(jdk.MAGIC):
        try:
            return jdk.read_number(value)
        except jdk.NotJdk:
            return None
    try:
        parsed = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(parsed, list) and len(parsed) == 2 and isinstance(parsed[0], str):
        parsed = parsed[1]
    if isinstance(parsed, int) and not isinstance(parsed, bool):
        return parsed
    return None


def read_spring_string(value: bytes) -> str | None:
    """A String as Spring Session stored it (JDK, in modified UTF-8, or JSON), or None."""
    if value.startswith(jdk.MAGIC):
        try:
            return jdk.read_string(value)
        except jdk.NotJdk:
            return None
    try:
        parsed = json.loads(value)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return parsed if isinstance(parsed, str) else None


def read_spring_principal(explicit: bytes | None, security_context: bytes | None) -> str | None:
    """The principal name Spring indexes a session under, as ``PrincipalNameIndexResolver``
    resolves it: the ``PRINCIPAL_NAME_INDEX_NAME`` attribute, else the name of
    ``SPRING_SECURITY_CONTEXT``'s authentication (JDK serializer only); None when neither
    tells."""
    if explicit is not None:
        name = read_spring_string(explicit)
        if name is not None:
            return name
    if security_context is not None and security_context.startswith(jdk.MAGIC):
        try:
            return jdk.principal_of_security_context(security_context)
        except jdk.NotJdk:
            return None
    return None


def write_spring_string(text: str, serializer: Serializer) -> bytes:
    """A String encoded as Spring Session's serializer writes it (for set members)."""
    if serializer is Serializer.JDK:
        return jdk.write_string(text)
    return json.dumps(text).encode("utf-8")


@dataclass(frozen=True)
class SpringSession:
    """What the purge job needs from one Spring Session hash."""

    created_ms: int
    last_accessed_ms: int
    max_inactive_seconds: int | None
    serializer: Serializer

    @property
    def expirations_minute_ms(self) -> int | None:
        """The ``expirations:<minute>`` set Spring filed the session under."""
        if self.max_inactive_seconds is None:
            return None
        return expirations_minute_ms(self.last_accessed_ms, self.max_inactive_seconds)


def expirations_minute_ms(last_accessed_ms: int, max_inactive_seconds: int) -> int:
    """The minute of Spring's ``expirations:<minute>`` set for a session: its expiry rounded up
    to the next whole minute (``roundUpToNextMinute``: a minute added, then truncated)."""
    expires = last_accessed_ms + max_inactive_seconds * 1000
    return (expires // 60_000 + 1) * 60_000


def read_spring_session(
    created: bytes | None,
    last_accessed: bytes | None,
    max_inactive: bytes | None,
) -> SpringSession | None:
    """A Spring Session from its hash fields, or None when they are missing or unreadable. Its
    principal is read only when it is removed (``curfew.sessions.spring``): a walk judges every
    session, and parsing a ``SecurityContextImpl`` costs tens of microseconds."""
    if created is None or last_accessed is None:
        return None  # a partial hash (Spring's delta save racing an expiry): no session
    c = _time_ms(read_spring_number(created), "creationTime")
    la = _time_ms(read_spring_number(last_accessed), "lastAccessedTime")
    if c is None or la is None:
        raise MalformedSession("creationTime or lastAccessedTime is no number")
    mi = read_spring_number(max_inactive) if max_inactive is not None else None
    if mi is not None and abs(mi) * 1000 > MAX_DURATION_MS:
        raise MalformedSession("maxInactiveInterval out of range")
    return SpringSession(
        created_ms=c,
        last_accessed_ms=la,
        max_inactive_seconds=mi,
        serializer=serializer_of(created),
    )


@dataclass(frozen=True)
class ConnectSession:
    """What the purge job needs from one connect-redis session."""

    last_activity_ms: int | None
    """The later of the last save (``cookie.expires - cookie.originalMaxAge``) and the last
    touch (from the key's remaining TTL); None when neither can be known (a browser-session
    cookie, and the store's ``ttl`` not stated)."""


def connect_lifetime_ms(max_age_ms: float | None, app_ttl_ms: int | None) -> int | None:
    """The TTL connect-redis gives a session key on each save and touch: its cookie's maxAge
    rounded up to whole seconds (``getTTL``: ``Math.ceil(ms / 1000)``), else the store's
    ``ttl`` option when the policy states it (``store.appTTL``), else unknown."""
    if max_age_ms is not None and max_age_ms > 0:
        return math.ceil(max_age_ms / 1000) * 1000
    return app_ttl_ms


def read_connect_session(
    value: bytes,
    *,
    remaining_ms: int | None = None,
    read_at_ms: int | None = None,
    app_ttl_ms: int | None = None,
) -> ConnectSession | None:
    """A connect-redis session from its JSON string, or None if it is not one. Raises
    MalformedSession when its ``cookie`` times cannot be used.

    ``remaining_ms`` is the key's PTTL (negative: no TTL, which tells nothing) read no later
    than ``read_at_ms`` on Redis's clock: a later reading only makes the session look more
    recent, never idler than it is."""
    try:
        doc = json.loads(value)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("cookie"), dict):
        return None
    cookie = doc["cookie"]
    expires, max_age = cookie.get("expires"), cookie.get("originalMaxAge")
    if expires is None or max_age is None:
        # A browser-session cookie: no save time; connect-redis gave the key its own ttl.
        touched = _touched_ms(connect_lifetime_ms(None, app_ttl_ms), remaining_ms, read_at_ms)
        return ConnectSession(last_activity_ms=touched)
    if isinstance(max_age, bool) or not isinstance(max_age, int | float):
        raise MalformedSession("cookie.originalMaxAge is no number")
    if not math.isfinite(max_age) or abs(max_age) > MAX_DURATION_MS:
        raise MalformedSession("cookie.originalMaxAge out of range")
    if not isinstance(expires, str):
        raise MalformedSession("cookie.expires is no date")
    try:
        expires_at = datetime.fromisoformat(expires.replace("Z", "+00:00"))
        expires_ms = round(expires_at.timestamp() * 1000)
    except (ValueError, OverflowError, OSError):
        raise MalformedSession("cookie.expires is no date") from None
    saved = _time_ms(expires_ms - round(max_age), "cookie.expires - cookie.originalMaxAge")
    assert saved is not None
    touched = _touched_ms(connect_lifetime_ms(max_age, app_ttl_ms), remaining_ms, read_at_ms)
    return ConnectSession(last_activity_ms=saved if touched is None else max(saved, touched))


def _touched_ms(
    lifetime_ms: int | None, remaining_ms: int | None, read_at_ms: int | None
) -> int | None:
    """The last save or touch, from the key's remaining TTL: None when it cannot tell."""
    if lifetime_ms is None or remaining_ms is None or read_at_ms is None or remaining_ms < 0:
        return None
    return read_at_ms - max(0, lifetime_ms - remaining_ms)
