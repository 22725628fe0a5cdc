"""Session identity: the keyed hash that stands for a session id everywhere Curfew stores or logs.

A raw session cookie or bearer token never leaves the process that read it. Curfew keys its
records, index entries and audit events by ``HMAC-SHA-256(key, raw_id)``: without the key (held
in a Secret) nobody can link a record back to a live cookie, and nobody who reads Redis or the
logs can replay one.

Where the purge job must reach the app's own session from a record, the record also holds the
app's id sealed (:class:`AppIdSeal`): encrypted and authenticated under a key derived from the
same secret, never in the clear.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

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


SEAL_VERSION = "1."
"""Heads every sealed app id, so a later scheme can be told apart from this one."""

_SEAL_INFO = b"curfew/app-id-seal/v1"
_NONCE_BYTES = 12


class SealError(ValueError):
    """A sealed app id that does not open under the key: tampered with, written under another
    key, or moved from another record. The message never holds the sealed bytes."""


class AppIdSeal:
    """Seals the app's session id into the record that stands for it, and opens it again.

    The purge job needs the app's id to remove an expired app session found through the due
    index (its key is built from the id), yet a raw id in Redis would be a live cookie for
    whoever reads the store. So the record holds the id encrypted and authenticated: AES-256-GCM
    (``cryptography``'s AESGCM) under a key derived with HKDF-SHA-256 from the session key the
    sidecar and the purge job already share (no new Secret), a random 96-bit nonce per seal, and
    the session hash as associated data, so a sealed id copied into another record does not open.
    """

    def __init__(self, key: bytes) -> None:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_SEAL_INFO).derive(
            check_session_key(key))
        self._aead = AESGCM(derived)

    def seal(self, sid: str, app_id: str) -> str:
        """``app_id`` sealed for the record of ``sid``: ASCII, safe in a hash field."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, app_id.encode("utf-8"), sid.encode("ascii"))
        return SEAL_VERSION + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def open(self, sid: str, sealed: str) -> str:
        """The app id sealed in the record of ``sid``, or SealError."""
        if not sealed.startswith(SEAL_VERSION):
            raise SealError("unknown seal version")
        try:
            raw = base64.urlsafe_b64decode(sealed[len(SEAL_VERSION):].encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raise SealError("not base64") from None
        if len(raw) <= _NONCE_BYTES + 16:
            raise SealError("too short")
        try:
            opened = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], sid.encode("ascii"))
        except (InvalidTag, UnicodeEncodeError):
            raise SealError("does not open under the session key") from None
        try:
            return opened.decode("utf-8")
        except UnicodeDecodeError:
            raise SealError("holds no text") from None
