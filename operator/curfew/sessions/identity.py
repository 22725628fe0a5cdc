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


class SessionHasher:
    """:func:`session_hash` under one key, set up once (the sidecar hashes an id per request)."""

    def __init__(self, key: bytes) -> None:
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)

    def __call__(self, raw_id: str) -> str:
        h = self._keyed.copy()
        h.update(raw_id.encode("utf-8"))
        return h.hexdigest()


def is_session_hash(value: str) -> bool:
    """Whether ``value`` has the shape of a session hash (so a raw id is never mistaken for one)."""
    return len(value) == SESSION_HASH_HEX_LENGTH and all(c in "0123456789abcdef" for c in value)
