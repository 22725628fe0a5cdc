"""Session identity: the keyed hash that stands for a session id everywhere Curfew stores or logs.

A raw session cookie or bearer token never leaves the process that read it. Curfew keys its
records, index entries and audit events by ``HMAC-SHA-256(key, raw_id)``: without the key (held
in a Secret) nobody can link a record back to a live cookie, and nobody who reads Redis or the
logs can replay one.
"""

from __future__ import annotations

import hashlib
import hmac

SESSION_HASH_HEX_LENGTH = 64
"""Length of a session hash: the hex form of a SHA-256 digest."""

MIN_KEY_BYTES = 16
"""The shortest HMAC key accepted: shorter keys make the hash guessable offline."""


class SessionKeyError(ValueError):
    """The HMAC key is missing or too short to protect session ids."""


def check_session_key(key: bytes) -> bytes:
    """Return ``key`` if it is long enough to key session hashes, else raise SessionKeyError."""
    if len(key) < MIN_KEY_BYTES:
        raise SessionKeyError(
            f"the session key must be at least {MIN_KEY_BYTES} bytes (got {len(key)})"
        )
    return key


def session_hash(key: bytes, raw_id: str) -> str:
    """The keyed hash of a raw session id: lower-case hex HMAC-SHA-256, 64 characters."""
    return hmac.new(key, raw_id.encode("utf-8"), hashlib.sha256).hexdigest()


_BLOCK = hashlib.sha256().block_size
_INNER_PAD = bytes(x ^ 0x36 for x in range(256))
_OUTER_PAD = bytes(x ^ 0x5C for x in range(256))


class SessionHasher:
    """:func:`session_hash` under one key, set up once (the sidecar hashes an id per request).

    HMAC as RFC 2104 defines it, from the SHA-256 states of the padded key, set up once: what
    ``hmac.HMAC`` keeps as well, but copying two plain SHA-256 states per id costs a third of
    what copying an OpenSSL HMAC context (three digest contexts) and finishing it does. Tests
    hold it to ``hmac.new`` for keys of every length.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(key.translate(_INNER_PAD))
        self._outer = hashlib.sha256(key.translate(_OUTER_PAD))

    def __call__(self, raw_id: str) -> str:
        inner = self._inner.copy()
        inner.update(raw_id.encode("utf-8"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


def is_session_hash(value: str) -> bool:
    """Whether ``value`` has the shape of a session hash (so a raw id is never mistaken for one)."""
    return len(value) == SESSION_HASH_HEX_LENGTH and all(c in "0123456789abcdef" for c in value)
