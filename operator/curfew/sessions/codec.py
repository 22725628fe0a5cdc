"""Session codecs: a request's cookie or header value -> the app's session id -> the app's key.

One codec per store format, and the only way from a client value to anything Curfew keys by:
the session hash (``identity.session_hash`` of the app's id) and the app's own session key.
A value outside the format's id grammar is no session at all: it names no key, so nothing is
created, read or deleted for it.

Id grammars (``DEFAULT_ID_PATTERNS``; ``store.idPattern`` replaces one, always as a full match):

- ``spring-session``: the canonical lower-case UUID Spring Session writes (36 characters).
- ``connect-redis``: express-session's ``uid(24)`` (uid-safe): 24 random bytes in base64url
  without padding, exactly 32 characters.
- ``generic``: 16 to 128 characters of ``A-Z a-z 0-9 _ -`` (PHP, Django, Flask-Session and
  Rails ids fit; no ``:`` or ``.``, so no id reaches another namespace of the app's keys).
- ``php-redis``: every id PHP generates, whatever ``session.sid_length`` (22 to 256) and
  ``session.sid_bits_per_character`` (4: ``0-9a-f``, 5: ``0-9a-v``, 6: ``0-9a-zA-Z,-``) say;
  PHP 8.2 makes 32 of ``0-9a-f`` by default, 26 of ``0-9a-v`` under Debian's php.ini. No ``_``,
  so phpredis's lock keys (``<id>_LOCK``) are no ids.
- ``curfew``: the app keeps nothing in the store, so the id names no Redis key (only its keyed
  hash does): 1 to 4096 characters of RFC 6265 cookie-octets (opaque ids, base64, JWTs).

Cookie and header values are read as the libraries write them (:meth:`SessionCodec.app_id`):
Spring Session's cookie holds the id in base64 (``DefaultCookieSerializer``), its header the
id itself; express-session's cookie is ``s:<id>.<signature>`` (sent percent-encoded, which the
one cookie reading, ``curfew.sessions.cookies``, has already decoded: never twice). The signature
is not verified here: a forged one only names an id whose app key must exist before Curfew
keeps a record for it (``check_and_touch.lua``), so guessing ids gains nothing.

Pure: no I/O, importable without redis.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Final

from curfew.sessions import keys

MAX_ID_LENGTH: Final = 4096
"""No session id is longer than this, whatever the pattern: a longer value is no session."""
MAX_PATTERN_LENGTH: Final = 256
"""The longest ``store.idPattern`` accepted (the CRD's ``maxLength`` too)."""

UUID_PATTERN: Final = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
UID_SAFE_24_PATTERN: Final = r"[A-Za-z0-9_-]{32}"
GENERIC_ID_PATTERN: Final = r"[A-Za-z0-9_-]{16,128}"
PHP_ID_PATTERN: Final = r"[0-9A-Za-z,-]{22,256}"
CURFEW_ID_PATTERN: Final = r"[!#-+\--:<-\[\]-~]{1,4096}"
"""RFC 6265 section 4.1.1 cookie-octets: printable ASCII but space, ``"``, ``,``, ``;``, ``\\``."""

DEFAULT_ID_PATTERNS: Final[dict[str, str]] = {
    "spring-session": UUID_PATTERN,
    "connect-redis": UID_SAFE_24_PATTERN,
    "generic": GENERIC_ID_PATTERN,
    "php-redis": PHP_ID_PATTERN,
    keys.CURFEW_FORMAT: CURFEW_ID_PATTERN,
}

APP_KEY_TYPES: Final[dict[str, tuple[str, ...]]] = {
    "spring-session": ("hash",),
    "connect-redis": ("string",),
    "generic": ("string", "hash"),
    "php-redis": ("string",),
}
"""The Redis types (``TYPE``) an app's session key has in each format: a key of another type
(Spring's ``sessions:expirations`` sorted set, say) is never taken for a session, nor deleted."""

APP_REMOVERS: Final[dict[str, str]] = {"php-redis": "delete_php_session"}
"""The script (``lua/<name>.lua``) that removes a format's whole session, for the sidecar's
expiry and the purge alike; ``delete_app_session`` for the formats not named here."""
DEFAULT_REMOVER: Final = "delete_app_session"

_EXPRESS_SIGNED: Final = "s:"


class InvalidIdPattern(ValueError):
    """A ``store.idPattern`` that cannot be used; the message says why."""


def check_id_pattern(pattern: str) -> str:
    """Return ``pattern`` if it can be a format's id grammar, else raise InvalidIdPattern.

    It must compile, be at most ``MAX_PATTERN_LENGTH`` characters, and match neither the empty
    string nor a value with a control character or a space (no such value is a session id).
    It is always applied as a full match of the whole value, anchors or not.
    """
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise InvalidIdPattern(f"longer than {MAX_PATTERN_LENGTH} characters")
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        raise InvalidIdPattern(f"not a regular expression: {error}") from None
    for probe in ("", " ", "\n", "\t", "\x00", "\x7f"):
        if compiled.fullmatch(probe):
            raise InvalidIdPattern(f"matches {probe!r}, which is no session id")
    return pattern


@dataclass(frozen=True, slots=True)
class AppKey:
    """The app's own session key for one valid id, and the Redis types it may have."""

    key: str
    types: tuple[str, ...]
    remover: str = DEFAULT_REMOVER
    """The script that removes the whole session (``APP_REMOVERS``)."""

    @property
    def types_arg(self) -> str:
        """The types as the Lua scripts take them: comma-separated."""
        return ",".join(self.types)


@dataclass(frozen=True, slots=True)
class SessionCodec:
    """The codec of one store: its format, the app's key prefix and its id grammar."""

    format: str
    prefix: str
    pattern: re.Pattern[str]

    def app_id(self, value: str, *, cookie: bool) -> str | None:
        """The app's session id in a cookie (``cookie``) or header value, or None when the value
        holds none of this format's grammar: then the request carries no session."""
        if cookie:
            value = self._from_cookie(value)
        if len(value) > MAX_ID_LENGTH or self.pattern.fullmatch(value) is None:
            return None
        return value

    def _from_cookie(self, value: str) -> str:
        if self.format == "spring-session":
            return _spring_cookie(value)
        if self.format == "connect-redis":
            return _express_cookie(value)
        return value

    def app_key(self, app_id: str) -> AppKey | None:
        """The app's own session key of an id :meth:`app_id` returned (None for ``curfew``:
        the app keeps no session in the store)."""
        key = keys.app_session_key(self.format, self.prefix, app_id)
        if key is None:
            return None
        return AppKey(key, APP_KEY_TYPES[self.format],
                      APP_REMOVERS.get(self.format, DEFAULT_REMOVER))


def build_codec(format: str, prefix: str, id_pattern: str | None = None) -> SessionCodec:
    """The codec of a store of ``format`` under ``prefix``; ``id_pattern`` replaces the format's
    default grammar (``check_id_pattern`` must accept it)."""
    pattern = DEFAULT_ID_PATTERNS[format] if id_pattern is None else check_id_pattern(id_pattern)
    return SessionCodec(format, prefix, re.compile(pattern))


def _spring_cookie(value: str) -> str:
    """Spring Session's ``DefaultCookieSerializer`` writes the id in base64 by default; a
    cookie that already holds a plain id (``useBase64Encoding = false``) is read as it is."""
    if len(value) != 48:  # base64 of 36 characters; anything else is read as it is
        return value
    try:
        return base64.b64decode(value, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        return value


def _express_cookie(value: str) -> str:
    """express-session's cookie, as the cookie reading decoded it: ``s:<id>.<signature>``; the
    id is what lies between ``s:`` and the last dot."""
    if value.startswith(_EXPRESS_SIGNED):
        head, dot, _signature = value[len(_EXPRESS_SIGNED):].rpartition(".")
        return head if dot else ""
    return value
