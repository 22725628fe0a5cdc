"""The decision rules of the session store: a pure Python mirror of ``lua/check_and_touch.lua``.

The Lua script is what runs on the hot path (atomically, on Redis's clock); this module states
the same rules over plain values with the clock passed in, so they can be tested without Redis
and so the purge job judges candidates exactly as the sidecar would. All times and limits are
integer milliseconds, as in the records.

Rules, for a record with creation ``c``, last activity ``l`` and recorded limits ``i`` / ``a``,
checked with the current limits ``I`` / ``A``:

- effective limits are ``min(i, I)`` and ``min(a, A)`` (tightening only ever shortens);
- the session is expired when ``now >= l + min(i, I)`` (idle) or ``now >= c + min(a, A)``
  (absolute); the reason is the deadline that passed first;
- a session without a record gets one only when the app knows it (``known``: its key exists,
  or the app issued the cookie through the sidecar); otherwise it is ``unknown`` and nothing is
  written, so strangers' values leave nothing behind;
- an expired record becomes a tombstone that answers with its reason until it is retained no
  longer, so a stale cookie replayed later is not mistaken for a new session;
- only a request that counts as activity moves ``l``, and only once it is at least the touch
  granularity (``touch_granularity_ms``: 1 s, or a sixteenth of a shorter idle limit's) past
  the recorded ``l``: a busy session is written about once a second instead of on every
  request, and its idle deadline can come that much early, never late;
- the record's due index entry (``keys.due_member``, ``keys.due_score``) is its owner and sid,
  scored by its earliest deadline under its recorded limits: the script keeps the two in step,
  so an entry due by now is a session expired by its record's own fields.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import cached_property

from curfew.sessions import keys
from curfew.sessions.keys import RecordField

Clock = Callable[[], int]
"""Returns the current time in integer milliseconds since the epoch."""


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


TOUCH_GRANULARITY_MS = 1000
"""Activity this close after the recorded last activity is not written again (see
:func:`touch_granularity_ms`)."""


def touch_granularity_ms(idle_ms: int) -> int:
    """How far past the recorded last activity a request must be to move it, under the
    effective idle limit ``idle_ms``: ``TOUCH_GRANULARITY_MS``, or a sixteenth of the idle limit
    when that is shorter, so a policy of seconds keeps its precision. The script computes the
    same (``check_and_touch.lua``)."""
    return min(TOUCH_GRANULARITY_MS, idle_ms // 16)


class Decision(StrEnum):
    """What ``check_and_touch`` decided for one request."""

    NEW = "new"
    UNKNOWN = "unknown"
    """No record, and none may be created: the app does not know the session (its key is
    missing, or it never issued the cookie). Nothing is stored: the request has no session."""
    ALLOWED = "allowed"
    EXPIRED_IDLE = "idle"
    EXPIRED_ABSOLUTE = "absolute"

    @property
    def expired(self) -> bool:
        return self in (Decision.EXPIRED_IDLE, Decision.EXPIRED_ABSOLUTE)


class Reason(StrEnum):
    """Why the purge job removed a session (the audit event's and the summary's reasons)."""

    IDLE = "idle"
    ABSOLUTE = "absolute"
    TIGHTENED = "tightened"
    """Expired only because the current limits are shorter than the ones it was recorded with."""


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


@dataclass(frozen=True)
class Limits:
    """The limits a session is checked against, in seconds."""

    idle_seconds: float
    absolute_seconds: float
    renewal_seconds: float | None = None

    def __post_init__(self) -> None:
        if self.idle_seconds <= 0 or self.absolute_seconds <= 0:
            raise ValueError("idle and absolute limits must be positive")
        if self.renewal_seconds is not None and self.renewal_seconds <= 0:
            raise ValueError("the renewal interval must be positive")

    @cached_property
    def idle_ms(self) -> int:
        return _ms(self.idle_seconds)

    @cached_property
    def absolute_ms(self) -> int:
        return _ms(self.absolute_seconds)

    @cached_property
    def renewal_ms(self) -> int:
        return 0 if self.renewal_seconds is None else _ms(self.renewal_seconds)

    def tightened_by(self, other: Limits | None) -> Limits:
        """The shorter of each limit of ``self`` and ``other``."""
        if other is None:
            return self
        return Limits(
            min(self.idle_seconds, other.idle_seconds),
            min(self.absolute_seconds, other.absolute_seconds),
            self.renewal_seconds,
        )


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check: the decision and what is left, in seconds (never negative)."""

    decision: Decision
    idle_remaining: float
    absolute_remaining: float
    renewal_due: bool = False

    @property
    def expired(self) -> bool:
        return self.decision.expired


@dataclass(frozen=True)
class SessionRecord:
    """One session record as stored (times and limits in milliseconds)."""

    created_ms: int
    last_activity_ms: int
    idle_ms: int
    absolute_ms: int
    authenticated_ms: int
    policy: str = ""
    workload: str = ""
    app_session: bool = False
    expired: Decision | None = None
    expired_at_ms: int | None = None

    @property
    def idle_deadline_ms(self) -> int:
        return self.last_activity_ms + self.idle_ms

    @property
    def absolute_deadline_ms(self) -> int:
        return self.created_ms + self.absolute_ms

    @property
    def due_ms(self) -> int:
        """The earliest deadline."""
        return min(self.idle_deadline_ms, self.absolute_deadline_ms)

    @property
    def owner(self) -> str:
        """The owner id of the (policy, workload) that created the record (field ``o``)."""
        return keys.owner_id(self.policy, self.workload)

    @property
    def due_score(self) -> float:
        """The record's score in the due index (``keys.due_score``)."""
        return keys.due_score(self.idle_deadline_ms, self.absolute_deadline_ms)

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> SessionRecord | None:
        """Parse a record hash (decoded to str). None for an empty or unreadable record."""
        try:
            expired = fields.get(RecordField.EXPIRED)
            created = int(fields[RecordField.CREATED])
            return cls(
                created_ms=created,
                last_activity_ms=int(fields.get(RecordField.LAST_ACTIVITY, created)),
                idle_ms=int(fields.get(RecordField.IDLE, 0)),
                absolute_ms=int(fields.get(RecordField.ABSOLUTE, 0)),
                authenticated_ms=int(fields.get(RecordField.AUTHENTICATED, created)),
                policy=fields.get(RecordField.POLICY, ""),
                workload=fields.get(RecordField.WORKLOAD, ""),
                app_session=fields.get(RecordField.APP_SESSION, "0") == "1",
                expired=Decision(expired) if expired else None,
                expired_at_ms=(
                    int(fields[RecordField.EXPIRED_AT])
                    if RecordField.EXPIRED_AT in fields
                    else None
                ),
            )
        except (KeyError, ValueError):
            return None

    def to_fields(self) -> dict[str, str]:
        """The hash fields of this record, as the Lua script writes them."""
        fields = {
            RecordField.CREATED.value: str(self.created_ms),
            RecordField.LAST_ACTIVITY.value: str(self.last_activity_ms),
            RecordField.IDLE.value: str(self.idle_ms),
            RecordField.ABSOLUTE.value: str(self.absolute_ms),
            RecordField.AUTHENTICATED.value: str(self.authenticated_ms),
            RecordField.POLICY.value: self.policy,
            RecordField.WORKLOAD.value: self.workload,
            RecordField.APP_SESSION.value: "1" if self.app_session else "0",
            RecordField.OWNER.value: self.owner,
        }
        if self.expired is not None:
            fields[RecordField.EXPIRED.value] = self.expired.value
            fields[RecordField.EXPIRED_AT.value] = str(self.expired_at_ms or 0)
        return fields


def expiry_of(record: SessionRecord, now_ms: int) -> Decision | None:
    """The reason ``record`` is expired at ``now_ms`` under its recorded limits, or None."""
    if now_ms < record.due_ms:
        return None
    if record.idle_deadline_ms <= record.absolute_deadline_ms:
        return Decision.EXPIRED_IDLE
    return Decision.EXPIRED_ABSOLUTE


def decide(
    record: SessionRecord | None,
    limits: Limits,
    *,
    now_ms: int,
    activity: bool,
    policy: str = "",
    workload: str = "",
    app_session: bool = False,
    known: bool = True,
) -> tuple[Verdict, SessionRecord | None]:
    """What ``check_and_touch`` decides for ``record`` at ``now_ms``, and the record it leaves.

    ``known``: whether the app knows a session that has no record yet (its key exists, or it
    issued the cookie), so that one may be created; else it is ``UNKNOWN`` and none is.
    """
    if record is None:
        if not known:
            return Verdict(Decision.UNKNOWN, 0.0, 0.0), None
        created = SessionRecord(
            created_ms=now_ms,
            last_activity_ms=now_ms,
            idle_ms=limits.idle_ms,
            absolute_ms=limits.absolute_ms,
            authenticated_ms=now_ms,
            policy=policy,
            workload=workload,
            app_session=app_session,
        )
        return Verdict(Decision.NEW, limits.idle_seconds, limits.absolute_seconds), created
    if record.expired is not None:
        return Verdict(record.expired, 0.0, 0.0), record
    current = replace(
        record,
        idle_ms=min(record.idle_ms, limits.idle_ms),
        absolute_ms=min(record.absolute_ms, limits.absolute_ms),
    )
    reason = expiry_of(current, now_ms)
    if reason is not None:
        return Verdict(reason, 0.0, 0.0), replace(current, expired=reason, expired_at_ms=now_ms)
    if activity and now_ms - current.last_activity_ms >= touch_granularity_ms(current.idle_ms):
        current = replace(current, last_activity_ms=now_ms)
    renewal_due = limits.renewal_ms > 0 and now_ms - current.authenticated_ms >= limits.renewal_ms
    verdict = Verdict(
        Decision.ALLOWED,
        (current.idle_deadline_ms - now_ms) / 1000,
        (current.absolute_deadline_ms - now_ms) / 1000,
        renewal_due,
    )
    return verdict, current


@dataclass(frozen=True)
class Expiry:
    """The purge job's judgement of an expired session."""

    reason: Reason
    limit: Decision
    """The limit that ran out under the effective limits (what the tombstone records)."""


def judge(record: SessionRecord, current: Limits | None, now_ms: int) -> Expiry | None:
    """Why the purge job should remove ``record`` at ``now_ms``, or None to keep it.

    ``current`` is the current limits of the record's workload when the purge config lists it.
    A tombstone is never judged again: it is already out of the index.
    """
    if record.expired is not None:
        return None
    recorded = expiry_of(record, now_ms)
    if recorded is not None:
        return Expiry(Reason(recorded.value), recorded)
    if current is None:
        return None
    effective = replace(
        record,
        idle_ms=min(record.idle_ms, current.idle_ms),
        absolute_ms=min(record.absolute_ms, current.absolute_ms),
    )
    limit = expiry_of(effective, now_ms)
    return Expiry(Reason.TIGHTENED, limit) if limit is not None else None
