"""Session codecs: a request's cookie or header value -> the app's session id -> the app's key.

One codec per store format, and the only way from a client value to anything Curfew keys by:
the session hash (``identity.session_hash`` of the app's id) and the app's own session key.
A value outside the format's id grammar is no session at all: it names no key, so nothing is
created, read or deleted for it.

Id grammars (``DEFAULT_ID_PATTERNS``; ``store.idPattern`` replaces one, always as a full match):

- ``spring-session``: the canonical lower-case UUID Spring Session writes (36 characters).
- ``connect-redis``: express-session's ``uid(24)`` (uid-safe): 24 random bytes in base64url
  without padding, exactly 32 characters.
- ``django``: Django's session key, 32 characters of ``a-z 0-9`` (``get_random_string``).
- ``flask-session``: Flask-Session's ``secrets.token_urlsafe(32)``: 43 base64url characters.
- ``generic``: 16 to 128 characters of ``A-Z a-z 0-9 _ -`` (PHP, Django, Flask-Session and
  Rails ids fit; no ``:`` or ``.``, so no id reaches another namespace of the app's keys).
- ``php-redis``: every id PHP generates, whatever ``session.sid_length`` (22 to 256) and
  ``session.sid_bits_per_character`` (4: ``0-9a-f``, 5: ``0-9a-v``, 6: ``0-9a-zA-Z,-``) say;
  PHP 8.2 makes 32 of ``0-9a-f`` by default, 26 of ``0-9a-v`` under Debian's php.ini. No ``_``,
  so phpredis's lock keys (``<id>_LOCK``) are no ids.
- ``curfew``: the app keeps nothing in the store, so the id names no Redis key (only its keyed
  hash does): 1 to 4096 characters of RFC 6265 cookie-octets (opaque ids, base64, JWTs).

Cookie and header values are read as the libraries write them (:meth:`SessionCodec.app_id`):
Spring Session's cookie holds the id in base64 (``DefaultCookieSerializer``), its
``X-Auth-Token`` header the id itself, and ``session.idEncoding`` (``base64`` or ``raw``) says
otherwise for an app that does (``useBase64Encoding = false``); express-session's cookie is
``s:<id>.<signature>`` (sent percent-encoded, which the one cookie reading,
``curfew.sessions.cookies``, has already decoded: never twice); Flask-Session's is the id, or
``<id>.<signature>`` with ``SESSION_USE_SIGNER``. Given the app's secrets
(``store.appSecretRef``), a signature is verified exactly as the app's library does (an
express-session cookie by :func:`express_unsign`, a Flask-Session one by itsdangerous itself:
:func:`flask_session_unsign`) and a value no secret signed is no session. Without them a
signature is stripped unread: a forged one only names an id whose app key must exist before
Curfew keeps a record for it (``check_and_touch.lua``), so guessing ids gains nothing, but a
stolen id could be replayed under any signature.

Pure: no I/O, importable without redis.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Final

from itsdangerous import BadSignature, Signer

from curfew.sessions import keys

MAX_ID_LENGTH: Final = 4096
"""No session id is longer than this, whatever the pattern: a longer value is no session."""
MAX_PATTERN_LENGTH: Final = 256
"""The longest ``store.idPattern`` accepted (the CRD's ``maxLength`` too)."""

UUID_PATTERN: Final = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
UID_SAFE_24_PATTERN: Final = r"[A-Za-z0-9_-]{32}"
GENERIC_ID_PATTERN: Final = r"[A-Za-z0-9_-]{16,128}"
DJANGO_ID_PATTERN: Final = r"[a-z0-9]{32}"
FLASK_SESSION_ID_PATTERN: Final = r"[A-Za-z0-9_-]{43}"
PHP_ID_PATTERN: Final = r"[0-9A-Za-z,-]{22,256}"
CURFEW_ID_PATTERN: Final = r"[!#-+\--:<-\[\]-~]{1,4096}"
"""RFC 6265 section 4.1.1 cookie-octets: printable ASCII but space, ``"``, ``,``, ``;``, ``\\``."""

DEFAULT_ID_PATTERNS: Final[dict[str, str]] = {
    "spring-session": UUID_PATTERN,
    "connect-redis": UID_SAFE_24_PATTERN,
    "generic": GENERIC_ID_PATTERN,
    "django": DJANGO_ID_PATTERN,
    "flask-session": FLASK_SESSION_ID_PATTERN,
    "php-redis": PHP_ID_PATTERN,
    keys.CURFEW_FORMAT: CURFEW_ID_PATTERN,
}

APP_KEY_TYPES: Final[dict[str, tuple[str, ...]]] = {
    "spring-session": ("hash",),
    "connect-redis": ("string",),
    "generic": ("string", "hash"),
    "django": ("string",),
    "flask-session": ("string",),
    "php-redis": ("string",),
}
"""The Redis types (``TYPE``) an app's session key has in each format: a key of another type
(Spring's ``sessions:expirations`` sorted set, say) is never taken for a session, nor deleted."""

FORMAT_REMOVERS: Final[dict[str, str]] = {
    "spring-session": "delete_spring_session",
    "connect-redis": "delete_if_unrenewed",
    "django": "delete_if_unrenewed",
    "flask-session": "delete_if_unrenewed",
    "php-redis": "delete_php_session",
}
"""Formats whose whole session is removed by a script of their own (``sessions/lua/``), for the
sidecar's expiry and the purge alike; the others by ``delete_app_session``. A Django
``cached_db`` store empties its sessions instead (``empty_django_session``, see
``keys.empties_sessions``)."""

_EXPRESS_SIGNED: Final = "s:"

ID_ENCODINGS: Final = ("base64", "raw")
"""How a cookie or header carries the id (``session.idEncoding``); base64 is Spring Session's."""


MAX_APP_SECRETS: Final = 16
"""The most cookie secrets ``store.appSecretRef`` may hold (each is tried on a bad cookie)."""

SIGNED_FORMATS: Final = ("connect-redis", "flask-session")
"""Formats whose cookie signature the app's secrets (``store.appSecretRef``) verify."""

FLASK_SESSION_SALT: Final = "flask-session"
"""The salt of Flask-Session 0.8's signer (``ServerSideSessionInterface._get_signer``)."""


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
    remover: str = "delete_app_session"
    """The Lua script that removes (or, for Django's ``cached_db``, empties) the whole session
    (``store.APP_SESSION_REMOVERS``), the same for the sidecar's expiry and the purge; a Spring
    session goes by ``delete_spring_session``, which takes the keys its fields name."""
    format: str = ""
    prefix: str = ""
    app_id: str = ""
    """The id the key was built from (Spring's companion keys are named by it); memory only."""

    @property
    def types_arg(self) -> str:
        """The types as the Lua scripts take them: comma-separated."""
        return ",".join(self.types)


class InvalidAppSecrets(ValueError):
    """The app's cookie secrets cannot be read; the message says why, never a secret."""


def parse_app_secrets(text: str) -> tuple[bytes, ...]:
    """The app's cookie secrets from the Secret's value: a JSON list of strings (``["new",
    "old"]``, how express-session's ``secret`` array is often kept) when the value starts with
    ``[``, else one secret per line (a final newline and CR line ends ignored, empty lines
    skipped). Order does not matter for verifying: express-session tries every secret."""
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            parsed = json.loads(stripped)
        except ValueError:
            raise InvalidAppSecrets("starts with [ but is no JSON list") from None
        if not isinstance(parsed, list) or not all(isinstance(p, str) for p in parsed):
            raise InvalidAppSecrets("a JSON value must be a list of strings")
        secrets = [p for p in parsed if p]
    else:
        secrets = [line.rstrip("\r") for line in text.split("\n")]
        secrets = [line for line in secrets if line]
    if not secrets:
        raise InvalidAppSecrets("holds no secret")
    if len(secrets) > MAX_APP_SECRETS:
        raise InvalidAppSecrets(f"holds {len(secrets)} secrets, more than {MAX_APP_SECRETS}")
    return tuple(secret.encode("utf-8") for secret in secrets)


def express_sign(app_id: str, secret: bytes) -> str:
    """``<id>.<signature>`` as cookie-signature's ``sign`` writes it: HMAC-SHA256 of the id
    under the secret, standard base64 with its ``=`` padding removed."""
    mac = hmac.new(secret, app_id.encode("utf-8"), hashlib.sha256).digest()
    return app_id + "." + base64.b64encode(mac).decode("ascii").rstrip("=")


def express_unsign(signed: str, secrets: tuple[bytes, ...]) -> str | None:
    """The id of ``<id>.<signature>`` when one of ``secrets`` signed it, else None.

    cookie-signature's ``unsign``, rewritten because no Python package implements it: the id
    is what precedes the last dot, and the whole value is compared with the value signed
    afresh, in constant time (``hmac.compare_digest`` as its ``crypto.timingSafeEqual``)."""
    app_id, dot, _signature = signed.rpartition(".")
    if not dot or not signed.isascii():
        return None  # a signature is base64; uid-safe ids are too
    given = signed.encode("ascii")
    found = None
    for secret in secrets:
        # Every secret is tried, so the time taken does not tell which one matched.
        if hmac.compare_digest(express_sign(app_id, secret).encode("utf-8"), given):
            found = app_id
    return found


def flask_session_signer(secrets: tuple[bytes, ...]) -> Signer:
    """The signer Flask-Session 0.8 signs its ids with under ``SESSION_USE_SIGNER``:
    ``Signer(app.secret_key, salt="flask-session", key_derivation="hmac")`` (HMAC-SHA1,
    separator ``.``, base64url signature), here over every secret of a rotation (itsdangerous
    signs with the last and verifies with each)."""
    return Signer(list(secrets), salt=FLASK_SESSION_SALT, key_derivation="hmac")


def flask_session_unsign(signed: str, secrets: tuple[bytes, ...]) -> str | None:
    """The id of ``<id>.<signature>`` when one of ``secrets`` signed it as Flask-Session does,
    else None (Flask-Session then starts a new session: the value names none)."""
    if not signed.isascii():
        return None  # ids and signatures are base64url; itsdangerous would encode anything
    try:
        return flask_session_signer(secrets).unsign(signed).decode("ascii")
    except BadSignature:
        return None


@dataclass(frozen=True, slots=True)
class SessionCodec:
    """The codec of one store: its format, the app's key prefix, its id grammar and, for
    connect-redis and flask-session, the app's secrets (empty: signatures are not verified)."""

    format: str
    prefix: str
    pattern: re.Pattern[str]
    app_secrets: tuple[bytes, ...] = ()
    id_encoding: str | None = None
    """``base64`` or ``raw``; None: the format's own (base64 for a Spring Session cookie)."""

    def app_id(self, value: str, *, cookie: bool) -> str | None:
        """The app's session id in a cookie (``cookie``) or header value, or None when the value
        holds none of this format's grammar: then the request carries no session."""
        if self.encoding(cookie=cookie) == "base64":
            decoded = _base64_id(value)
            if decoded is None:
                return None
            value = decoded
        elif cookie and self.format == "connect-redis":
            value = _express_cookie(value, self.app_secrets)
        elif cookie and self.format == "flask-session":
            value = _flask_session_cookie(value, self.app_secrets)
        if len(value) > MAX_ID_LENGTH or self.pattern.fullmatch(value) is None:
            return None
        return value

    def encoding(self, *, cookie: bool) -> str:
        """How a cookie (``cookie``) or header value carries the id here."""
        if self.id_encoding is not None:
            return self.id_encoding
        return "base64" if cookie and self.format == "spring-session" else "raw"

    def app_key(self, app_id: str) -> AppKey | None:
        """The app's own session key of an id :meth:`app_id` returned (None for ``curfew``:
        the app keeps no session in the store)."""
        key = keys.app_session_key(self.format, self.prefix, app_id)
        if key is None:
            return None
        return AppKey(key, APP_KEY_TYPES[self.format], self.remover, self.format, self.prefix,
                      app_id)

    @property
    def remover(self) -> str:
        """The script that removes a whole session of this store (``AppKey.remover``)."""
        if keys.empties_sessions(self.format, self.prefix):
            return "empty_django_session"
        return FORMAT_REMOVERS.get(self.format, "delete_app_session")


def build_codec(
    format: str,
    prefix: str,
    id_pattern: str | None = None,
    app_secrets: tuple[bytes, ...] = (),
    id_encoding: str | None = None,
) -> SessionCodec:
    """The codec of a store of ``format`` under ``prefix``; ``id_pattern`` replaces the format's
    default grammar (``check_id_pattern`` must accept it); ``app_secrets``: the app's secrets,
    which connect-redis and flask-session cookies are verified with; ``id_encoding`` replaces
    the format's encoding of the id (``session.idEncoding``)."""
    pattern = DEFAULT_ID_PATTERNS[format] if id_pattern is None else check_id_pattern(id_pattern)
    if id_encoding is not None and id_encoding not in ID_ENCODINGS:
        raise ValueError(f"idEncoding must be one of {', '.join(ID_ENCODINGS)}")
    return SessionCodec(format, prefix, re.compile(pattern), app_secrets, id_encoding)


def _base64_id(value: str) -> str | None:
    """The id inside a base64 value, as ``DefaultCookieSerializer`` reads it (``Base64.getDecoder``:
    the standard alphabet, padding optional), or None when it is no base64 of UTF-8 text: then
    the value names no session, as in Spring."""
    if len(value) > 2 * MAX_ID_LENGTH:
        return None
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), validate=True).decode("utf-8")
    except ValueError:  # binascii.Error, UnicodeDecodeError, or a value that is not ASCII
        return None


def _express_cookie(value: str, secrets: tuple[bytes, ...]) -> str:
    """express-session's cookie, as the cookie reading decoded it: ``s:<id>.<signature>``; the
    id is what lies between ``s:`` and the last dot. With ``secrets``, only a value one of them
    signed has an id, as express-session reads it (an unsigned value is none either)."""
    if secrets:
        if not value.startswith(_EXPRESS_SIGNED):
            return ""
        return express_unsign(value[len(_EXPRESS_SIGNED):], secrets) or ""
    if value.startswith(_EXPRESS_SIGNED):
        head, dot, _signature = value[len(_EXPRESS_SIGNED):].rpartition(".")
        return head if dot else ""
    return value


def _flask_session_cookie(value: str, secrets: tuple[bytes, ...]) -> str:
    """Flask-Session's cookie: the id, or ``<id>.<signature>`` with ``SESSION_USE_SIGNER``.
    With ``secrets`` (the app's ``SECRET_KEY``), only a value one of them signed has an id, as
    Flask-Session reads it (an unsigned one is none either); without, the id is what precedes
    the first dot (a Flask-Session id has none)."""
    if secrets:
        return flask_session_unsign(value, secrets) or ""
    return value.partition(".")[0]
