"""Go-style durations: parsing, canonical formatting, and the errors users see."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from curfew.api.durations import MAX_DURATION, SECOND, Duration, DurationError


@pytest.mark.parametrize(
    ("text", "seconds", "canonical"),
    [
        ("90s", 90, "1m30s"),
        ("15m", 900, "15m"),
        ("1h30m", 5400, "1h30m"),
        ("500ms", 0.5, "500ms"),
        ("1500ms", 1.5, "1.5s"),
        ("1h0m0s", 3600, "1h"),
        ("8784h", 366 * 86400, "8784h"),
    ],
)
def test_a_go_duration_parses_to_exact_seconds_and_formats_canonically(
    text: str, seconds: float, canonical: str
) -> None:
    d = Duration.parse(text)
    assert d.seconds == seconds
    assert str(d) == canonical


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("15 minutes", "expected a Go duration"),
        ("-5m", "must be positive"),
        ("0s", "must be positive"),
        ("", "empty duration"),
        ("8785h", "maximum of 366 days"),
        ("15", "expected a Go duration"),
        (" 15m", "expected a Go duration"),
        ("15m\n", "expected a Go duration"),
        ("1d", "expected a Go duration"),
    ],
)
def test_an_unacceptable_duration_is_rejected_with_a_message_saying_what_is_allowed(
    text: str, says: str
) -> None:
    with pytest.raises(DurationError, match=says):
        Duration.parse(text)


@given(st.integers(min_value=1, max_value=MAX_DURATION))
def test_formatting_then_parsing_gives_back_the_same_duration(nanos: int) -> None:
    d = Duration(nanos)
    assert Duration.parse(str(d)) == d


@given(st.integers(min_value=1, max_value=MAX_DURATION // SECOND))
def test_whole_seconds_stay_integers(seconds: int) -> None:
    assert Duration.parse(f"{seconds}s").seconds == seconds
