"""connect-redis's clock: the last activity of a session kept alive by ``touch`` (EXPIRE only,
under express-session's ``resave: false``) comes from its key's remaining TTL."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from curfew.sessions.formats import connect_lifetime_ms, read_connect_session

SAVED_EXPIRES = "2026-11-26T18:15:00.000Z"
EXPIRES_MS = 1_795_716_900_000
MAX_AGE = 900_000
SAVED_AT = EXPIRES_MS - MAX_AGE


def _value(max_age: float | None = MAX_AGE, expires: str | None = SAVED_EXPIRES) -> bytes:
    return json.dumps({"cookie": {"originalMaxAge": max_age, "expires": expires,
                                  "httpOnly": True, "path": "/"}, "user": "alice"}).encode()


def test_a_touch_after_the_save_is_read_from_the_remaining_ttl() -> None:
    # Touched 10 minutes after its save, read 2 minutes after the touch.
    read_at = SAVED_AT + 12 * 60_000
    session = read_connect_session(_value(), remaining_ms=MAX_AGE - 2 * 60_000,
                                   read_at_ms=read_at)
    assert session is not None
    assert session.last_activity_ms == SAVED_AT + 10 * 60_000


def test_a_key_without_a_ttl_tells_only_the_save() -> None:
    session = read_connect_session(_value(), remaining_ms=-1, read_at_ms=SAVED_AT + 10**9)
    assert session is not None
    assert session.last_activity_ms == SAVED_AT


def test_the_save_wins_when_the_ttl_reads_older() -> None:
    # A TTL shortened by hand (or a maxAge lowered since) never makes a saved session idler.
    session = read_connect_session(_value(), remaining_ms=1000, read_at_ms=SAVED_AT + 5000)
    assert session is not None
    assert session.last_activity_ms == SAVED_AT


def test_a_ttl_longer_than_the_lifetime_reads_as_activity_now() -> None:
    read_at = SAVED_AT + 60_000
    session = read_connect_session(_value(), remaining_ms=MAX_AGE * 2, read_at_ms=read_at)
    assert session is not None
    assert session.last_activity_ms == read_at


def test_a_browser_session_cookie_uses_the_stated_store_ttl() -> None:
    value = _value(max_age=None, expires=None)
    read_at = 10**12
    stated = read_connect_session(value, remaining_ms=86_400_000 - 30_000, read_at_ms=read_at,
                                  app_ttl_ms=86_400_000)
    assert stated is not None
    assert stated.last_activity_ms == read_at - 30_000
    unstated = read_connect_session(value, remaining_ms=86_400_000 - 30_000, read_at_ms=read_at)
    assert unstated is not None
    assert unstated.last_activity_ms is None


@pytest.mark.parametrize(
    ("case", "max_age", "app_ttl", "lifetime"),
    [
        ("a whole number of seconds", 900_000, None, 900_000),
        ("a part second rounds up, as Math.ceil does", 900_001, None, 901_000),
        ("the cookie's maxAge wins over the store's ttl", 60_000, 86_400_000, 60_000),
        ("no maxAge: the store's ttl", None, 3_600_000, 3_600_000),
        ("a zero maxAge: the store's ttl", 0, 3_600_000, 3_600_000),
        ("neither: unknown", None, None, None),
    ],
)
def test_the_lifetime_is_the_ttl_connect_redis_sets(
    case: str, max_age: float | None, app_ttl: int | None, lifetime: int | None
) -> None:
    assert connect_lifetime_ms(max_age, app_ttl) == lifetime, case


@given(elapsed=st.integers(0, MAX_AGE), late=st.integers(0, 10**7))
def test_reading_later_never_makes_a_session_idler(elapsed: int, late: int) -> None:
    # The PTTL is read at some instant; the read time passed is that instant or later.
    touched = SAVED_AT + 1000
    instant = touched + elapsed
    session = read_connect_session(_value(), remaining_ms=MAX_AGE - elapsed,
                                   read_at_ms=instant + late)
    assert session is not None
    assert session.last_activity_ms is not None
    assert session.last_activity_ms >= touched
