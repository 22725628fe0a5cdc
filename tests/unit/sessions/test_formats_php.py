"""A PHP session's clock: the key's remaining TTL against session.gc_maxlifetime."""

from __future__ import annotations

import pytest

from curfew.sessions.formats_php import PhpSession, read_php_session

NOW = 1_800_000_000_000
LIFETIME = 1_440_000


@pytest.mark.parametrize(
    ("case", "ttl", "session"),
    [
        ("just written or renewed: active now", LIFETIME, PhpSession(LIFETIME, NOW)),
        ("ten minutes left of 24: last active 14 minutes ago",
         600_000, PhpSession(600_000, NOW - 840_000)),
        ("one millisecond left: active almost the whole lifetime ago",
         1, PhpSession(1, NOW - LIFETIME + 1)),
        ("a TTL above the stated lifetime counts as active now, never as older",
         LIFETIME + 60_000, PhpSession(LIFETIME + 60_000, NOW)),
        ("a key without a TTL has no clock", -1, PhpSession(-1, None)),
        ("a key gone since the SCAN is no session", -2, None),
    ],
)
def test_last_activity_is_now_less_the_lifetime_already_used(
    case: str, ttl: int, session: PhpSession | None
) -> None:
    assert read_php_session(ttl, NOW, LIFETIME) == session, case
