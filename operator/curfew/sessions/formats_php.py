"""PHP sessions as phpredis's save handler keeps them in Redis (pure: numbers in, values out).

With ``session.save_handler = redis`` (phpredis) a session is one string, ``<prefix><id>``
(``PHPREDIS_SESSION:`` unless ``session.save_path`` names a ``prefix=``), written with
``SETEX <key> <session.gc_maxlifetime> <data>``. Every request that starts the session renews
that TTL when the session closes: ``SETEX`` again when the data changed, and under
``session.lazy_write`` (PHP's default) an unchanged session gets only
``EXPIRE <key> <session.gc_maxlifetime>`` (phpredis's ``update_timestamp``). So the key's TTL
is the app's own clock: last activity = now - (lifetime - remaining TTL), with the lifetime the
policy states (``store.appTTL``). A session has no creation time of its own: only a Curfew
record knows when it began, so absolute expiry needs the sidecar's record.

The value, encoded by PHP's ``session.serialize_handler`` (``php``: ``name|<serialize()>...``,
``php_serialize``, ``php_binary``, ``igbinary``), is never read: the clock is all a purge needs,
and reading nothing means no deserializer ever runs on data users filled (PHP's ``unserialize``
format can name objects). Every serializer works alike for that reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

NO_TTL: Final = -1
"""``PTTL`` of a key without an expiry: not as phpredis writes a session, so no clock."""
GONE: Final = -2
"""``PTTL`` of a missing key."""


@dataclass(frozen=True)
class PhpSession:
    """What the purge job needs from one PHP session."""

    ttl_ms: int
    """The key's remaining TTL as read (``PTTL``); the removal compares it again."""
    last_activity_ms: int | None
    """When PHP last renewed the TTL; None for a key without a TTL (no clock to judge by)."""


def read_php_session(ttl_ms: int, now_ms: int, lifetime_ms: int) -> PhpSession | None:
    """The session of a key whose ``PTTL`` read ``ttl_ms`` at ``now_ms``, or None if it is gone.

    ``now_ms`` must be read after the TTL (the TIME of the same pipeline), so a slow read can
    only make a session look younger. A TTL above ``lifetime_ms`` (the app's
    ``gc_maxlifetime`` is longer than the policy states, or a page raised it) counts as
    activity just now: the session is kept, never judged older than it can be.
    """
    if ttl_ms == GONE:
        return None
    if ttl_ms < 0:
        return PhpSession(ttl_ms, None)
    return PhpSession(ttl_ms, min(now_ms, now_ms - (lifetime_ms - ttl_ms)))
