"""An in-process session store for the demo when no Redis is at hand.

It implements the store interface the sidecar uses (``check_and_touch``, ``expire``, ``ping``,
and ``read_records`` to look at a record) with the very decision rules the Lua script mirrors
(``curfew.sessions.lifetime.decide``), on a dict in memory: sessions behave as they would in Redis,
and vanish when the process ends. Not for production: one process only, nothing shared, nothing
persisted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from curfew.sessions import keys
from curfew.sessions.codec import AppKey
from curfew.sessions.lifetime import Decision, Limits, SessionRecord, Verdict, decide
from curfew.sessions.store import SessionStore


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class MemoryStore(SessionStore):
    """Curfew's session records in a dict of this process."""

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
        self._next_sweep = 0

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
        # The demo's app keeps no session in the store: only what it issued is known.
        verdict, record = decide(
            self._records.get(sid), limits, now_ms=now, activity=activity,
            policy=policy, workload=workload, app_session=app_key is not None, known=register,
        )
        if record is not None:
            self._records[sid] = record
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
            self._records[sid] = replace(record, expired=reason, expired_at_ms=self._clock())

    async def read_records(self, sids: Sequence[str]) -> list[SessionRecord | None]:
        return [self._records.get(sid) for sid in sids]

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        self._records.clear()

    async def server_time_ms(self) -> int:
        return self._clock()

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
