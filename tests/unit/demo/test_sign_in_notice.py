"""The demo's sign-in page names the limit that ended the session, in the policy's figures, and
never repeats the reason parameter's own text."""

from __future__ import annotations

import pytest

from curfew.demo.app import spoken_duration, why_signed_out


@pytest.mark.parametrize(
    ("seconds", "spoken"),
    [(30, "30 s"), (6, "6 s"), (60, "1 min"), (90, "1 min 30 s"), (180, "3 min"),
     (3600, "1 h"), (5430, "1 h 30 min 30 s"), (0.4, "0 s")],
)
def test_limits_are_said_in_hours_minutes_and_seconds(seconds: float, spoken: str) -> None:
    assert spoken_duration(seconds) == spoken


@pytest.mark.parametrize(
    ("reason", "sentence"),
    [
        ("idle", "You were signed out after 30 s without activity."),
        ("absolute", "You were signed out because sessions last at most 3 min, however active."),
        ("signout", "You signed out, here or in another tab."),
        ("revoked", "Your session ended."),
        ("<script>alert(1)</script>", "Your session ended."),
        ("", "Your session ended."),
        (None, None),
    ],
)
def test_each_reason_gets_its_sentence_and_an_unknown_one_a_plain_one(
    reason: str | None, sentence: str | None
) -> None:
    assert why_signed_out(reason, 30, 180) == sentence
