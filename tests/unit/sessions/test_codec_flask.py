"""Flask-Session's signed ids (``SESSION_USE_SIGNER``): verified with the app's SECRET_KEY as
Flask-Session 0.8 does, every cookie here signed (or refused) by Flask-Session's own interface,
so the codec and the library are checked against each other, not against a copy of either."""

from __future__ import annotations

import secrets
import warnings

import pytest
import redis
from flask import Flask
from flask_session.redis import RedisSessionInterface
from hypothesis import given, settings
from hypothesis import strategies as st
from itsdangerous import BadSignature, Signer

from curfew.sessions.codec import build_codec, flask_session_unsign

SECRET = "flask-test-secret-key-not-for-production-0123456789"
OLD_SECRET = "the secret key before the rotation"
SID = secrets.token_urlsafe(32)


def flask_session(secret: str) -> tuple[Flask, RedisSessionInterface]:
    """A Flask app with ``secret`` and Flask-Session's Redis interface, signer on (the client
    connects lazily: nothing here talks to Redis)."""
    app = Flask(__name__)
    app.secret_key = secret
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # SESSION_USE_SIGNER is deprecated
        interface = RedisSessionInterface(app, client=redis.Redis(), use_signer=True)
    return app, interface


def signed_by_flask_session(sid: str, secret: str) -> str:
    app, interface = flask_session(secret)
    return interface._sign(app, sid)


def flask_session_reads(value: str, secret: str) -> str | None:
    """The id Flask-Session reads from a cookie (None: it starts a new session instead)."""
    app, interface = flask_session(secret)
    try:
        return interface._unsign(app, value)
    except BadSignature:
        return None


VERIFYING = build_codec("flask-session", "session:", app_secrets=(SECRET.encode(),))
ROTATING = build_codec("flask-session", "session:",
                       app_secrets=(SECRET.encode(), OLD_SECRET.encode()))
STRIPPING = build_codec("flask-session", "session:")


def test_a_cookie_flask_session_signed_is_its_id() -> None:
    cookie = signed_by_flask_session(SID, SECRET)
    assert cookie.startswith(SID + ".")
    assert VERIFYING.app_id(cookie, cookie=True) == SID
    assert ROTATING.app_id(cookie, cookie=True) == SID


def test_a_cookie_signed_with_either_secret_of_a_rotation_is_its_id() -> None:
    old = signed_by_flask_session(SID, OLD_SECRET)
    assert ROTATING.app_id(old, cookie=True) == SID
    assert VERIFYING.app_id(old, cookie=True) is None, "the old secret alone is not the app's"


@pytest.mark.parametrize(
    ("case", "cookie"),
    [
        ("a cookie signed with another key", signed_by_flask_session(SID, "a guessed secret")),
        # The first character of the signature: the last one carries bits base64 drops.
        ("a signature with one character changed",
         (lambda c, at: c[:at] + ("A" if c[at] != "A" else "B") + c[at + 1:])(
             signed_by_flask_session(SID, SECRET), len(SID) + 1)),
        ("a signature cut short", signed_by_flask_session(SID, SECRET)[:-1]),
        ("a signature of another id",
         "B" * 43 + signed_by_flask_session(SID, SECRET)[43:]),
        ("an unsigned id", SID),
        ("an id with an empty signature", SID + "."),
        ("itsdangerous's default salt and derivation instead of Flask-Session's",
         Signer(SECRET).sign(SID).decode()),
        ("a signature over SHA-256 instead of SHA-1",
         Signer(SECRET, salt="flask-session", key_derivation="hmac",
                digest_method=__import__("hashlib").sha256).sign(SID).decode()),
        ("non-ASCII text", SID + ".é"),
    ],
)
def test_a_value_flask_session_would_refuse_is_no_session(case: str, cookie: str) -> None:
    assert flask_session_reads(cookie, SECRET) is None, f"Flask-Session refuses it too: {case}"
    assert VERIFYING.app_id(cookie, cookie=True) is None, case
    assert ROTATING.app_id(cookie, cookie=True) is None, case


def test_a_signature_with_base64_padding_is_read_as_itsdangerous_reads_it() -> None:
    padded = signed_by_flask_session(SID, SECRET) + "="
    assert flask_session_reads(padded, SECRET) == SID
    assert VERIFYING.app_id(padded, cookie=True) == SID


def test_a_correctly_signed_value_outside_the_id_grammar_is_no_session() -> None:
    cookie = signed_by_flask_session("sessions:expirations", SECRET)
    assert flask_session_reads(cookie, SECRET) == "sessions:expirations"
    assert VERIFYING.app_id(cookie, cookie=True) is None


def test_without_the_secret_the_signature_is_stripped_unread() -> None:
    forged = SID + ".Zm9yZ2VkLXNpZ25hdHVyZQ"
    assert STRIPPING.app_id(forged, cookie=True) == SID
    assert STRIPPING.app_id(SID, cookie=True) == SID


def test_a_header_carries_the_id_itself_even_with_secrets() -> None:
    assert VERIFYING.app_id(SID, cookie=False) == SID
    assert VERIFYING.app_id(signed_by_flask_session(SID, SECRET), cookie=False) is None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=120), st.sampled_from([SECRET, OLD_SECRET, "another"]))
def test_the_codec_accepts_exactly_what_flask_session_accepts(value: str, secret: str) -> None:
    """Any text, signed or not: the codec reads the id Flask-Session reads (within the grammar)
    and nothing else."""
    for candidate in (value, signed_by_flask_session(value, secret) if value else value):
        theirs = flask_session_reads(candidate, SECRET) if candidate.isascii() else None
        assert flask_session_unsign(candidate, (SECRET.encode(),)) == theirs
