"""The apps' own sessions in the shared store (spring-session, connect-redis, generic,
php-redis): walked by SCAN in batches and removed with a guard, for the purge job.

A walk never uses KEYS or another blocking command: SCAN with COUNT >= 1000, and one pipeline
per batch to read what was found. A removal deletes the session only if the field the purge job
judged still holds the bytes it read (php-redis: if its TTL was not renewed since), so a session
the app touched meanwhile survives.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from redis import exceptions as rexc

from curfew.sessions import keys
from curfew.sessions.codec import APP_KEY_TYPES
from curfew.sessions.errors import StoreDataError, redacted
from curfew.sessions.formats import (
    ConnectSession,
    MalformedSession,
    SpringSession,
    read_connect_session,
    read_spring_session,
    write_spring_string,
)
from curfew.sessions.formats_php import PhpSession, read_php_session
from curfew.sessions.store import DELETE_IF_UNCHANGED, DELETE_PHP_SESSION, translate_errors

MIN_SCAN_COUNT: Final = 1000
_PHP_TYPES: Final = ",".join(APP_KEY_TYPES["php-redis"])
_SPRING_FIELDS: Final = (
    "creationTime",
    "lastAccessedTime",
    "maxInactiveInterval",
    keys.SPRING_PRINCIPAL_ATTR,
)


@dataclass(frozen=True)
class AppSession:
    """One app session found by a walk. ``raw_id`` stays in memory: never stored or logged."""

    key: str
    raw_id: str
    guard_field: str | None
    """The field whose bytes guard the removal ('' for a string value, None: no guard)."""
    guard_value: bytes | None
    spring: SpringSession | None = None
    connect: ConnectSession | None = None
    php: PhpSession | None = None


@dataclass(frozen=True)
class AppBatch:
    """One batch of a walk: the sessions read, Spring expiry keys left without a session (by a
    run that stopped between its two deletes), and how many sessions were malformed (times that
    cannot be read: skipped, never judged)."""

    sessions: list[AppSession]
    orphans: list[str]
    malformed: int = 0


class AppSessions:
    """The sessions an app of ``format`` keeps under ``prefix``, on the store's client.

    php-redis needs ``id_pattern`` (its id grammar: the walk takes only such ids) and
    ``app_ttl_ms`` (``session.gc_maxlifetime``: the clock); the other formats ignore both.
    """

    def __init__(
        self,
        client: Any,
        *,
        format: str,
        prefix: str,
        id_pattern: str | None = None,
        app_ttl_ms: int | None = None,
    ) -> None:
        if format not in ("spring-session", "connect-redis", "generic", "php-redis"):
            raise ValueError(f"no app sessions for format {format!r}")
        if format == "php-redis" and (id_pattern is None or app_ttl_ms is None):
            raise ValueError("php-redis sessions need the id grammar and the app's TTL")
        self._client = client
        self.format = format
        self.prefix = prefix
        self.curfew_namespace = keys.curfew_namespace(format, prefix)
        self._ids = re.compile(id_pattern) if format == "php-redis" and id_pattern else None
        """php-redis: only ids of the grammar are sessions (phpredis's ``<id>_LOCK`` keys are
        not, nor is anything else the app keeps under its prefix)."""
        self._app_ttl_ms = app_ttl_ms

    async def walk(self, *, count: int = MIN_SCAN_COUNT) -> AsyncIterator[AppBatch]:
        """The app's sessions, in batches of about ``count`` keys."""
        count = max(count, MIN_SCAN_COUNT)
        pattern = keys.app_scan_pattern(self.format, self.prefix)
        expires_head = self.prefix + keys.SPRING_EXPIRES
        batch: list[tuple[str, str]] = []
        expiry_keys: list[str] = []
        # A PHP session is a string: SCAN's TYPE filter (Redis 6+) leaves the rest on the server.
        only = "string" if self.format == "php-redis" else None
        with translate_errors():
            async for raw_key in self._client.scan_iter(match=pattern, count=count, _type=only):
                key = raw_key.decode("utf-8", "replace") if isinstance(raw_key, bytes) else raw_key
                if key.startswith(self.curfew_namespace):
                    continue  # an empty app prefix matches Curfew's own keys too
                raw_id = keys.app_raw_id(self.format, self.prefix, key)
                if raw_id is not None and self._ids is not None and not self._ids.fullmatch(raw_id):
                    continue
                if raw_id is not None:
                    batch.append((key, raw_id))
                elif self.format == "spring-session" and key.startswith(expires_head):
                    expiry_keys.append(key)
                if len(batch) + len(expiry_keys) >= count:
                    yield await self._read(batch, expiry_keys)
                    batch, expiry_keys = [], []
            if batch or expiry_keys:
                yield await self._read(batch, expiry_keys)

    async def _read(self, found: Sequence[tuple[str, str]], expiry_keys: Sequence[str]) -> AppBatch:
        if self.format == "generic":
            return AppBatch([AppSession(key, raw_id, None, None) for key, raw_id in found], [])
        if self.format == "php-redis":
            return await self._read_php(found)
        pipe = self._client.pipeline(transaction=False)
        for key, _ in found:
            if self.format == "spring-session":
                pipe.hmget(key, *_SPRING_FIELDS)
            else:
                pipe.get(key)
        head = len(self.prefix + keys.SPRING_EXPIRES)
        for key in expiry_keys:
            pipe.exists(f"{self.prefix}{keys.SPRING_SESSIONS}{key[head:]}")
        replies = await pipe.execute(raise_on_error=False)
        alive = replies[len(found) :]
        orphans = [k for k, a in zip(expiry_keys, alive, strict=True) if a == 0]
        replies = replies[: len(found)]
        sessions = []
        malformed = 0
        for (key, raw_id), reply in zip(found, replies, strict=True):
            if isinstance(reply, Exception) or reply is None:
                continue  # another type under the prefix (WRONGTYPE), or gone since SCAN
            try:
                if self.format == "spring-session":
                    spring = read_spring_session(*reply)
                    if spring is not None:
                        sessions.append(
                            AppSession(key, raw_id, "lastAccessedTime", reply[1], spring))
                else:
                    connect = read_connect_session(reply)
                    if connect is not None:
                        sessions.append(AppSession(key, raw_id, "", reply, connect=connect))
            except MalformedSession:
                malformed += 1  # the reason names a field, never the key: not reported
        return AppBatch(sessions, orphans, malformed)

    async def _read_php(self, found: Sequence[tuple[str, str]]) -> AppBatch:
        """Each session's TTL, then the server's clock (read after every TTL, so a session can
        only look younger than it is)."""
        assert self._app_ttl_ms is not None
        pipe = self._client.pipeline(transaction=False)
        for key, _ in found:
            pipe.pttl(key)
        replies = await pipe.execute()
        # A call of its own (a Cluster pipeline refuses keyless commands), after every TTL. On
        # a Cluster it asks one node: the masters' clocks are taken to agree within the purge's
        # precision, as the index walk takes them to.
        seconds, micros = await self._client.time()
        now = int(seconds) * 1000 + int(micros) // 1000
        sessions = []
        for (key, raw_id), ttl in zip(found, replies, strict=True):
            php = read_php_session(int(ttl), now, self._app_ttl_ms)
            if php is not None:
                sessions.append(AppSession(key, raw_id, None, None, php=php))
        return AppBatch(sessions, [])

    async def remove(
        self, sessions: Sequence[AppSession], *, app_clock: Sequence[bool] | None = None
    ) -> list[bool]:
        """Delete each session unless it changed since it was read; True where deleted.

        ``app_clock``, per session: whether it was judged by the app's own clock rather than by
        Curfew's record. A php-redis session is removed only if its TTL was not renewed since
        when so judged, and whatever its TTL when the record decided (its own guard,
        ``purge_record.lua``, ran first). The other formats guard every removal alike.

        A removed Spring session also loses its ``sessions:expires:<id>`` key, its member of
        the ``expirations:<minute>`` set (or of the ``sessions:expirations`` sorted set) and of
        its principal index set.
        """
        if not sessions:
            return []
        with translate_errors():
            pipe = self._client.pipeline(transaction=False)
            clocks = app_clock if app_clock is not None else [True] * len(sessions)
            for s, by_ttl in zip(sessions, clocks, strict=True):
                if s.php is not None:
                    pipe.execute_command("EVALSHA", DELETE_PHP_SESSION.sha, 1, s.key,
                                         _PHP_TYPES, s.php.ttl_ms if by_ttl else "")
                elif s.guard_field is None:
                    pipe.delete(s.key)
                else:
                    pipe.execute_command(
                        "EVALSHA", DELETE_IF_UNCHANGED.sha, 1, s.key, s.guard_field, s.guard_value
                    )
            try:
                replies = await pipe.execute()
            except rexc.NoScriptError:
                await self._client.script_load(DELETE_IF_UNCHANGED.source)
                await self._client.script_load(DELETE_PHP_SESSION.source)
                return await self.remove(sessions, app_clock=app_clock)
            deleted = [int(r) == 1 for r in replies]
            spring = [s for s, d in zip(sessions, deleted, strict=True) if d and s.spring]
            if spring:
                await self._clean_spring(spring)
        return deleted

    async def _clean_spring(self, sessions: Sequence[AppSession]) -> None:
        """Remove removed sessions from Spring's side keys. Best effort: the session is gone
        already, and a side key of another type than Spring writes (a ``sessions:expirations``
        that is no sorted set, say) only fails its own command, whose error (it would name the
        member, so the session id) is dropped."""
        pipe = self._client.pipeline(transaction=False)
        for s in sessions:
            assert s.spring is not None
            pipe.delete(keys.spring_expires_key(self.prefix, s.raw_id))
            minute = s.spring.expirations_minute_ms
            if minute is not None:
                member = write_spring_string("expires:" + s.raw_id, s.spring.serializer)
                pipe.srem(keys.spring_expirations_key(self.prefix, minute), member)
            # Spring Session 3.4+ can keep expiries in one sorted set instead of the minute
            # sets: an id absent from it costs one ZREM that removes nothing.
            pipe.zrem(keys.spring_expirations_zset_key(self.prefix),
                      write_spring_string(s.raw_id, s.spring.serializer))
            if s.spring.principal:
                pipe.srem(
                    keys.spring_principal_index_key(self.prefix, s.spring.principal),
                    write_spring_string(s.raw_id, s.spring.serializer),
                )
        for reply in await pipe.execute(raise_on_error=False):
            if isinstance(reply, rexc.ResponseError) and not str(reply).startswith("WRONGTYPE"):
                raise StoreDataError(f"Redis refused a command: {redacted(reply)}")

    async def delete_keys(self, keys_: Sequence[str]) -> int:
        """Delete ``keys_`` (orphaned Spring expiry keys); returns how many existed."""
        if not keys_:
            return 0
        with translate_errors():
            pipe = self._client.pipeline(transaction=False)
            for key in keys_:
                pipe.delete(key)
            return sum(int(n) for n in await pipe.execute())
