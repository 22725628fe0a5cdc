"""Reading Spring Session and connect-redis records as their libraries write them."""

import json

import pytest

from curfew.sessions.formats import (
    MalformedSession,
    Serializer,
    read_connect_session,
    read_spring_number,
    read_spring_session,
    read_spring_string,
    write_spring_string,
)
from fixtures.purge import jdk_integer, jdk_long, jdk_string


def test_jdk_serialized_longs_and_integers_are_read() -> None:
    assert read_spring_number(jdk_long(1_764_000_000_123)) == 1_764_000_000_123
    assert read_spring_number(jdk_integer(1800)) == 1800
    assert read_spring_number(jdk_integer(-1)) == -1


def test_json_serialized_numbers_are_read_with_or_without_type_information() -> None:
    assert read_spring_number(b"1764000000123") == 1_764_000_000_123
    assert read_spring_number(b'["java.lang.Long",1764000000123]') == 1_764_000_000_123
    assert read_spring_number(b'"not a number"') is None
    assert read_spring_number(b"\xac\xed\x00\x05garbage") is None


def test_strings_round_trip_in_the_sessions_own_serializer() -> None:
    assert write_spring_string("expires:abc", Serializer.JDK) == jdk_string("expires:abc")
    assert read_spring_string(jdk_string("alice")) == "alice"
    assert write_spring_string("abc", Serializer.JSON) == b'"abc"'
    assert read_spring_string(b'"alice"') == "alice"


def test_a_spring_session_is_filed_under_the_next_whole_minute_after_it_expires() -> None:
    session = read_spring_session(
        jdk_long(1_000_000), jdk_long(1_764_000_030_000), jdk_integer(1800)
    )
    assert session is not None
    assert session.serializer is Serializer.JDK
    # Expires at ...030000 + 1800 s = 1764001830000: rounded up to the next minute.
    assert session.expirations_minute_ms == 1_764_001_860_000


def test_a_spring_hash_without_its_timestamps_is_not_a_session() -> None:
    assert read_spring_session(None, jdk_long(1), jdk_integer(1)) is None


@pytest.mark.parametrize(
    ("case", "created", "last", "max_inactive"),
    [
        ("timestamps that are no numbers", b"x", b"y", None),
        ("a JSON timestamp of 1e400", b"1e400", b"1", None),
        ("a negative timestamp", jdk_long(-1), jdk_long(1), None),
        ("a timestamp past the year 9999", jdk_long(2**62), jdk_long(1), None),
        ("an idle interval no clock can count", jdk_long(1), jdk_long(1), b"9" * 30),
    ],
    ids=lambda v: v if isinstance(v, str) and " " in v else "",
)
def test_a_spring_session_with_unusable_times_is_malformed(
    case: str, created: bytes, last: bytes, max_inactive: bytes | None
) -> None:
    with pytest.raises(MalformedSession):
        read_spring_session(created, last, max_inactive)


@pytest.mark.parametrize(
    ("case", "cookie"),
    [
        ("an originalMaxAge of 1e400",
         '{"originalMaxAge": 1e400, "expires": "2026-01-01T00:00:00Z"}'),
        ("an originalMaxAge of NaN",
         '{"originalMaxAge": NaN, "expires": "2026-01-01T00:00:00Z"}'),
        ("an originalMaxAge of -Infinity",
         '{"originalMaxAge": -Infinity, "expires": "2026-01-01T00:00:00Z"}'),
        ("an originalMaxAge that is text", '{"originalMaxAge": "900", "expires": "2026-01-01"}'),
        ("an originalMaxAge that is true", '{"originalMaxAge": true, "expires": "2026-01-01"}'),
        ("an expires in year 1", '{"originalMaxAge": 900000, "expires": "0001-01-01T00:00:00Z"}'),
        ("an expires in year 1 east of Greenwich",
         '{"originalMaxAge": 0, "expires": "0001-01-01T00:00:00+14:00"}'),
        ("an expires in year 9999 west of Greenwich",
         '{"originalMaxAge": 0, "expires": "9999-12-31T23:59:59-14:00"}'),
        ("an expires that is no date", '{"originalMaxAge": 900000, "expires": "tomorrow"}'),
        ("an expires that is a number", '{"originalMaxAge": 900000, "expires": 17}'),
    ],
    ids=lambda v: v if isinstance(v, str) and " " in v else "",
)
def test_a_connect_redis_session_with_unusable_times_is_malformed(case: str, cookie: str) -> None:
    with pytest.raises(MalformedSession):
        read_connect_session(b'{"cookie": ' + cookie.encode() + b'}')


def test_a_rolling_connect_redis_session_was_last_active_at_expires_minus_max_age() -> None:
    value = json.dumps(
        {"cookie": {"originalMaxAge": 900000, "expires": "2026-11-26T18:15:00.000Z",
                    "httpOnly": True, "path": "/"}, "user": "alice"}
    ).encode()
    session = read_connect_session(value)
    assert session is not None
    # 2026-11-26T18:15:00Z is 1795716900000 ms since the epoch.
    assert session.last_activity_ms == 1_795_716_900_000 - 900_000


def test_a_browser_session_cookie_has_no_known_last_activity() -> None:
    value = b'{"cookie":{"originalMaxAge":null,"httpOnly":true,"path":"/"}}'
    session = read_connect_session(value)
    assert session is not None
    assert session.last_activity_ms is None
    assert read_connect_session(b"not json") is None
    assert read_connect_session(b'{"no":"cookie"}') is None
