"""The Redis session store (redis-py asyncio): the sidecar's one-round-trip check, and the
batched reads and guarded removals the purge job builds on.

Every Redis error is translated here, at one boundary: outages become ``StoreUnavailable``,
bad URLs ``StoreConfigError``. Connections use tight timeouts and a bounded number of retries
with backoff, so a dead store is reported in well under a second instead of hanging a request.

URL forms (the URL comes from a Secret; it never appears in a ConfigMap or a log line)::

    redis://[user:password@]host[:port][/db]              one server
    rediss://[user:password@]host[:port][/db]             one server over TLS
    redis+cluster://[user:password@]host:port[,host:port...]     Redis Cluster (seed nodes)
    rediss+cluster://...                                  Redis Cluster over TLS
    redis+sentinel://[user:password@]host:port[,host:port...]/master-name[/db]
    rediss+sentinel://...                                 Sentinel, TLS to the master

For Sentinel the credentials are the master's; a Sentinel password, if any, goes in the query
string (``?sentinel_password=...``).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

import redis.asyncio as aioredis
from redis import exceptions as rexc
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff

from curfew.sessions import keys, spring
from curfew.sessions.codec import AppKey
from curfew.sessions.errors import (
    StoreConfigError,
    StoreDataError,
    StoreUnavailable,
    outage_at,
    redacted,
)
from curfew.sessions.lifetime import (
    TOUCH_GRANULARITY_MS,
    Decision,
    Limits,
    Reason,
    SessionRecord,
    Verdict,
)
from curfew.sessions.protocol import (
    AppSessionStore,
    JoinedRecord,
    PurgeOutcome,
    ShardBatch,
    ShardGroup,
    ShardMode,
)
from curfew.sessions.resp import (
    LeanRedis,
    ReplyCallback,
    ReplyError,
    bulk_string,
    lean_address,
    outage_of,
    packed_arguments,
    packed_command,
    reply_error,
)

DEFAULT_SOCKET_TIMEOUT: Final = 0.25
DEFAULT_CONNECT_TIMEOUT: Final = 0.5
DEFAULT_RETRIES: Final = 2
_PACKED_KEEP: Final = 64
"""Kinds of ``check_and_touch`` command kept packed (a few per policy in force)."""

_RECORD_FIELDS: Final = tuple(f.value for f in keys.RecordField)

_UNAVAILABLE: Final = (
    rexc.ConnectionError,  # includes BusyLoadingError, MasterNotFoundError, AuthenticationError
    rexc.TimeoutError,
    rexc.ClusterDownError,
    rexc.TryAgainError,
    rexc.ReadOnlyError,
    rexc.MasterDownError,
    rexc.RedisClusterException,
    OSError,
    asyncio.TimeoutError,
)


def _script(name: str) -> str:
    return resources.files("curfew.sessions").joinpath(f"lua/{name}.lua").read_text("utf-8")


@dataclass(frozen=True)
class _Script:
    source: str
    sha: str

    @classmethod
    def load(cls, name: str) -> _Script:
        source = _script(name)
        return cls(source, hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest())


CHECK_AND_TOUCH: Final = _Script.load("check_and_touch")
EXPIRE: Final = _Script.load("expire")
PURGE_RECORD: Final = _Script.load("purge_record")
DELETE_IF_UNCHANGED: Final = _Script.load("delete_if_unchanged")
DELETE_APP_SESSION: Final = _Script.load("delete_app_session")
DELETE_SPRING_SESSION: Final = _Script.load("delete_spring_session")
PURGE_SHARD: Final = _Script.load("purge_shard")
DELETE_IF_UNRENEWED: Final = _Script.load("delete_if_unrenewed")
EMPTY_DJANGO_SESSION: Final = _Script.load("empty_django_session")
DELETE_PHP_SESSION: Final = _Script.load("delete_php_session")
DELETE_SPRING_COMPANION: Final = _Script.load("delete_spring_companion")
SEAL_RECORD: Final = _Script.load("seal_record")
SCRIPTS: Final = (CHECK_AND_TOUCH, EXPIRE, PURGE_RECORD, DELETE_IF_UNCHANGED, DELETE_APP_SESSION,
                  PURGE_SHARD, DELETE_IF_UNRENEWED, EMPTY_DJANGO_SESSION,
                  DELETE_SPRING_SESSION, DELETE_PHP_SESSION, DELETE_SPRING_COMPANION,
                  SEAL_RECORD)
APP_SESSION_REMOVERS: Final = {
    "delete_app_session": DELETE_APP_SESSION,
    "delete_if_unrenewed": DELETE_IF_UNRENEWED,
    "empty_django_session": EMPTY_DJANGO_SESSION,
    "delete_spring_session": DELETE_SPRING_SESSION,
    "delete_php_session": DELETE_PHP_SESSION,
}
"""The script that removes a whole app session, by the name its ``AppKey`` gives: one per
format, the same for the sidecar's expiry and the purge. Each takes the session key, then the
types a session key has; the purge adds its guards after them. A Spring session goes by
``delete_spring_session``, whose keys its hash's fields name (``curfew.sessions.spring``)."""

_REASONS: Final = {r.value.encode(): r for r in Reason}


def _joined_sids(members: list[bytes]) -> str:
    """The session hashes of one group's due index members (all of one owner), joined by
    spaces: the owner id cut from the whole group with one join and one replace."""
    owner = members[0][: keys.OWNER_HEX_LENGTH]
    joined = b" ".join(members)[keys.OWNER_HEX_LENGTH :]
    return joined.replace(b" " + owner, b" ").decode()


@contextmanager
def translate_errors(where: str | None = None) -> Iterator[None]:
    """Turn redis-py and socket errors into the store's typed errors; ``where`` names the
    store in outage messages (:func:`store_address`)."""
    try:
        yield
    except _UNAVAILABLE as error:
        raise outage_at(where, error) from error
    except rexc.ResponseError as error:
        if str(error).startswith(("LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN")):
            raise outage_at(where, error) from error
        raise StoreDataError(f"Redis refused a command: {redacted(error)}") from error
    except AttributeError as error:
        # redis-py 8.1's asyncio connections can lose their writer to a concurrent disconnect
        # (seen on a Cluster under load): a broken connection, not a bug of the caller.
        if not _raised_in_redis(error):
            raise
        raise outage_at(where, error) from error


def _raised_in_redis(error: BaseException) -> bool:
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_globals.get("__name__", "").startswith("redis.")


_DECISIONS: Final[dict[bytes | str, Decision]] = {
    **{d.value.encode(): d for d in Decision}, **{d.value: d for d in Decision}
}
"""A decision by its name in a script's reply (bytes from the wire, str from redis-py)."""


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _hosts(netloc_hosts: str, default_port: int = 6379) -> list[tuple[str, int]]:
    hosts = []
    for item in netloc_hosts.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host:
            host, port = port, ""
        try:
            hosts.append((host.strip("[]"), int(port) if port else default_port))
        except ValueError as error:
            raise StoreConfigError(f"store URL: invalid port in {item!r}") from error
    if not hosts or not all(h for h, _ in hosts):
        raise StoreConfigError("store URL: no host")
    return hosts


def store_address(url: str) -> str | None:
    """What outage messages name a store URL by: its ``host:port`` list (or socket path),
    never its credentials; None for a URL that names none."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return None
    parts = urlsplit("redis://" + rest)
    if scheme == "unix":
        return parts.path or None
    netloc = parts.netloc.rpartition("@")[2]
    try:
        hosts = _hosts(netloc, 26379 if scheme.endswith("+sentinel") else 6379)
    except StoreConfigError:
        return None
    return ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in hosts)


def build_client(
    url: str,
    *,
    socket_timeout: float = DEFAULT_SOCKET_TIMEOUT,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    max_connections: int = 64,
) -> tuple[Any, bool]:
    """A redis-py asyncio client for ``url`` (see the module docstring), and whether it is a
    Cluster client. Raises StoreConfigError for a URL it cannot use."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise StoreConfigError("store URL: expected redis://, rediss://, redis+cluster:// ...")
    retry = Retry(ExponentialBackoff(cap=0.2, base=0.02), retries)
    common: dict[str, Any] = {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": connect_timeout,
        "retry": retry,
        "max_connections": max_connections,
    }
    tls = scheme.startswith("rediss")
    if scheme in ("redis", "rediss", "unix"):
        try:
            return aioredis.Redis.from_url(url, **common), False
        except ValueError as error:
            raise StoreConfigError(f"store URL: {error}") from error
    parts = urlsplit("redis://" + rest)
    netloc = parts.netloc
    auth: dict[str, Any] = {}
    if "@" in netloc:
        userinfo, _, netloc = netloc.rpartition("@")
        user, _, password = userinfo.partition(":")
        auth = {"username": unquote(user) or None, "password": unquote(password) or None}
    hosts = _hosts(netloc)
    if scheme in ("redis+cluster", "rediss+cluster"):
        nodes = [ClusterNode(h, p) for h, p in hosts]
        client = RedisCluster(
            startup_nodes=nodes,
            ssl=tls,
            **auth,
            **{k: v for k, v in common.items() if k != "max_connections"},
            max_connections=max_connections,
        )
        return client, True
    if scheme in ("redis+sentinel", "rediss+sentinel"):
        path = [p for p in parts.path.split("/") if p]
        if not path:
            raise StoreConfigError("store URL: Sentinel URLs name the master: .../master-name")
        query = parse_qs(parts.query)
        sentinel_kwargs: dict[str, Any] = {
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": connect_timeout,
        }
        if "sentinel_password" in query:
            sentinel_kwargs["password"] = query["sentinel_password"][0]
        db = int(path[1]) if len(path) > 1 else 0
        sentinel = Sentinel(hosts, sentinel_kwargs=sentinel_kwargs)
        client = sentinel.master_for(path[0], ssl=tls, db=db, **auth, **common)
        return client, False
    raise StoreConfigError(f"store URL: unsupported scheme {scheme!r}")


class RedisSessionStore:
    """Curfew's session records in one Redis (single, Sentinel or Cluster).

    ``sid`` arguments are always keyed hashes (``curfew.sessions.identity.session_hash``),
    never raw ids. ``app_key`` arguments are the app's own session key of an id its format's
    codec accepted (``curfew.sessions.codec``); they are checked and deleted, never stored.
    """

    def __init__(
        self,
        client: Any,
        *,
        namespace: str,
        cluster: bool = False,
        retain_seconds: float = keys.RETAIN_SECONDS,
        lean: LeanRedis | None = None,
        where: str | None = None,
    ) -> None:
        self._client = client
        self.where = where
        """The store's address in outage messages (:func:`store_address`)."""
        self.namespace = namespace
        self.cluster = cluster
        self.retain_ms = round(retain_seconds * 1000)
        """``keys.RETAIN_SECONDS`` but in tests: the sidecar's and the purge job's must agree."""
        self.lean = lean
        """The pipelined connection ``check_and_touch`` uses, when the URL allows one."""
        self._packed: dict[tuple[Any, ...], tuple[bytes, bytes, int]] = {}
        """:meth:`packed_check`'s parts packed once, by policy and request kind."""

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        key_prefix: str,
        format: str = keys.CURFEW_FORMAT,
        socket_timeout: float = DEFAULT_SOCKET_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        retain_seconds: float = keys.RETAIN_SECONDS,
        max_connections: int = 64,
        lean: bool = False,
    ) -> RedisSessionStore:
        """A store for the config's ``store.keyPrefix`` and ``store.format``.

        Pass both as the unified config has them: with an app format Curfew keeps its records
        under ``curfew:<keyPrefix>``, out of the app's keyspace (``keys.curfew_namespace``).
        ``lean``: send ``check_and_touch`` over a pipelined connection of its own
        (``curfew.sessions.resp``) when the URL names one plain server; the sidecar's hot path.
        """
        if "{" in key_prefix or "}" in key_prefix:
            raise StoreConfigError("store.keyPrefix must not contain '{' or '}' (hash tags)")
        client, cluster = build_client(
            url,
            socket_timeout=socket_timeout,
            connect_timeout=connect_timeout,
            retries=retries,
            max_connections=max_connections,
        )
        address = lean_address(url) if lean else None
        return cls(
            client,
            namespace=keys.curfew_namespace(format, key_prefix),
            cluster=cluster,
            retain_seconds=retain_seconds,
            where=store_address(url),
            lean=None if address is None else LeanRedis(
                address, socket_timeout=socket_timeout, connect_timeout=connect_timeout,
                retries=retries,
            ),
        )

    @property
    def client(self) -> Any:
        """The redis-py client: the app sessions' walk (``app_sessions``) shares it, and tests
        look at the store through it. The purge engine never reaches it (it has the protocol)."""
        return self._client

    async def _routed(self) -> Any:
        """The client, ready to send a keyed command to the master that owns its slot.

        A Cluster client that knows no slots (new, or after redis-py closed it to start over)
        would send each command to any node and follow the MOVED reply; a burst of them makes
        redis-py close every connection, those of requests in flight included. ``initialize``
        costs nothing once the slots are known, and concurrent callers share one.
        """
        if self.cluster:
            await self._client.initialize()
        return self._client

    async def _eval(
        self, script: _Script, keys_: Sequence[str | bytes], args: Sequence[Any]
    ) -> Any:
        with translate_errors(self.where):
            await self._routed()
            try:
                return await self._client.evalsha(script.sha, len(keys_), *keys_, *args)
            except rexc.NoScriptError:
                # EVAL both runs the script and caches it, so the next call is an EVALSHA again.
                return await self._client.eval(script.source, len(keys_), *keys_, *args)

    async def _eval_lean(
        self,
        lean: LeanRedis,
        script: _Script,
        keys_: Sequence[str],
        args: Sequence[Any],
        after: BaseException | None = None,
    ) -> Any:
        if isinstance(after, ReplyError):
            after = outage_of(after) or after
        if isinstance(after, StoreUnavailable) and lean.retries < 1:
            raise after
        if isinstance(after, ReplyError):
            if not str(after).startswith("NOSCRIPT"):
                raise reply_error(after) from after
        else:
            try:
                return await lean.call("EVALSHA", script.sha, len(keys_), *keys_, *args,
                                       attempt=0 if after is None else 1)
            except ReplyError as error:
                if not str(error).startswith("NOSCRIPT"):
                    raise reply_error(error) from error
        try:
            return await lean.call("EVAL", script.source, len(keys_), *keys_, *args)
        except ReplyError as error:
            raise reply_error(error) from error

    def _check_and_touch_args(
        self,
        sid: str,
        limits: Limits,
        activity: bool,
        policy: str,
        workload: str,
        app_key: AppKey | None,
        create: str,
    ) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        """The script's keys and arguments. ``create``: when a missing record may be created
        (``'1'``, ``'0'``, or ``'k'``: if the app key exists with its format's type, which
        passes the app key as a fourth key)."""
        return self._check_keys(sid, app_key, create), (
            sid, *self._check_options(limits, activity, policy, workload, app_key, create))

    def _check_keys(self, sid: str, app_key: AppKey | None, create: str) -> tuple[str, ...]:
        session_keys: tuple[str, ...] = keys.session_keys(self.namespace, sid)
        if create == "k":
            assert app_key is not None
            session_keys += (app_key.key,)
        return session_keys

    def _check_options(
        self,
        limits: Limits,
        activity: bool,
        policy: str,
        workload: str,
        app_key: AppKey | None,
        create: str,
    ) -> tuple[Any, ...]:
        """The script's arguments after the session hash (the same for every session of one
        policy, but for ``activity``, ``create`` and whether there is an app key)."""
        return (
            limits.idle_ms,
            limits.absolute_ms,
            limits.renewal_ms,
            1 if activity else 0,
            policy,
            workload,
            1 if app_key else 0,
            self.retain_ms,
            keys.owner_id(policy, workload),
            TOUCH_GRANULARITY_MS,
            create,
            app_key.types_arg if app_key is not None else "",
        )

    def _create_mode(self, app_key: AppKey | None, register: bool) -> str:
        """How a first sight may create a record: the app vouched (``register``), or its key
        exists, checked in the script where it can be (one server), else never in the first
        call (a Cluster: the app key is in another slot, see :meth:`check_and_touch`)."""
        if register:
            return "1"
        if app_key is None or self.cluster:
            return "0"
        return "k"

    def check_and_touch_now(
        self,
        callback: ReplyCallback,
        sid: str,
        limits: Limits,
        *,
        activity: bool,
        policy: str,
        workload: str,
        app_key: AppKey | None = None,
        register: bool = False,
    ) -> bool:
        """:meth:`check_and_touch` sent at once, for callers that chain callbacks: ``callback``
        gets the raw reply (read it with :meth:`verdict_of`) or the error. False, and nothing
        sent, when only the awaited form can send it now (no lean connection, or none open).

        A call that fails is followed by ``check_and_touch(..., after=error)``, which goes on
        from there: the retries left after an outage, ``EVAL`` after ``NOSCRIPT``.
        """
        lean = self.lean
        if lean is None:
            return False
        return lean.send_now(callback, self.packed_check(
            sid, limits, activity, policy, workload, app_key,
            self._create_mode(app_key, register)))

    def packed_check(
        self,
        sid: str,
        limits: Limits,
        activity: bool,
        policy: str,
        workload: str,
        app_key: AppKey | None,
        create: str,
    ) -> bytes:
        """The ``EVALSHA`` of :meth:`_check_and_touch_args`, packed (the sidecar sends one per
        request): the parts that are the same for every session of a policy are packed once and
        kept, only the keys and the session hash are packed per call."""
        keys_ = self._check_keys(sid, app_key, create)
        cache_key = (limits.idle_ms, limits.absolute_ms, limits.renewal_ms, activity, policy,
                     workload, app_key.types_arg if app_key is not None else None, create)
        parts = self._packed.get(cache_key)
        if parts is None:
            if len(self._packed) >= _PACKED_KEEP:
                self._packed.clear()  # policies were reloaded many times: start afresh
            options = self._check_options(limits, activity, policy, workload, app_key, create)
            parts = self._packed[cache_key] = (
                packed_arguments(("EVALSHA", CHECK_AND_TOUCH.sha, len(keys_))),
                packed_arguments(options),
                4 + len(keys_) + len(options),
            )
        head, tail, count = parts
        return packed_command(count, (head, *[bulk_string(k) for k in keys_], bulk_string(sid),
                                      tail))

    async def check_and_touch(
        self,
        sid: str,
        limits: Limits,
        *,
        activity: bool,
        policy: str,
        workload: str,
        app_key: AppKey | None = None,
        register: bool = False,
        after: BaseException | None = None,
    ) -> Verdict:
        """Check one request's session and, if it counts as ``activity``, touch it: one EVALSHA.

        A first sight creates the record (``Decision.NEW``), owned by this ``policy`` and
        ``workload``, only for a session the app knows: its ``app_key`` exists with its
        format's type, or the app issued it (``register``: see :meth:`register`). Any other
        first sight is ``Decision.UNKNOWN`` and leaves nothing in
        the store. A record keeps the owner that created it when another workload shares the
        session. An expired session becomes a tombstone and keeps answering with its reason.
        The app key itself is never stored (it holds the raw id). ``after``: how a
        :meth:`check_and_touch_now` of this request failed.

        On a Cluster the app key is in another slot than the record, so one script cannot read
        both: the first call may not create, and only a first sight (``unknown``) costs a
        ``TYPE`` of the app key and, if the app has the session, a second call that creates.
        """
        create = self._create_mode(app_key, register)
        keys_, args = self._check_and_touch_args(sid, limits, activity, policy, workload,
                                                 app_key, create)
        if self.lean is None:
            reply = await self._eval(CHECK_AND_TOUCH, keys_, args)
        else:
            reply = await self._eval_lean(self.lean, CHECK_AND_TOUCH, keys_, args, after)
        verdict = self.verdict_of(reply)
        if (verdict.decision is Decision.UNKNOWN and self.cluster and app_key is not None
                and await self._app_has(app_key)):
            keys_, args = self._check_and_touch_args(sid, limits, activity, policy, workload,
                                                     app_key, "1")
            verdict = self.verdict_of(await self._eval(CHECK_AND_TOUCH, keys_, args))
        return verdict

    async def _app_has(self, app_key: AppKey) -> bool:
        """Whether the app keeps a session under ``app_key`` (its key, of its format's type)."""
        with translate_errors():
            kind = _text(await self._client.type(app_key.key))
        return kind in app_key.types

    async def register(
        self, sid: str, limits: Limits, *, policy: str, workload: str
    ) -> Verdict:
        """A session the app just issued (the sidecar saw it on the app's answer, or the app
        called the ops port's register endpoint): its record is created if missing, touched
        if live; a tombstone stays one (an expired id is never
        revived by the app sending it again)."""
        return await self.check_and_touch(
            sid, limits, activity=True, policy=policy, workload=workload, register=True
        )

    @staticmethod
    def verdict_of(reply: Any) -> Verdict:
        """The verdict in a reply of the ``check_and_touch`` script."""
        try:
            decision = _DECISIONS[reply[0]]
            return Verdict(
                decision,
                max(0, int(reply[1])) / 1000,
                max(0, int(reply[2])) / 1000,
                int(reply[3]) == 1,
            )
        except (IndexError, KeyError, TypeError, ValueError) as error:
            raise StoreDataError(f"unexpected reply from check_and_touch: {reply!r}") from error

    async def expire(
        self,
        sid: str,
        *,
        app_key: AppKey | None = None,
        reason: Decision = Decision.EXPIRED_IDLE,
    ) -> None:
        """End a session: its record becomes a tombstone (keeping the reason it already has, or
        ``reason``), its index entry goes, and the app's own session key is deleted if it holds
        its format's type, with the whole session, by the format's script (``AppKey.remover``;
        a Django ``cached_db`` session is emptied instead, since its database would bring it
        back). A Spring session goes whole, with every key Spring keeps beside it
        (``delete_spring_session.lua``, the purge's script too)."""
        record, due, _ = keys.session_keys(self.namespace, sid)
        args = (sid, reason.value, self.retain_ms)
        with translate_errors(self.where):
            if app_key is None:
                await self._eval(EXPIRE, (record, due), args)
                return
            remover = APP_SESSION_REMOVERS[app_key.remover]
            if remover is DELETE_SPRING_SESSION:
                await self._eval(EXPIRE, (record, due), args)
                await self._delete_spring(app_key)
                return
            # One round trip on a single server; two slots (so two nodes) on a Cluster.
            pipe = self._client.pipeline(transaction=False)
            # execute_command, not evalsha(): redis-py's Cluster pipeline blocks the method, yet
            # routes the command by its keys like any other.
            pipe.execute_command("EVALSHA", EXPIRE.sha, 2, record, due, *args)
            pipe.execute_command("EVALSHA", remover.sha, 1, app_key.key, app_key.types_arg)
            try:
                await pipe.execute()
            except rexc.NoScriptError:
                await self._eval(EXPIRE, (record, due), args)
                await self._eval(remover, (app_key.key,), (app_key.types_arg,))

    async def _delete_spring(self, app_key: AppKey) -> None:
        """Read the Spring session's fields (and its reactive index list), then remove it whole
        by them; read again when the app wrote meanwhile (what is guarded changed), a few times
        at most. On a Cluster the hash goes first, then its companions
        (:func:`remove_spring_companions`)."""
        idx = spring.idx_key(app_key.prefix, app_key.app_id)
        for _ in range(3):
            try:
                fields = await self._client.hmget(app_key.key, list(spring.FIELDS))
            except rexc.ResponseError as error:
                if str(error).startswith("WRONGTYPE"):
                    return  # no session: another key of the app, never deleted
                raise
            if self.cluster:
                removal = spring.build_removal(app_key.prefix, app_key.app_id, fields,
                                               hash_only=True)
            else:
                members = await _set_members(self._client, idx)
                removal = spring.build_removal(app_key.prefix, app_key.app_id, fields, members)
            reply = int(await self._eval(DELETE_SPRING_SESSION, removal.keys, removal.args))
            if reply == 1 and self.cluster:
                await remove_spring_companions(self._client, app_key.prefix,
                                               [(app_key.app_id, fields)])
            if reply != spring.CHANGED:
                return

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers (every master, on a Cluster)."""
        with translate_errors(self.where):
            await (await self._routed()).ping()

    async def aclose(self) -> None:
        if self.lean is not None:
            await self.lean.aclose()
        with translate_errors(self.where):
            await self._client.aclose()

    # The purge job's operations: batched, pipelined, each removal guarded by a re-check.

    async def load_scripts(self) -> None:
        """Cache every script on every master, so pipelined EVALSHAs never meet NOSCRIPT."""
        with translate_errors(self.where):
            for script in SCRIPTS:
                await self._client.script_load(script.source)

    async def server_time_ms(self) -> int:
        """Redis's clock, the one the sidecar's decisions use."""
        with translate_errors(self.where):
            seconds, micros = await self._client.time()
        return int(seconds) * 1000 + int(micros) // 1000

    async def count_sessions(self) -> int:
        """Live (not yet expired) records: the sum of the shards' index sizes."""
        with translate_errors(self.where):
            pipe = self._client.pipeline(transaction=False)
            for shard in range(keys.SHARDS):
                pipe.zcard(keys.due_key(self.namespace, shard))
            return sum(int(n) for n in await pipe.execute())

    async def count_due(self, until_ms: int) -> int:
        """Index entries due by ``until_ms`` over all shards (O(log n) each): every session
        expired under its recorded limits, and entries whose record Redis already dropped."""
        with translate_errors(self.where):
            pipe = self._client.pipeline(transaction=False)
            for shard in range(keys.SHARDS):
                pipe.zcount(keys.due_key(self.namespace, shard), "-inf", keys.due_until(until_ms))
            return sum(int(n) for n in await pipe.execute())

    async def limit_classes(self, now_ms: int) -> list[tuple[int, int]]:
        """The (idle ms, absolute ms) pairs that records still live were recorded with."""
        classes: set[tuple[int, int]] = set()
        with translate_errors(self.where):
            pipe = self._client.pipeline(transaction=False)
            for shard in range(keys.SHARDS):
                pipe.zrangebyscore(keys.limits_key(self.namespace, shard), now_ms, "+inf")
            replies = await pipe.execute()
        for members in replies:
            for member in members:
                idle, _, absolute = _text(member).partition(":")
                classes.add((int(idle), int(absolute)))
        return sorted(classes)

    async def prune_limit_classes(self, now_ms: int) -> None:
        """Drop the limit classes whose last record is past its absolute deadline."""
        with translate_errors(self.where):
            pipe = self._client.pipeline(transaction=False)
            for shard in range(keys.SHARDS):
                pipe.zremrangebyscore(keys.limits_key(self.namespace, shard), "-inf", f"({now_ms}")
            await pipe.execute()

    async def purge_shards(
        self,
        batches: Mapping[int, int],
        *,
        now_ms: int,
        until_ms: int,
        count: int,
        mode: ShardMode,
        workloads: Mapping[str, Limits],
    ) -> dict[int, ShardBatch]:
        """Run ``purge_shard`` on one batch of each shard in ``batches`` (shard -> offset), all
        in one pipeline. Each call judges at most ``count`` index entries due by ``until_ms``:
        those due by ``now_ms`` from the index alone, the later ones by their records."""
        wl: list[Any] = [self.retain_ms, len(workloads)]
        for name, limits in workloads.items():
            wl += [name, limits.idle_ms, limits.absolute_ms]
        shards = list(batches)
        with translate_errors(self.where):
            pipe = self._client.pipeline(transaction=False)
            for shard in shards:
                pipe.execute_command(
                    "EVALSHA",
                    PURGE_SHARD.sha,
                    1,
                    keys.due_key(self.namespace, shard),
                    keys.record_prefix(self.namespace, shard),
                    now_ms,
                    keys.due_until(until_ms),
                    batches[shard],
                    count,
                    mode,
                    *wl,
                )
            replies = await pipe.execute()
        result = {}
        for shard, reply in zip(shards, replies, strict=True):
            head, rest = reply[:6], reply[6:]
            groups = [
                ShardGroup(
                    _REASONS[rest[i]],
                    rest[i + 1].decode(),
                    rest[i + 2].decode(),
                    _joined_sids(rest[i + 3]),
                    len(rest[i + 3]),
                )
                for i in range(0, len(rest), 4)
            ]
            result[shard] = ShardBatch(
                examined=int(head[0]),
                kept=int(head[1]),
                repaired=int(head[2]),
                counts={Reason.IDLE: int(head[3]), Reason.ABSOLUTE: int(head[4]),
                        Reason.TIGHTENED: int(head[5])},
                groups=groups,
            )
        return result

    async def read_records(self, sids: Sequence[str]) -> list[SessionRecord | None]:
        """The records of ``sids`` (None where Redis already expired one), one pipeline."""
        return [record for record, _ in await self.read_joined(sids)]

    async def read_joined(self, sids: Sequence[str]) -> list[JoinedRecord]:
        """The records of ``sids``, each with the app's session id sealed in it (None where the
        record holds none: older records, or a seal that was never written), one pipeline."""
        if not sids:
            return []
        with translate_errors(self.where):
            pipe = self._client.pipeline(transaction=False)
            for sid in sids:
                pipe.hmget(keys.record_key(self.namespace, sid), *_RECORD_FIELDS)
            replies = await pipe.execute()
        records = []
        for values in replies:
            fields = {
                name: _text(value)
                for name, value in zip(_RECORD_FIELDS, values, strict=True)
                if value is not None
            }
            records.append(JoinedRecord(SessionRecord.from_fields(fields) if fields else None,
                                        fields.get(keys.RecordField.SEALED_APP_ID)))
        return records

    async def seal_app_id(self, sid: str, sealed: str) -> bool:
        """Write the app's sealed session id (``identity.AppIdSeal``) into the record of
        ``sid``, which the sidecar has just created; False when the record is gone or already
        holds one. Called once per session, on first sight only: never on the hot path."""
        record = keys.record_key(self.namespace, sid)
        return int(await self._eval(SEAL_RECORD, (record,), (sealed,))) == 1

    def app_sessions(
        self,
        *,
        format: str,
        prefix: str,
        app_ttl_ms: int | None = None,
        id_pattern: str | None = None,
    ) -> AppSessionStore:
        """The app's own sessions in this store, for the purge job (``curfew.sessions.apps``)."""
        from curfew.sessions.apps import AppSessions

        return AppSessions(self._client, format=format, prefix=prefix, app_ttl_ms=app_ttl_ms,
                           id_pattern=id_pattern)

    async def purge_records(
        self, items: Sequence[tuple[str, int | None, Decision]]
    ) -> list[PurgeOutcome]:
        """Expire each (sid, judged last activity ms, reason) unless it moved since it was
        judged. ``None`` as last activity only cleans the index entry of a vanished record."""
        if not items:
            return []
        with translate_errors(self.where):
            pipe = self._client.pipeline(transaction=False)
            for sid, last, reason in items:
                record, due, _ = keys.session_keys(self.namespace, sid)
                pipe.execute_command(
                    "EVALSHA",
                    PURGE_RECORD.sha,
                    2,
                    record,
                    due,
                    sid,
                    "" if last is None else str(last),
                    reason.value,
                    self.retain_ms,
                )
            replies = await pipe.execute()
        outcomes: list[PurgeOutcome] = []
        for reply in replies:
            text = _text(reply)
            if text not in ("removed", "touched", "gone", "done"):
                raise StoreDataError(f"unexpected reply from purge_record: {text!r}")
            outcomes.append(text)  # type: ignore[arg-type]
        return outcomes

    async def scan_keys(self, pattern: str, *, count: int = 1000) -> AsyncIterator[list[str]]:
        """Keys matching ``pattern`` in batches of about ``count``, by SCAN (never KEYS)."""
        batch: list[str] = []
        with translate_errors(self.where):
            async for key in self._client.scan_iter(match=pattern, count=count):
                batch.append(_text(key))
                if len(batch) >= count:
                    yield batch
                    batch = []
        if batch:
            yield batch


async def _set_members(client: Any, key: str) -> list[bytes]:
    """A set's members, none when the key is absent or of another type."""
    try:
        return list(await client.smembers(key))
    except rexc.ResponseError as error:
        if str(error).startswith("WRONGTYPE"):
            return []
        raise


async def remove_spring_companions(
    client: Any, prefix: str, sessions: Sequence[tuple[str, Sequence[bytes | None] | None]]
) -> int:
    """After each session's hash is gone (on a Redis Cluster, where no script takes them
    together; or for an orphan the walk found): remove every key and member Spring keeps beside
    it (``spring.build_companions``), each by ``delete_spring_companion.lua`` on its own node,
    in ``spring.cluster_phases`` order: the set members, then the keys that name the session by
    its id. ``sessions``: (raw id, its hash's fields as read, or None for an orphan). Returns
    how many of the sessions still held something beside the hash.

    The ``sessions:<id>:idx`` set is read now, with the hash gone: no save of the app adds to
    it any more. Idempotent, so a run that stopped half-way is finished by the next."""
    if not sessions:
        return 0
    pipe = client.pipeline(transaction=False)
    for raw_id, _ in sessions:
        pipe.smembers(spring.idx_key(prefix, raw_id))
    lists = await pipe.execute(raise_on_error=False)
    phases: tuple[list[tuple[int, spring.Companion]], ...] = ([], [])
    for n, ((raw_id, fields), members) in enumerate(zip(sessions, lists, strict=True)):
        read = [] if isinstance(members, Exception) else list(members)
        for phase, found in zip(phases, spring.cluster_phases(
                spring.build_companions(prefix, raw_id, fields, read)), strict=True):
            phase.extend((n, c) for c in found)
    held: set[int] = set()
    for phase in phases:
        if not phase:
            continue
        for attempt in range(2):
            pipe = client.pipeline(transaction=False)
            for _, c in phase:
                # execute_command: redis-py's Cluster pipeline routes it by its one key.
                pipe.execute_command("EVALSHA", DELETE_SPRING_COMPANION.sha, 1, c.key, c.op,
                                     *c.members)
            try:
                replies = await pipe.execute()
                break
            except rexc.NoScriptError:
                if attempt:
                    raise
                await client.script_load(DELETE_SPRING_COMPANION.source)
        held.update(n for (n, _), reply in zip(phase, replies, strict=True) if int(reply))
    return len(held)
