"""One purge run: gather what expired, check the safety cap, then remove, each removal guarded.

Gather reads only: Curfew's records through the sharded ``due`` indexes (``ZCOUNT``, or
``purge_shard.lua`` in count mode when some limits shrank: cost follows the number of expired
sessions, not the store's size) and, for app formats, the app's keyspace by SCAN
(``purge.appWalk: Scan``), or only the due index (``IndexOnly``): each due record's sealed app id
(``identity.AppIdSeal``) names the app's session, read and judged like a walked one. Nothing is
removed until the whole run is judged, so the cap (``maxPurgeFraction``) can abort a run that
would log out too many users while removing nothing. Every removal is judged again atomically
in Redis (``purge_shard.lua`` reads and removes index entries in one script, from the index
alone for sessions their own records call expired; ``purge_record.lua`` and
``delete_if_unchanged.lua`` compare what was judged), so runs are idempotent, two overlapping
runs are safe, and a session touched during the run keeps living.

The store is any ``curfew.sessions.protocol.SessionStore`` (Redis, or the in-memory store of the
tests and the demo): the engine imports no Redis client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

from curfew.purge.report import Audit, Progress, Summary
from curfew.purge.target import PurgeTarget
from curfew.sessions import keys
from curfew.sessions.codec import SessionCodec, build_codec
from curfew.sessions.errors import StoreError
from curfew.sessions.identity import AppIdSeal, SealError, session_hash
from curfew.sessions.lifetime import Decision, Reason, SessionRecord, judge
from curfew.sessions.protocol import (
    AppSession,
    AppSessionStore,
    SessionStore,
    ShardBatch,
    ShardGroup,
    ShardMode,
)


@dataclass(frozen=True)
class AppCandidate:
    """An app session judged expired, with the Curfew record to end with it, if live."""

    session: AppSession
    sid: str
    reason: Reason
    limit: Decision
    record_last_ms: int | None
    policy: str
    workload: str
    by_app_clock: bool = False
    """Judged by the app's own clock, no Curfew record deciding: its removal re-checks that
    clock (a php-redis TTL renewed since keeps the session)."""


@dataclass
class PurgePlan:
    """What gathering found; nothing of it has been removed yet."""

    index_total: int = 0
    index_due: int = 0
    app_scanned: int = 0
    apps: list[AppCandidate] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    unjoined: int = 0
    """Due records of an app format that name no app session (no sealed app id): with the walk
    off, their app sessions are left to the app's own expiry."""

    @property
    def scanned(self) -> int:
        return self.app_scanned if self.app_scanned else self.index_total

    @property
    def expiring(self) -> int:
        return len(self.apps) if self.app_scanned else self.index_due


T = TypeVar("T")


def _batches(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class Purge:
    """One run over one store for one target."""

    def __init__(
        self,
        store: SessionStore,
        target: PurgeTarget,
        *,
        audit: Audit,
        progress: Progress,
        session_key: bytes | None = None,
        dry_run: bool = False,
        batch_size: int = 1000,
        shard_batch: int = 500,
        scan_count: int = 1000,
        pipelines: int = 2,
    ) -> None:
        self.store = store
        self.target = target
        self.audit = audit
        self.progress = progress
        self.session_key = session_key
        self.dry_run = dry_run or target.audit_only
        self.batch_size = batch_size
        self.shard_batch = shard_batch
        self.scan_count = scan_count
        self.pipelines = pipelines
        self.apps = (
            store.app_sessions(format=target.format, prefix=target.key_prefix,
                               app_ttl_ms=target.app_ttl_ms, id_pattern=target.id_pattern)
            if target.format != keys.CURFEW_FORMAT
            else None
        )
        self.seal: AppIdSeal | None = None
        self.codec: SessionCodec | None = None
        if self.apps is not None:
            if session_key is None:
                raise ValueError(
                    f"store.format {target.format} needs the session key (CURFEW_SESSION_KEY) "
                    "to match the app's sessions with Curfew's records"
                )
            self.seal = AppIdSeal(session_key)
            self.codec = build_codec(target.format, target.key_prefix, target.id_pattern)
        self.summary = Summary()

    async def run(self) -> Summary:
        started = time.monotonic()
        try:
            await self._run()
        except StoreError as error:
            self.summary.outcome = "failed"
            if self.dry_run:
                self.summary.message = f"{error}; {self._why_not()}: removed nothing"
            else:
                removed = sum(self.summary.expired.values())
                self.summary.message = (
                    f"{error}; stopped after removing {removed} sessions, the next run continues"
                )
        finally:
            self.progress.done()
            self.summary.duration_seconds = time.monotonic() - started
        return self.summary

    async def _run(self) -> None:
        await self.store.load_scripts()
        now = await self.store.server_time_ms()
        plan = PurgePlan()
        if self.apps is not None and self.target.app_walk:
            await self._gather_apps(plan, now)
        plan.index_total = await self.store.count_sessions()
        slack = self._tightening_slack(await self.store.limit_classes(now))
        until = now + slack
        if self.apps is None and slack == 0:
            # Without tightening, what is due is what expired: counted in O(log n) per shard.
            plan.index_due = await self.store.count_due(now)
        elif self.apps is None:
            await self._walk_index(now, until, "count", partial(self._count_due, plan))
        elif not self.target.app_walk:
            await self._gather_joined(plan, now, until)
        self.summary.scanned = plan.scanned
        self.progress.show("judged", plan.scanned, plan.expiring, force=True)
        cap = self.target.max_purge_fraction
        if plan.scanned and plan.expiring / plan.scanned > cap:
            self.summary.outcome = "aborted"
            self.summary.message = (
                f"would remove {plan.expiring} of {plan.scanned} sessions "
                f"({plan.expiring / plan.scanned:.0%}), more than purge.maxPurgeFraction "
                f"({cap:.0%}) allows: nothing was removed; check the policy's timeouts"
            )
            return
        if self.dry_run:
            await self._report_dry_run(plan, now, until)
            return
        if self.apps is not None:
            await self._remove_apps(plan, self.apps)
        await self._walk_index(now, until, "remove", self._removed_from_index)
        await self.store.prune_limit_classes(now)
        self.summary.message = f"removed {sum(self.summary.expired.values())} sessions"
        if plan.unjoined:
            self.summary.message += (
                f"; {plan.unjoined} expired records named no app session (recorded before "
                "the sidecar sealed app ids): their app sessions are left to the app's expiry")
        if self.summary.malformed:
            self.summary.message += (
                f"; skipped {self.summary.malformed} malformed app sessions (times that cannot "
                "be read: see the malformed count)")

    async def _walk_index(
        self, now: int, until: int, mode: ShardMode, on_batch: Callable[[ShardBatch], None]
    ) -> None:
        """Every shard's index entries due by ``until``, the shards split over ``pipelines``
        concurrent walks: Redis runs one walk's batch while the job handles another's reply."""
        walks = [
            asyncio.create_task(self._walk_shards(shards, now, until, mode, on_batch))
            for shards in (range(i, keys.SHARDS, self.pipelines) for i in range(self.pipelines))
        ]
        done, pending = await asyncio.wait(walks, return_when=asyncio.FIRST_EXCEPTION)
        for walk in pending:
            walk.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        errors = [error for walk in done if (error := walk.exception()) is not None]
        if errors:
            raise errors[0]  # the first failure is the run's; the other walks stopped with it

    async def _walk_shards(
        self,
        shards: range,
        now: int,
        until: int,
        mode: ShardMode,
        on_batch: Callable[[ShardBatch], None],
    ) -> None:
        """The entries of ``shards``: a batch of each per pipeline."""
        offsets = dict.fromkeys(shards, 0)
        while offsets:
            batches = await self.store.purge_shards(
                offsets,
                now_ms=now,
                until_ms=until,
                count=self.shard_batch,
                mode=mode,
                workloads=self.target.workloads,
            )
            for shard, batch in batches.items():
                on_batch(batch)
                if batch.examined < self.shard_batch:
                    del offsets[shard]
                else:
                    # Removed entries leave the index: only the kept ones are skipped over.
                    offsets[shard] += batch.kept if mode == "remove" else batch.examined
            stage = "removing" if mode == "remove" else "judging"
            self.progress.show(stage, self.summary.scanned, sum(self.summary.expired.values()))

    @staticmethod
    def _count_due(plan: PurgePlan, batch: ShardBatch) -> None:
        plan.index_due += sum(batch.counts.values())

    def _removed_from_index(self, batch: ShardBatch) -> None:
        self.summary.repaired += batch.repaired
        for group in batch.groups:
            if self.apps is not None:
                # With an app format the sessions are the app's: a Curfew record whose app
                # session is already gone is cleanup.
                self.summary.repaired += group.count
                continue
            self._count_group(group)

    def _count_group(self, group: ShardGroup) -> None:
        self.summary.expired[group.reason] += group.count
        self.audit.expired_joined(
            group.joined_sids, reason=group.reason, policy=group.policy, workload=group.workload
        )

    def _count(self, sid: str, reason: Reason, policy: str, workload: str) -> None:
        self.summary.expired[reason] += 1
        self.audit.expired(session=sid, reason=reason, policy=policy, workload=workload)

    def _tightening_slack(self, classes: list[tuple[int, int]]) -> int:
        """How far past now to read the index so sessions recorded with longer limits than the
        current ones are judged too (zero unless some workload's limits shrank)."""
        slack = 0
        min_idle, min_abs = self.target.min_idle_ms, self.target.min_absolute_ms
        for idle, absolute in classes:
            if min_idle is not None:
                slack = max(slack, idle - min_idle)
            if min_abs is not None:
                slack = max(slack, absolute - min_abs)
        return slack

    async def _gather_apps(self, plan: PurgePlan, now: int) -> None:
        assert self.apps is not None
        assert self.session_key is not None
        async for batch in self.apps.walk(count=self.scan_count):
            plan.orphans.extend(batch.orphans)
            self.summary.malformed += batch.malformed
            plan.app_scanned += len(batch.sessions)
            sids = [session_hash(self.session_key, s.raw_id) for s in batch.sessions]
            records = await self.store.read_records(sids)
            for session, sid, record in zip(batch.sessions, sids, records, strict=True):
                candidate = self._judge_app(session, sid, record, now)
                if candidate is not None:
                    plan.apps.append(candidate)
            self.progress.show("app sessions", plan.app_scanned, len(plan.apps))

    async def _gather_joined(self, plan: PurgePlan, now: int, until: int) -> None:
        """The walk off: the app sessions of the records due by ``until``, found through the
        index (each record's sealed app id names its app session) and judged as the walk judges
        them. Cost: the expired records and their app sessions, whatever the store's size."""
        due: list[str] = []

        def listed(batch: ShardBatch) -> None:
            plan.index_due += sum(batch.counts.values()) + batch.repaired
            for group in batch.groups:
                due.extend(group.sids)

        await self._walk_index(now, until, "list", listed)
        for sids in _batches(due, self.batch_size):
            await self._join(plan, sids, now)
            self.progress.show("app sessions", len(due), len(plan.apps))

    async def _join(self, plan: PurgePlan, sids: Sequence[str], now: int) -> None:
        """Open the sealed app ids of ``sids``' records, then read and judge their app sessions.
        A seal that does not open (tampered with, or sealed under another key) or an id outside
        the format's grammar is malformed: counted, and its app session is left alone."""
        assert self.apps is not None
        assert self.seal is not None
        assert self.codec is not None
        found: list[tuple[str, str]] = []
        joined: dict[str, tuple[str, SessionRecord]] = {}
        for sid, (record, sealed) in zip(sids, await self.store.read_joined(sids), strict=True):
            if record is None:
                continue  # dropped by Redis: the index walk repairs its entry
            if sealed is None:
                plan.unjoined += 1
                continue
            try:
                app_id = self.seal.open(sid, sealed)
            except SealError:
                self.summary.malformed += 1
                continue
            # Only the sidecar's key seals, and it seals only ids of the grammar: checked anyway,
            # as no key is ever built from an id outside it.
            grammar = self.codec.pattern.fullmatch(app_id) is not None
            app_key = self.codec.app_key(app_id) if grammar else None
            if app_key is None:
                self.summary.malformed += 1
                continue
            found.append((app_key.key, app_id))
            joined[app_key.key] = (sid, record)
        batch = await self.apps.read(found)
        self.summary.malformed += batch.malformed
        for session in batch.sessions:
            sid, record = joined[session.key]
            candidate = self._judge_app(session, sid, record, now)
            if candidate is not None:
                plan.apps.append(candidate)

    def _judge_app(
        self, session: AppSession, sid: str, record: SessionRecord | None, now: int
    ) -> AppCandidate | None:
        policy = self.target.policy
        own_idle_ms = None
        if session.spring is not None and (session.spring.max_inactive_seconds or 0) > 0:
            own_idle_ms = (session.spring.max_inactive_seconds or 0) * 1000
        if record is not None:
            if record.expired is not None:
                reason = Reason(record.expired.value)
                return AppCandidate(
                    session, sid, reason, record.expired, None, record.policy, record.workload
                )
            expiry = judge(record, self.target.current_limits(record.workload), now)
            if expiry is not None:
                return AppCandidate(
                    session,
                    sid,
                    expiry.reason,
                    expiry.limit,
                    record.last_activity_ms,
                    record.policy,
                    record.workload,
                )
            spring = session.spring
            if spring and own_idle_ms and now >= spring.last_accessed_ms + own_idle_ms:
                return AppCandidate(
                    session,
                    sid,
                    Reason.IDLE,
                    Decision.EXPIRED_IDLE,
                    record.last_activity_ms,
                    record.policy,
                    record.workload,
                )
            return None
        # No Curfew record: the app's own timestamps against the policy's limits.
        idle_ms = self.target.limits.idle_ms
        if own_idle_ms is not None:
            idle_ms = min(idle_ms, own_idle_ms)
        last: int | None = None
        created: int | None = None
        if session.spring is not None:
            last, created = session.spring.last_accessed_ms, session.spring.created_ms
        elif session.connect is not None:
            last = session.connect.last_activity_ms
        elif session.ttl is not None:
            last = session.ttl.last_save_ms(now)
        elif session.php is not None:
            last = session.php.last_activity_ms
        idle_due = last + idle_ms if last is not None else None
        abs_due = created + self.target.limits.absolute_ms if created is not None else None
        dues = [(d, r) for d, r in ((idle_due, Reason.IDLE), (abs_due, Reason.ABSOLUTE)) if d]
        if not dues:
            return None
        due, reason = min(dues, key=lambda d: d[0])
        if now < due:
            return None
        return AppCandidate(session, sid, reason, Decision(reason.value), None, policy, "",
                            by_app_clock=True)

    async def _report_dry_run(self, plan: PurgePlan, now: int, until: int) -> None:
        for app in plan.apps:
            self._count(app.sid, app.reason, app.policy, app.workload)
        if self.apps is None:
            await self._walk_index(now, until, "list", self._would_remove)
        would = sum(self.summary.expired.values())
        self.summary.message = f"{self._why_not()}: would remove {would} sessions, removed nothing"

    def _why_not(self) -> str:
        """Why a run that removes nothing does so."""
        return "enforcement is Audit" if self.target.audit_only else "dry run"

    def _would_remove(self, batch: ShardBatch) -> None:
        for group in batch.groups:
            self._count_group(group)

    async def _remove_apps(self, plan: PurgePlan, apps: AppSessionStore) -> None:
        for batch in _batches(plan.apps, self.batch_size):
            # The Curfew record goes first: if the sidecar touched it since it was judged, the
            # user is back and the app's session must stay.
            live = [c for c in batch if c.record_last_ms is not None]
            outcomes = await self.store.purge_records(
                [(c.sid, c.record_last_ms, c.limit) for c in live]
            )
            touched = {c.sid for c, o in zip(live, outcomes, strict=True) if o == "touched"}
            go = [c for c in batch if c.sid not in touched]
            deleted = await apps.remove([c.session for c in go],
                                        app_clock=[c.by_app_clock for c in go])
            for candidate, gone in zip(go, deleted, strict=True):
                if gone:
                    self.summary.expired[candidate.reason] += 1
                    self.audit.expired(
                        session=candidate.sid,
                        reason=candidate.reason,
                        policy=candidate.policy,
                        workload=candidate.workload,
                    )
            self.progress.show("removing", plan.scanned, sum(self.summary.expired.values()))
        self.summary.repaired += await apps.repair_spring_orphans(plan.orphans)
