"""Django (django-redis) and Flask-Session sessions: what their records tell the purge job (pure).

Both keep one Redis string per session and give it the session's lifetime as its TTL on every
save, so the key's remaining TTL is the app's own clock: the last save was ``lifetime -
remaining`` ago (:class:`TtlClock`).

- ``django``: the value is the session dict as django-redis's serializer wrote it: pickle by
  default, or JSON. A pickle is read by :class:`PlainUnpickler`, which builds plain data only
  (dict, list, tuple, set, str, bytes, numbers, bool, None, and the ``datetime`` types Django
  puts in sessions) and refuses any other global, so no pickled value ever runs code here. The
  session's own ``_session_expiry`` (``set_expiry``) replaces the stated lifetime: seconds of
  inactivity, or a fixed time (then there is no idle clock to read). With the ``cached_db``
  backend a session is ended by emptying its cache entry (``empty_django_session.lua``): an
  empty session is anonymous, so it is none the purge judges.
- ``flask-session``: the value (msgpack or JSON through msgspec) holds no time, so it is never
  decoded: the TTL and the stated lifetime (``PERMANENT_SESSION_LIFETIME``) say everything.
"""

from __future__ import annotations

import datetime
import io
import json
import pickle
from dataclasses import dataclass
from typing import Any, Final

from curfew.sessions.formats import MAX_DURATION_MS, MalformedSession

_PICKLE_PROTO: Final = 0x80
_SAFE_GLOBALS: Final[dict[tuple[str, str], Any]] = {
    ("datetime", "datetime"): datetime.datetime,
    ("datetime", "date"): datetime.date,
    ("datetime", "time"): datetime.time,
    ("datetime", "timedelta"): datetime.timedelta,
    ("datetime", "timezone"): datetime.timezone,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "bytearray"): bytearray,
}
"""The only classes a pickled session may name: their constructors take plain values and run
nothing else. Everything pickle builds without a global (dict, list, str, ...) is plain too."""


class PlainUnpickler(pickle.Unpickler):
    """An unpickler that refuses every global outside ``_SAFE_GLOBALS``, so ``REDUCE`` can only
    call a ``datetime`` constructor and no pickled value ever calls anything else."""

    def find_class(self, module: str, name: str) -> Any:
        found = _SAFE_GLOBALS.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(f"refused global {module[:64]}.{name[:64]}")
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refused persistent id")


def load_plain_pickle(value: bytes) -> Any:
    """The plain data in a pickle, or MalformedSession when it names anything else."""
    try:
        return PlainUnpickler(io.BytesIO(value)).load()
    except Exception as error:  # a hostile pickle raises anything: all of it means malformed
        raise MalformedSession(f"pickled session refused ({type(error).__name__})") from None


@dataclass(frozen=True, slots=True)
class TtlClock:
    """The app's clock of one session: its key's remaining TTL and the lifetime each save
    gives it (None: unknown, so no idle clock)."""

    remaining_ms: int
    lifetime_ms: int | None

    def last_save_ms(self, now_ms: int) -> int | None:
        """When the app last saved the session, on the clock ``now_ms`` is on; never later
        than now (a lifetime stated shorter than the app's only makes the session look
        younger, so it is kept longer, never cut short)."""
        if self.lifetime_ms is None:
            return None
        return now_ms - max(0, self.lifetime_ms - self.remaining_ms)


def read_django_session(
    value: bytes, remaining_ms: int, lifetime_ms: int | None
) -> TtlClock | None:
    """The clock of a Django session from its cache value and its key's remaining TTL (ms), or
    None for an empty session: an anonymous one, with nothing to end (and what ending a
    ``cached_db`` session leaves).

    Raises MalformedSession for a value that is neither a plain pickle nor JSON of a dict, or
    whose ``_session_expiry`` is no number of seconds nor ISO 8601 time.
    """
    if value[:1] == bytes([_PICKLE_PROTO]):
        data = load_plain_pickle(value)
    else:
        try:
            data = json.loads(value)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise MalformedSession("session is neither pickle nor JSON") from None
    if not isinstance(data, dict):
        raise MalformedSession("session is no dict")
    if not data:
        return None
    expiry = data.get("_session_expiry")
    if not expiry:  # None or 0 (a browser-session cookie): Django uses SESSION_COOKIE_AGE
        return TtlClock(remaining_ms, lifetime_ms)
    if isinstance(expiry, int) and not isinstance(expiry, bool):
        if not 0 < expiry * 1000 <= MAX_DURATION_MS:
            raise MalformedSession("_session_expiry out of range")
        return TtlClock(remaining_ms, expiry * 1000)
    if isinstance(expiry, str | datetime.datetime):
        if isinstance(expiry, str):
            try:
                datetime.datetime.fromisoformat(expiry)
            except ValueError:
                raise MalformedSession("_session_expiry is no time") from None
        return TtlClock(remaining_ms, None)  # a fixed end: the TTL reaches it, no idle clock
    raise MalformedSession("_session_expiry is no number of seconds nor time")


def read_flask_session(remaining_ms: int, lifetime_ms: int | None) -> TtlClock:
    """The clock of a Flask-Session session: its key's remaining TTL (the value is not read)."""
    return TtlClock(remaining_ms, lifetime_ms)
