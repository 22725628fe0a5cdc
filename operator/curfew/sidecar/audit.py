"""The sidecar's audit log: one JSON line per security-relevant event, keyed hashes only.

Events go to the ``curfew.audit`` logger (the CLI sends it to stdout, one JSON object a line).
A session is only ever named by its keyed hash (``session``); request paths are logged without
their query string, where tokens tend to travel.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Final

AUDIT_LOGGER: Final = "curfew.audit"

SESSION_FIRST_SEEN: Final = "session_first_seen"
SESSION_EXPIRED: Final = "session_expired"
REAUTHENTICATION_REDIRECT: Final = "reauthentication_redirect"
CONFIG_RELOADED: Final = "config_reloaded"
CONFIG_REJECTED: Final = "config_rejected"
STORE_UNAVAILABLE: Final = "store_unavailable"

_log = logging.getLogger(AUDIT_LOGGER)


def emit(event: str, **fields: Any) -> None:
    """Write one audit event; ``None`` fields are left out."""
    record = {"time": _utc_now(), "event": event}
    record.update((k, v) for k, v in fields.items() if v is not None)
    _log.info(json.dumps(record, separators=(",", ":")))


def _utc_now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


class RateLimited:
    """Lets an event through at most once per ``interval`` seconds, counting what it held back.

    During a store outage every request fails the same way; one line per interval with a count
    says as much as thousands of identical lines, without flooding the log pipeline.
    """

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._next = 0.0
        self.suppressed = 0

    def take(self) -> int | None:
        """The number of events held back since the last one let through, or None to hold."""
        now = time.monotonic()
        if now < self._next:
            self.suppressed += 1
            return None
        self._next = now + self._interval
        held, self.suppressed = self.suppressed, 0
        return held
