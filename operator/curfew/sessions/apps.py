"""The apps' own sessions in the shared store (spring-session, connect-redis, django,
flask-session, php-redis, generic): walked by SCAN in batches and removed with a guard, for the
purge job.

A walk never uses KEYS or another blocking command: SCAN with COUNT >= 1000, and one pipeline
per batch to read what was found. A removal deletes the session only if the field the purge job
judged still holds the bytes it read, so a session the app touched meanwhile survives; where the
key's TTL is the app's clock (connect-redis, django, flask-session, php-redis) also only while
that TTL has not grown (the app's touch or save renews it). A whole session is removed by its
format's script (``AppKey.remover``, ``store.APP_SESSION_REMOVERS``), the one the sidecar's
expiry uses too.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from typing import Any, Final

from redis import exceptions as rexc
from redis.asyncio.cluster import RedisCluster

from curfew.sessions import keys, spring
from curfew.sessions.codec import APP_KEY_TYPES, DEFAULT_ID_PATTERNS, build_codec
from curfew.sessions.formats import (
    MalformedSession,
    read_connect_session,
    read_spring_session,
)
from curfew.sessions.formats_php import read_php_session
from curfew.sessions.formats_python import read_django_session, read_flask_session
from curfew.sessions.protocol import AppBatch, AppSession
from curfew.sessions.store import (
    APP_SESSION_REMOVERS,
    DELETE_IF_UNCHANGED,
    remove_spring_companions,
    translate_errors,
)

MIN_SCAN_COUNT: Final = 1000
TTL_FORMATS: Final = ("django", "flask-session")
"""Formats read by their key's TTL alone (``curfew.sessions.formats_python``)."""
_GRAMMAR_WALKED: Final = (*TTL_FORMATS, "php-redis")
"""Formats whose walk takes only keys whose tail is an id of the grammar."""
_PHP_TYPES: Final = ",".join(APP_KEY_TYPES["php-redis"])


class AppSessions:
    """The sessions an app of ``format`` keeps under ``prefix``, on the store's client.
    ``app_ttl_ms``: the lifetime the app gives a session key (``store.appTTL``; php-redis needs
    it: ``session.gc_maxlifetime``, the clock). ``id_pattern``: the id grammar (unset, the
    format's); for ``TTL_FORMATS`` and php-redis a key whose tail is outside it is none of the
    app's sessions (Django's ``...sessions.cache`` prefix is also the head of every
    ``...sessions.cached_db`` key; phpredis keeps ``<id>_LOCK`` keys beside its sessions)."""

    def __init__(
        self,
        client: Any,
        *,
        format: str,
        prefix: str,
        app_ttl_ms: int | None = None,
        id_pattern: str | None = None,
    ) -> None:
        if format not in ("spring-session", "connect-redis", "generic", "php-redis",
                          *TTL_FORMATS):
            raise ValueError(f"no app sessions for format {format!r}")
        if format == "php-redis" and app_ttl_ms is None:
            raise ValueError("php-redis sessions need the app's TTL")
        self._client = client
        self.format = format
        self.prefix = prefix
        self.app_ttl_ms = app_ttl_ms
        """The lifetime the app gives its session key (``store.appTTL``), when stated."""
        self.remover = APP_SESSION_REMOVERS[build_codec(format, prefix).remover]
        """The format's whole-session script (``AppKey.remover``), guarded by what was read."""
        self.id_pattern = (
            re.compile(DEFAULT_ID_PATTERNS[format] if id_pattern is None else id_pattern)
            if format in _GRAMMAR_WALKED else None
        )
        self.curfew_namespace = keys.curfew_namespace(format, prefix)
        self.cluster = isinstance(client, RedisCluster)

    async def walk(self, *, count: int = MIN_SCAN_COUNT) -> AsyncIterator[AppBatch]:
        """The app's sessions, in batches of about ``count`` keys."""
        count = max(count, MIN_SCAN_COUNT)
        pattern = keys.app_scan_pattern(self.format, self.prefix)
        expires_head = self.prefix + keys.SPRING_EXPIRES
        batch: list[tuple[str, str]] = []
        expiry_keys: list[str] = []  # ids named by Spring's shadow keys and reactive idx lists
        # A PHP session is a string: SCAN's TYPE filter (Redis 6+) leaves the rest on the server.
        only = "string" if self.format == "php-redis" else None
        with translate_errors():
            async for raw_key in self._client.scan_iter(match=pattern, count=count, _type=only):
                key = raw_key.decode("utf-8", "replace") if isinstance(raw_key, bytes) else raw_key
                if key.startswith(self.curfew_namespace):
                    continue  # an empty app prefix matches Curfew's own keys too
                raw_id = keys.app_raw_id(self.format, self.prefix, key)
                if raw_id is not None and self.id_pattern is not None and (
                        self.id_pattern.fullmatch(raw_id) is None):
                    continue
                marked = _spring_idx_id(raw_id) if self.format == "spring-session" else None
                if marked is not None:
                    expiry_keys.append(marked)
                elif raw_id is not None:
                    batch.append((key, raw_id))
                elif self.format == "spring-session" and key.startswith(expires_head):
                    expiry_keys.append(key[len(expires_head):])
                if len(batch) + len(expiry_keys) >= count:
                    yield await self._read(batch, expiry_keys)
                    batch, expiry_keys = [], []
            if batch or expiry_keys:
                yield await self._read(batch, expiry_keys)

    async def read(self, found: Sequence[tuple[str, str]]) -> AppBatch:
        """The sessions under the given (key, app id) pairs, read as the walk reads them: for
        sessions the due index names (a key gone, or of another type, is left out)."""
        with translate_errors():
            return await self._read(found, [])

    async def _read(self, found: Sequence[tuple[str, str]], expiry_keys: Sequence[str]) -> AppBatch:
        if self.format == "generic":
            return AppBatch([AppSession(key, raw_id, None, None) for key, raw_id in found], [])
        if self.format in TTL_FORMATS:
            return await self._read_ttl(found)
        if self.format == "php-redis":
            return await self._read_php(found)
        connect = self.format == "connect-redis"
        pipe = self._client.pipeline(transaction=False)
        for key, _ in found:
            if self.format == "spring-session":
                pipe.hmget(key, *spring.FIELDS[:3])  # the times: the principal waits for removal
            else:
                pipe.get(key)
                if connect:
                    pipe.pttl(key)
        for raw_id in expiry_keys:
            pipe.exists(keys.spring_session_key(self.prefix, raw_id))
        replies = await pipe.execute(raise_on_error=False)
        read_at_ms = None
        remaining: list[Any] = [None] * len(found)
        if connect:
            # Redis's clock once every PTTL of the batch is answered: later than each was read
            # at, so no session's last activity is read as earlier than it was. (A call of its
            # own: a Cluster pipeline refuses TIME.)
            seconds, micros = await self._client.time()
            read_at_ms = int(seconds) * 1000 + int(micros) // 1000
            remaining = replies[1 : 2 * len(found) : 2]
            replies = replies[0 : 2 * len(found) : 2] + replies[2 * len(found) :]
        alive = replies[len(found) :]
        orphans = [k for k, a in zip(expiry_keys, alive, strict=True) if a == 0]
        replies = replies[: len(found)]
        sessions = []
        malformed = 0
        for (key, raw_id), reply, ttl in zip(found, replies, remaining, strict=True):
            if isinstance(reply, Exception) or reply is None:
                continue  # another type under the prefix (WRONGTYPE), or gone since SCAN
            try:
                if self.format == "spring-session":
                    found_spring = read_spring_session(*reply)
                    if found_spring is not None:
                        sessions.append(AppSession(key, raw_id, "lastAccessedTime", reply[1],
                                                   found_spring))
                else:
                    ttl_ms = ttl if isinstance(ttl, int) else None
                    read = read_connect_session(reply, remaining_ms=ttl_ms,
                                                read_at_ms=read_at_ms, app_ttl_ms=self.app_ttl_ms)
                    if read is not None:
                        sessions.append(AppSession(key, raw_id, "", reply, connect=read,
                                                   remaining_ms=ttl_ms))
            except MalformedSession:
                malformed += 1  # the reason names a field, never the key: not reported
        return AppBatch(sessions, orphans, malformed)

    async def _read_ttl(self, found: Sequence[tuple[str, str]]) -> AppBatch:
        """A batch of a format whose clock is the key's TTL: each value and its PTTL."""
        pipe = self._client.pipeline(transaction=False)
        for key, _ in found:
            pipe.get(key)
            pipe.pttl(key)
        replies = await pipe.execute(raise_on_error=False)
        sessions = []
        malformed = 0
        for i, (key, raw_id) in enumerate(found):
            value, remaining = replies[2 * i], replies[2 * i + 1]
            if isinstance(value, Exception) or value is None or isinstance(remaining, Exception):
                continue  # another type under the prefix (WRONGTYPE), or gone since SCAN
            if int(remaining) < 0:
                continue  # no TTL: not a session these libraries wrote (they always set one)
            try:
                if self.format == "django":
                    clock = read_django_session(value, int(remaining), self.app_ttl_ms)
                else:
                    clock = read_flask_session(int(remaining), self.app_ttl_ms)
            except MalformedSession:
                malformed += 1
                continue
            if clock is None:
                continue  # an empty (anonymous) session: nothing to end
            sessions.append(AppSession(key, raw_id, "", value, ttl=clock))
        return AppBatch(sessions, [], malformed)

    async def _read_php(self, found: Sequence[tuple[str, str]]) -> AppBatch:
        """Each session's TTL, then the server's clock (read after every TTL, so a session can
        only look younger than it is)."""
        assert self.app_ttl_ms is not None
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
            php = read_php_session(int(ttl), now, self.app_ttl_ms)
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

        A Spring session goes whole, by the sidecar's script (``delete_spring_session.lua``):
        its hash, its ``sessions:expires:<id>`` key, its member of the ``expirations:<minute>``
        set or of the ``sessions:expirations`` sorted set, of its principal index set, and the
        reactive repository's index sets and ``sessions:<id>:idx``. The fields that name the
        principal and the index list are read here, for the sessions to remove only (a
        ``SPRING_SECURITY_CONTEXT`` is often a kilobyte: the walk does not carry it). On a
        Cluster the hash goes first and its companions after it
        (``store.remove_spring_companions``).
        """
        if not sessions:
            return []
        with translate_errors():
            fields = await self._spring_fields([s for s in sessions if s.spring is not None])
            pipe = self._client.pipeline(transaction=False)
            clocks = app_clock if app_clock is not None else [True] * len(sessions)
            sent: list[int] = []
            for i, (s, by_ttl) in enumerate(zip(sessions, clocks, strict=True)):
                read, members = fields.get(s.key) or (None, [])
                if s.spring is not None and (read is None or read[1] != s.guard_value):
                    continue  # touched or gone since the walk judged it: it stays
                sent.append(i)
                if read is not None:
                    removal = spring.build_removal(self.prefix, s.raw_id, read, members,
                                                   hash_only=self.cluster)
                    pipe.execute_command("EVALSHA", self.remover.sha,
                                         len(removal.keys), *removal.keys, *removal.args)
                elif s.php is not None:
                    pipe.execute_command("EVALSHA", self.remover.sha, 1, s.key,
                                         _PHP_TYPES, s.php.ttl_ms if by_ttl else "")
                elif s.guard_field is None:
                    pipe.delete(s.key)
                elif s.connect is not None or s.ttl is not None:
                    if s.ttl is not None:
                        ttl = s.ttl.remaining_ms
                    else:
                        ttl = -1 if s.remaining_ms is None else s.remaining_ms
                    pipe.execute_command("EVALSHA", self.remover.sha, 1, s.key,
                                         "string", s.guard_value, ttl)
                else:
                    pipe.execute_command(
                        "EVALSHA", DELETE_IF_UNCHANGED.sha, 1, s.key, s.guard_field, s.guard_value
                    )
            try:
                replies = await pipe.execute() if sent else []
            except rexc.NoScriptError:
                await self._client.script_load(DELETE_IF_UNCHANGED.source)
                await self._client.script_load(self.remover.source)
                return await self.remove(sessions, app_clock=app_clock)
            deleted = [False] * len(sessions)
            for i, reply in zip(sent, replies, strict=True):
                deleted[i] = int(reply) == 1
            if self.cluster:
                await remove_spring_companions(
                    self._client, self.prefix,
                    [(s.raw_id, fields[s.key][0]) for s, d in zip(sessions, deleted, strict=True)
                     if d and s.spring])
        return deleted

    async def _spring_fields(
        self, sessions: Sequence[AppSession]
    ) -> dict[str, tuple[tuple[bytes | None, ...] | None, list[bytes]]]:
        """Each Spring session's ``spring.FIELDS`` as they are now (None: no longer a hash) and
        the members of its reactive ``sessions:<id>:idx`` set (read on a single server only: on
        a Cluster it is read once the hash is gone)."""
        if not sessions:
            return {}
        pipe = self._client.pipeline(transaction=False)
        for s in sessions:
            pipe.hmget(s.key, *spring.FIELDS)
            if not self.cluster:
                pipe.smembers(spring.idx_key(self.prefix, s.raw_id))
        replies = await pipe.execute(raise_on_error=False)
        step = 1 if self.cluster else 2
        found: dict[str, tuple[tuple[bytes | None, ...] | None, list[bytes]]] = {}
        for i, s in enumerate(sessions):
            fields = replies[step * i]
            members = [] if self.cluster else replies[step * i + 1]
            found[s.key] = (None if isinstance(fields, Exception) else tuple(fields),
                            [] if isinstance(members, Exception) else list(members))
        return found

    async def repair_spring_orphans(self, raw_ids: Sequence[str]) -> int:
        """Finish the removal of Spring sessions whose hash is gone but whose shadow key or
        reactive index list was left (the ids a walk found, ``AppBatch.orphans``): every
        companion that needs no hash field goes (``store.remove_spring_companions``). Returns
        how many such sessions still held something. What only the hash named (the servlet
        repository's principal-index member, the ``expirations:<minute>`` member) is not
        known any more: Spring skips the first (its hash is gone) and drops the second with
        its minute's set."""
        unique = list(dict.fromkeys(raw_ids))
        if not unique:
            return 0
        with translate_errors():
            return await remove_spring_companions(self._client, self.prefix,
                                                  [(raw_id, None) for raw_id in unique])


def _spring_idx_id(raw_id: str | None) -> str | None:
    """The id of a reactive ``sessions:<id>:idx`` key's tail (``<id>:idx``), else None. An id
    with a ``:`` is none (no Spring id has one), so the tail of an index key
    (``index:<name>:<value>:idx``, a principal ending in ``:idx``) never names a session."""
    if raw_id is None or not raw_id.endswith(spring.IDX_SUFFIX):
        return None
    head = raw_id[: -len(spring.IDX_SUFFIX)]
    return head if head and ":" not in head else None
