"""An in-process session store: the ``SessionStore`` protocol on dicts of this process.

For the demo when no Redis is at hand, and for tests that run the same purge scenarios against
it and Redis. It decides with the very rules the Lua scripts mirror
(``curfew.sessions.lifetime``), keeps a due index scored as ``keys.due_score`` scores it, and
judges a shard's index entries as ``purge_shard.lua`` does (common path from the score alone,
the tightening window from the record, lapsed entries repaired), so a purge behaves as it would
on Redis. Apps' sessions: the ``generic`` format only, one value per key (``app_values``).
Not for production: one process only, nothing shared, nothing persisted.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import replace

from curfew.sessions import keys
from curfew.sessions.codec import AppKey
from curfew.sessions.lifetime import (
    Decision,
    Limits,
    Reason,
    SessionRecord,
    Verdict,
    decide,
    expiry_of,
)
from curfew.sessions.protocol import (
    AppBatch,
    AppSession,
    AppSessionStore,
    JoinedRecord,
    PurgeOutcome,
    ShardBatch,
    ShardGroup,
    ShardMode,
)
from curfew.sessions.store import RedisSessionStore


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class MemoryStore(RedisSessionStore):
    """Curfew's session records, their due index and an app's ``generic`` sessions, in dicts.

    It derives from the Redis store only so that the sidecar, which is built on that class (its
    pipelined connection and its namespace switch), can host it in the demo: every operation of
    the ``SessionStore`` protocol is its own, and it never opens a connection.
    """

    def __init__(
        self,
        *,
        namespace: str,
        retain_seconds: float = keys.RETAIN_SECONDS,
        clock: Callable[[], int] = _wall_ms,
    ) -> None:
        super().__init__(None, namespace=namespace, retain_seconds=retain_seconds)
        self._clock = clock
        self._records: dict[str, SessionRecord] = {}
        self._sealed: dict[str, str] = {}
        self._due: dict[str, float] = {}
        """The due index: sid -> score (``keys.due_score``); a tombstone has no entry."""
        self.app_values: dict[str, bytes] = {}
        """The app's own session keys and values (the ``generic`` format)."""
        self._next_sweep = 0

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
        now = self._clock()
        self._forget_stale(now)
        known = register or (app_key is not None and app_key.key in self.app_values)
        verdict, record = decide(
            self._records.get(sid), limits, now_ms=now, activity=activity,
            policy=policy, workload=workload, app_session=app_key is not None, known=known,
        )
        if record is not None:
            self._put(sid, record)
        return verdict

    async def expire(
        self,
        sid: str,
        *,
        app_key: AppKey | None = None,
        reason: Decision = Decision.EXPIRED_IDLE,
    ) -> None:
        record = self._records.get(sid)
        if record is not None and record.expired is None:
            self._put(sid, replace(record, expired=reason, expired_at_ms=self._clock()))
        if app_key is not None:
            self.app_values.pop(app_key.key, None)

    async def seal_app_id(self, sid: str, sealed: str) -> bool:
        if sid not in self._records or sid in self._sealed:
            return False
        self._sealed[sid] = sealed
        return True

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        self._records.clear()
        self._sealed.clear()
        self._due.clear()

    # The purge job's.

    async def load_scripts(self) -> None:
        return None

    async def server_time_ms(self) -> int:
        return self._clock()

    async def count_sessions(self) -> int:
        return len(self._due)

    async def count_due(self, until_ms: int) -> int:
        top = keys.due_until(until_ms)
        return sum(1 for score in self._due.values() if score <= top)

    async def limit_classes(self, now_ms: int) -> list[tuple[int, int]]:
        return sorted({(r.idle_ms, r.absolute_ms) for sid, r in self._records.items()
                       if sid in self._due and r.absolute_deadline_ms >= now_ms})

    async def prune_limit_classes(self, now_ms: int) -> None:
        return None  # derived from the records on each call: nothing to prune

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
        return {shard: self._purge_shard(shard, offset, now_ms, until_ms, count, mode, workloads)
                for shard, offset in batches.items()}

    def _purge_shard(
        self,
        shard: int,
        offset: int,
        now: int,
        until: int,
        count: int,
        mode: ShardMode,
        workloads: Mapping[str, Limits],
    ) -> ShardBatch:
        """``purge_shard.lua`` on a dict: the same entries, counts, groups and removals."""
        top = keys.due_until(until)
        entries = sorted((score, sid) for sid, score in self._due.items()
                         if keys.shard_of(sid) == shard and score <= top)[offset:offset + count]
        remove, listing = mode == "remove", mode != "count"
        counts = dict.fromkeys(Reason, 0)
        kept = repaired = 0
        groups: dict[tuple[Reason, str], list[str]] = {}
        goes: list[str] = []
        for score, sid in entries:
            record = self._records.get(sid)
            owner = keys.owner_id(record.policy, record.workload) if record else ""
            deadline = math.floor(score)
            reason: Reason
            if deadline > now:
                if record is None or record.expired is not None:
                    repaired += record is None
                    goes.append(sid)
                    continue
                current = workloads.get(record.workload)
                effective = record if current is None else replace(
                    record, idle_ms=min(record.idle_ms, current.idle_ms),
                    absolute_ms=min(record.absolute_ms, current.absolute_ms))
                limit = expiry_of(effective, now) if current is not None else None
                if limit is None:
                    kept += 1
                    continue
                reason = Reason.TIGHTENED
                if remove:
                    self._records[sid] = replace(record, expired=limit, expired_at_ms=now)
                    goes.append(sid)
            elif deadline >= now - self.retain_ms and record is not None:
                reason = Reason.ABSOLUTE if score != deadline else Reason.IDLE
                if remove:
                    goes.append(sid)
            else:
                repaired += 1
                goes.append(sid)
                continue
            counts[reason] += 1
            if listing:
                groups.setdefault((reason, owner), []).append(sid)
        if remove:
            for sid in goes:
                self._due.pop(sid, None)
        found = []
        for (reason, _owner), sids in groups.items():
            record = self._records[sids[0]]
            found.append(ShardGroup(reason, record.policy, record.workload, " ".join(sids),
                                    len(sids)))
        return ShardBatch(examined=len(entries), kept=kept, repaired=repaired, counts=counts,
                          groups=found)

    async def read_records(self, sids: Sequence[str]) -> list[SessionRecord | None]:
        return [self._records.get(sid) for sid in sids]

    async def read_joined(self, sids: Sequence[str]) -> list[JoinedRecord]:
        return [JoinedRecord(self._records.get(sid), self._sealed.get(sid)) for sid in sids]

    async def purge_records(
        self, items: Sequence[tuple[str, int | None, Decision]]
    ) -> list[PurgeOutcome]:
        outcomes: list[PurgeOutcome] = []
        for sid, last, reason in items:
            record = self._records.get(sid)
            if record is None:
                outcomes.append("gone")
            elif record.expired is not None:
                self._due.pop(sid, None)
                outcomes.append("done")
            elif record.last_activity_ms != last:
                outcomes.append("touched")
            else:
                self._put(sid, replace(record, expired=reason, expired_at_ms=self._clock()))
                outcomes.append("removed")
        return outcomes

    def app_sessions(
        self,
        *,
        format: str,
        prefix: str,
        app_ttl_ms: int | None = None,
        id_pattern: str | None = None,
    ) -> AppSessionStore:
        if format != "generic":
            raise ValueError(f"the in-memory store keeps no {format} sessions (generic only)")
        return MemoryAppSessions(self.app_values, prefix)

    def put_record(self, sid: str, record: SessionRecord) -> None:
        """Write a record as ``check_and_touch`` would have (tests plant past sessions so)."""
        self._put(sid, record)

    def _put(self, sid: str, record: SessionRecord) -> None:
        """Store ``record`` and move its index entry in the same step, as the scripts do."""
        self._records[sid] = record
        if record.expired is None:
            self._due[sid] = record.due_score
        else:
            self._due.pop(sid, None)

    def _forget_stale(self, now: int) -> None:
        # What Redis does with PEXPIREAT: a record lives until retain_ms past its deadline.
        if now < self._next_sweep:
            return
        self._next_sweep = now + 60_000
        retain = self.retain_ms
        stale = [
            sid for sid, r in self._records.items()
            if now > (r.expired_at_ms if r.expired_at_ms is not None else r.due_ms) + retain
        ]
        for sid in stale:
            del self._records[sid]
            self._sealed.pop(sid, None)


class MemoryAppSessions:
    """A ``generic`` app's sessions in a dict: any value under ``<prefix><id>``, judged by the
    Curfew record alone (as on Redis, where such a key without a record is left to its TTL)."""

    format = "generic"

    def __init__(self, values: dict[str, bytes], prefix: str) -> None:
        self._values = values
        self.prefix = prefix

    async def walk(self, *, count: int = 1000) -> AsyncIterator[AppBatch]:
        found = [(key, key[len(self.prefix):]) for key in list(self._values)
                 if key.startswith(self.prefix) and len(key) > len(self.prefix)]
        for start in range(0, len(found), count):
            yield await self.read(found[start:start + count])

    async def read(self, found: Sequence[tuple[str, str]]) -> AppBatch:
        return AppBatch([AppSession(key, raw_id, None, None) for key, raw_id in found
                         if key in self._values], [])

    async def remove(
        self, sessions: Sequence[AppSession], *, app_clock: Sequence[bool] | None = None
    ) -> list[bool]:
        return [self._values.pop(s.key, None) is not None for s in sessions]

    async def repair_spring_orphans(self, raw_ids: Sequence[str]) -> int:
        # Only ``generic`` sessions live here: a walk never reports Spring orphans.
        return 0
