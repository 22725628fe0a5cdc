"""What a session store offers the purge job and the sidecar's check: the ``SessionStore``
protocol, and the values that cross it.

Two implementations: :class:`curfew.sessions.store.RedisSessionStore` (Redis, Sentinel or
Cluster, through redis-py and the Lua scripts) and :class:`curfew.sessions.memory.MemoryStore`
(a dict of this process, for the demo and for tests that run the same scenarios against both).
The purge engine (``curfew.purge``) uses only this protocol, so it imports no Redis client.

``sid`` arguments are always keyed hashes (``identity.session_hash``), never raw ids.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol

from curfew.sessions.codec import AppKey
from curfew.sessions.formats import ConnectSession, SpringSession
from curfew.sessions.formats_php import PhpSession
from curfew.sessions.formats_python import TtlClock
from curfew.sessions.lifetime import Decision, Limits, Reason, SessionRecord, Verdict

PurgeOutcome = Literal["removed", "touched", "gone", "done"]
"""What ``purge_records`` did to one session: expired it, left it (touched since it was
judged), found its record gone, or found it already a tombstone."""

ShardMode = Literal["count", "list", "remove"]
"""``purge_shard`` modes: count what expired, list it too, or expire it."""


class JoinedRecord(NamedTuple):
    """A record as the purge job reads it, with the app's sealed session id, if it holds one."""

    record: SessionRecord | None
    sealed_app_id: str | None


@dataclass(frozen=True)
class ShardGroup:
    """Sessions ``purge_shard`` found expired (listed or removed) for one reason and owner (so
    one policy and workload): one group per batch in the common case, so the job handles
    sessions in bulk."""

    reason: Reason
    policy: str
    workload: str
    joined_sids: str
    """The group's session hashes joined by single spaces: no Python object per session."""
    count: int

    @property
    def sids(self) -> list[str]:
        return self.joined_sids.split(" ")


@dataclass(frozen=True)
class ShardBatch:
    """What one ``purge_shard`` call did to one batch of a shard's index."""

    examined: int
    kept: int
    repaired: int
    counts: dict[Reason, int]
    groups: list[ShardGroup]


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
    remaining_ms: int | None = None
    """connect-redis: the key's PTTL read with its value (-1: no TTL), which guards removal."""
    ttl: TtlClock | None = None
    php: PhpSession | None = None


@dataclass(frozen=True)
class AppBatch:
    """One batch of a walk: the sessions read, the ids of Spring sessions whose hash is gone
    but whose ``sessions:expires:<id>`` key or reactive ``sessions:<id>:idx`` list is left (by a
    Cluster removal that stopped half-way, or Spring's own; memory only), and how many sessions
    were malformed (times that cannot be read: skipped, never judged)."""

    sessions: list[AppSession]
    orphans: list[str]
    malformed: int = 0


class AppSessionStore(Protocol):
    """The sessions an app of one format keeps in the store, as the purge job walks, reads and
    removes them (:class:`curfew.sessions.apps.AppSessions` on Redis)."""

    format: str

    def walk(self, *, count: int = ...) -> AsyncIterator[AppBatch]:
        """Every session of the app, in batches of about ``count`` keys."""
        ...

    async def read(self, found: Sequence[tuple[str, str]]) -> AppBatch:
        """The sessions under the given (key, app id) pairs, read as the walk reads them."""
        ...

    async def remove(
        self, sessions: Sequence[AppSession], *, app_clock: Sequence[bool] | None = None
    ) -> list[bool]:
        """Remove each whole session unless it changed since it was read; True where removed."""
        ...

    async def repair_spring_orphans(self, raw_ids: Sequence[str]) -> int:
        """Finish removing Spring sessions whose hash is gone but whose companions were left
        (``AppBatch.orphans``); how many still held something."""
        ...


class SessionStore(Protocol):
    """Curfew's session records and their sharded due index, and the app's sessions beside
    them: what the purge job needs, and the sidecar's one-call check."""

    namespace: str

    # The sidecar's check.

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
        """Judge one request's session and, if ``activity``, touch it; create the record on a
        first sight of a session the app knows (or ``register``)."""
        ...

    async def expire(
        self, sid: str, *, app_key: AppKey | None = None, reason: Decision = ...
    ) -> None:
        """End a session: tombstone, index entry gone, the app's session removed whole."""
        ...

    async def seal_app_id(self, sid: str, sealed: str) -> bool:
        """Write the sealed app id into the record just created; False if gone or sealed."""
        ...

    async def ping(self) -> None: ...

    async def aclose(self) -> None: ...

    # The purge job's.

    async def load_scripts(self) -> None:
        """Make every later call ready (Redis: the scripts cached on every master)."""
        ...

    async def server_time_ms(self) -> int:
        """The store's clock, the one the sidecar's decisions use."""
        ...

    async def count_sessions(self) -> int:
        """Live records: the index entries over all shards."""
        ...

    async def count_due(self, until_ms: int) -> int:
        """Index entries due by ``until_ms`` over all shards."""
        ...

    async def limit_classes(self, now_ms: int) -> list[tuple[int, int]]:
        """The (idle ms, absolute ms) pairs live records were recorded with."""
        ...

    async def prune_limit_classes(self, now_ms: int) -> None:
        """Forget the limit classes whose last record is past its absolute deadline."""
        ...

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
        """Judge (and in ``remove`` mode expire) one batch of each shard's index entries due by
        ``until_ms``, starting at each shard's offset: ``purge_shard.lua``'s contract."""
        ...

    async def read_records(self, sids: Sequence[str]) -> list[SessionRecord | None]: ...

    async def read_joined(self, sids: Sequence[str]) -> list[JoinedRecord]:
        """The records of ``sids`` with the app's sealed id each holds, if any."""
        ...

    async def purge_records(
        self, items: Sequence[tuple[str, int | None, Decision]]
    ) -> list[PurgeOutcome]:
        """Expire each (sid, judged last activity, reason) unless it moved since."""
        ...

    def app_sessions(
        self,
        *,
        format: str,
        prefix: str,
        app_ttl_ms: int | None = None,
        id_pattern: str | None = None,
    ) -> AppSessionStore:
        """The app's own sessions in this store."""
        ...
