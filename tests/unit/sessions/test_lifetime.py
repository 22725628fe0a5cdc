"""The pure decision rules: every decision of check_and_touch and every purge reason."""

from dataclasses import replace

import pytest

from curfew.sessions import keys
from curfew.sessions.lifetime import (
    TOUCH_GRANULARITY_MS,
    Decision,
    Limits,
    Reason,
    SessionRecord,
    decide,
    judge,
    touch_granularity_ms,
)

MIN = 60_000
NOW = 1_800_000_000_000
LIMITS = Limits(idle_seconds=15 * 60, absolute_seconds=8 * 3600, renewal_seconds=3600)


def record(
    *, created_ago: int, last_ago: int, idle: int = 15, absolute: int = 480
) -> SessionRecord:
    """A record created and last active the given minutes ago, with limits in minutes."""
    return SessionRecord(
        created_ms=NOW - created_ago * MIN,
        last_activity_ms=NOW - last_ago * MIN,
        idle_ms=idle * MIN,
        absolute_ms=absolute * MIN,
        authenticated_ms=NOW - created_ago * MIN,
        policy="shop/storefront",
        workload="Deployment/shop/web",
    )


def test_a_first_sight_creates_a_record_with_full_limits_left() -> None:
    verdict, created = decide(None, LIMITS, now_ms=NOW, activity=True, policy="p", workload="w")
    assert verdict.decision is Decision.NEW
    assert (verdict.idle_remaining, verdict.absolute_remaining) == (900, 28800)
    assert created.created_ms == created.last_activity_ms == NOW
    assert created.due_ms == NOW + 15 * MIN


def test_a_session_the_app_does_not_know_is_unknown_and_leaves_no_record() -> None:
    verdict, record = decide(None, LIMITS, now_ms=NOW, activity=True, known=False)
    assert verdict.decision is Decision.UNKNOWN
    assert not verdict.expired
    assert record is None


def test_an_active_session_is_allowed_and_its_idle_clock_restarts() -> None:
    verdict, after = decide(record(created_ago=60, last_ago=10), LIMITS, now_ms=NOW, activity=True)
    assert verdict.decision is Decision.ALLOWED
    assert verdict.idle_remaining == 900
    assert verdict.absolute_remaining == 7 * 3600
    assert after.last_activity_ms == NOW


def test_a_request_that_is_not_activity_leaves_the_idle_clock_where_it_was() -> None:
    before = record(created_ago=60, last_ago=10)
    verdict, after = decide(before, LIMITS, now_ms=NOW, activity=False)
    assert verdict.idle_remaining == 5 * 60
    assert after == before


def test_activity_within_the_touch_granularity_is_not_written_again() -> None:
    before = replace(record(created_ago=60, last_ago=0),
                     last_activity_ms=NOW - TOUCH_GRANULARITY_MS + 1)
    verdict, after = decide(before, LIMITS, now_ms=NOW, activity=True)
    assert after == before
    # The time left counts from the recorded activity: early by under the granularity.
    assert verdict.idle_remaining == (15 * MIN - TOUCH_GRANULARITY_MS + 1) / 1000
    _, moved = decide(before, LIMITS, now_ms=NOW + 1, activity=True)
    assert moved.last_activity_ms == NOW + 1


@pytest.mark.parametrize(
    ("idle_ms", "granularity_ms"),
    [(15 * MIN, 1000), (16_000, 1000), (2_000, 125), (16, 1)],
)
def test_a_short_idle_limit_gets_a_finer_touch_granularity(
    idle_ms: int, granularity_ms: int
) -> None:
    assert touch_granularity_ms(idle_ms) == granularity_ms


@pytest.mark.parametrize(
    ("case", "created_ago", "last_ago", "expected"),
    [
        ("idle limit passed", 60, 15, Decision.EXPIRED_IDLE),
        ("absolute limit passed while active", 480, 1, Decision.EXPIRED_ABSOLUTE),
        ("both passed, the idle deadline first", 500, 400, Decision.EXPIRED_IDLE),
        ("both passed, the absolute deadline first", 500, 30, Decision.EXPIRED_ABSOLUTE),
        ("one millisecond short of idle", 60, 14, Decision.ALLOWED),
    ],
)
def test_a_session_past_a_limit_expires_with_the_reason_of_the_first_deadline(
    case: str, created_ago: int, last_ago: int, expected: Decision
) -> None:
    verdict, after = decide(
        record(created_ago=created_ago, last_ago=last_ago), LIMITS, now_ms=NOW, activity=True
    )
    assert verdict.decision is expected, case
    if expected.expired:
        assert after.expired is expected
        assert (verdict.idle_remaining, verdict.absolute_remaining) == (0, 0)


def test_a_tombstone_keeps_answering_with_its_reason() -> None:
    _, tomb = decide(record(created_ago=60, last_ago=20), LIMITS, now_ms=NOW, activity=True)
    verdict, again = decide(tomb, LIMITS, now_ms=NOW + MIN, activity=True)
    assert verdict.decision is Decision.EXPIRED_IDLE
    assert again == tomb


def test_shorter_current_limits_apply_to_an_existing_session_and_stay_recorded() -> None:
    tighter = Limits(idle_seconds=5 * 60, absolute_seconds=8 * 3600)
    verdict, _ = decide(record(created_ago=60, last_ago=10), tighter, now_ms=NOW, activity=True)
    assert verdict.decision is Decision.EXPIRED_IDLE
    verdict, after = decide(record(created_ago=60, last_ago=2), tighter, now_ms=NOW, activity=False)
    assert verdict.idle_remaining == 3 * 60
    assert after.idle_ms == 5 * MIN


def test_longer_current_limits_never_lengthen_a_recorded_session() -> None:
    looser = Limits(idle_seconds=60 * 60, absolute_seconds=24 * 3600)
    verdict, _ = decide(
        record(created_ago=60, last_ago=20, idle=15), looser, now_ms=NOW, activity=True
    )
    assert verdict.decision is Decision.EXPIRED_IDLE


def test_renewal_is_due_once_the_session_was_authenticated_longer_ago_than_the_interval() -> None:
    old, _ = decide(record(created_ago=61, last_ago=1), LIMITS, now_ms=NOW, activity=True)
    young, _ = decide(record(created_ago=59, last_ago=1), LIMITS, now_ms=NOW, activity=True)
    assert old.renewal_due
    assert not young.renewal_due


@pytest.mark.parametrize(
    ("case", "rec", "current", "expected"),
    [
        ("alive under both", record(created_ago=60, last_ago=5), None, None),
        ("idle under its recorded limits", record(created_ago=60, last_ago=16), None, Reason.IDLE),
        ("absolute", record(created_ago=481, last_ago=1), None, Reason.ABSOLUTE),
        (
            "expired only under the shorter current idle limit",
            record(created_ago=60, last_ago=10),
            Limits(5 * 60, 8 * 3600),
            Reason.TIGHTENED,
        ),
        (
            "expired only under the shorter current absolute limit",
            record(created_ago=300, last_ago=1),
            Limits(15 * 60, 4 * 3600),
            Reason.TIGHTENED,
        ),
        (
            "expired under its own limits even though the current ones are tighter",
            record(created_ago=60, last_ago=20),
            Limits(5 * 60, 8 * 3600),
            Reason.IDLE,
        ),
    ],
)
def test_the_purge_judges_a_record_by_the_shorter_of_recorded_and_current_limits(
    case: str, rec: SessionRecord, current: Limits | None, expected: Reason | None
) -> None:
    expiry = judge(rec, current, NOW)
    assert (expiry.reason if expiry else None) is expected, case


def test_a_record_survives_the_round_trip_through_its_hash_fields() -> None:
    rec = record(created_ago=60, last_ago=5)
    assert SessionRecord.from_fields(rec.to_fields()) == rec


def test_a_record_carries_the_owner_id_of_the_policy_and_workload_that_created_it() -> None:
    _, created = decide(None, LIMITS, now_ms=NOW, activity=True, policy="p/q", workload="D/p/w")
    assert created.owner == keys.owner_id("p/q", "D/p/w")
    assert created.to_fields()["o"] == created.owner


@pytest.mark.parametrize(
    ("case", "rec", "score"),
    [
        ("idle deadline first", record(created_ago=60, last_ago=5), NOW + 10 * MIN),
        ("absolute deadline first", record(created_ago=475, last_ago=1), NOW + 5 * MIN + 0.5),
    ],
)
def test_the_due_score_of_a_record_is_its_earliest_deadline_marked_when_absolute(
    case: str, rec: SessionRecord, score: float
) -> None:
    assert rec.due_score == score, case
    assert keys.due_deadline(rec.due_score) == (rec.due_ms, score % 1 == 0.5), case


def test_an_unreadable_record_parses_to_none_instead_of_raising() -> None:
    assert SessionRecord.from_fields({"c": "not a number"}) is None
    assert SessionRecord.from_fields({"l": "1"}) is None


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Limits(idle_seconds=0, absolute_seconds=10)
