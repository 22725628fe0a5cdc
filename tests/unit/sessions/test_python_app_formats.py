"""The django and flask-session formats: ids the real libraries make, cookies they send, and the
records django-redis writes, read as plain data only (hostile pickles refused, never run)."""

from __future__ import annotations

import json
import os
import pickle
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils.crypto import get_random_string
from hypothesis import given, settings
from hypothesis import strategies as st
from itsdangerous import Signer

from curfew.sessions.codec import build_codec
from curfew.sessions.formats import MalformedSession
from curfew.sessions.formats_python import (
    TtlClock,
    load_plain_pickle,
    read_django_session,
    read_flask_session,
)

DJANGO = build_codec("django", ":1:django.contrib.sessions.cache")
FLASK = build_codec("flask-session", "session:")
VALID_KEY_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"  # django.contrib.sessions.backends.base


def test_a_session_key_django_makes_is_a_django_session_and_names_its_cache_key() -> None:
    for _ in range(200):
        key = get_random_string(32, VALID_KEY_CHARS)
        assert DJANGO.app_id(key, cookie=True) == key
        app_key = DJANGO.app_key(key)
        assert app_key is not None
        assert (app_key.key, app_key.types) == (f":1:django.contrib.sessions.cache{key}",
                                                ("string",))


@pytest.mark.parametrize(
    ("case", "value"),
    [
        ("an upper-case key is none Django makes", "A" * 32),
        ("a key one character short is no session", "a" * 31),
        ("a key with a colon never reaches another cache key", "a" * 16 + ":" + "a" * 15),
        ("a glob character never reaches a SCAN pattern", "a" * 31 + "*"),
        ("a base64url character is outside Django's alphabet", "a" * 31 + "-"),
    ],
)
def test_a_value_outside_djangos_session_key_alphabet_is_no_session(case: str, value: str) -> None:
    assert DJANGO.app_id(value, cookie=True) is None, case


def test_flask_sessions_unsigned_and_signed_cookies_hold_the_same_id() -> None:
    for _ in range(200):
        sid = secrets.token_urlsafe(32)  # Flask-Session 0.8's _generate_sid
        signed = Signer("app-secret", salt="flask-session", key_derivation="hmac").sign(sid)
        assert FLASK.app_id(sid, cookie=True) == sid
        assert FLASK.app_id(signed.decode(), cookie=True) == sid
        app_key = FLASK.app_key(sid)
        assert app_key is not None
        assert app_key.key == f"session:{sid}"


@pytest.mark.parametrize(
    ("case", "value", "cookie"),
    [
        ("a signature alone is no session", ".c2lnbmF0dXJl", True),
        ("an id one character short is no session", "a" * 42, True),
        ("a header value is never unwrapped as a signed cookie", "a" * 43 + ".sig", False),
        ("an id with a colon never reaches another key", "a" * 42 + ":", True),
        ("Flask's own client-side cookie is no Flask-Session id",
         "eyJ1c2VyIjoiYWRhIn0.ZxYz.c2lnbmF0dXJlLXNpZ25hdHVyZQ", True),
    ],
)
def test_a_value_outside_flask_sessions_grammar_is_no_session(
    case: str, value: str, cookie: bool
) -> None:
    assert FLASK.app_id(value, cookie=cookie) is None, case


NOW = 1_800_000_000_000


def pickled(value: Any) -> bytes:
    return pickle.dumps(value, pickle.HIGHEST_PROTOCOL)  # django-redis's PICKLE_VERSION -1


def test_a_pickled_django_session_is_read_for_its_clock() -> None:
    data = {"_auth_user_id": "7", "cart": [1, 2.5, None, True], "seen": {"a"},
            "when": datetime(2026, 1, 1, tzinfo=UTC), "delta": timedelta(seconds=5)}
    clock = read_django_session(pickled(data), 60_000, 300_000)
    assert clock == TtlClock(60_000, 300_000)
    assert clock.last_save_ms(NOW) == NOW - 240_000


def test_a_django_session_with_its_own_inactivity_expiry_uses_it_over_the_stated_age() -> None:
    clock = read_django_session(pickled({"_session_expiry": 120}), 100_000, 1_209_600_000)
    assert clock.last_save_ms(NOW) == NOW - 20_000


def test_a_django_session_ending_at_a_fixed_time_has_no_idle_clock() -> None:
    end = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert read_django_session(pickled({"_session_expiry": end}), 1, 300_000).lifetime_ms is None
    as_json = json.dumps({"_session_expiry": end}).encode()
    assert read_django_session(as_json, 1, 300_000).last_save_ms(NOW) is None


def test_a_json_django_session_is_read_like_a_pickled_one() -> None:
    value = json.dumps({"_auth_user_id": "7"}).encode()  # django-redis's JSONSerializer
    assert read_django_session(value, 10_000, 60_000).last_save_ms(NOW) == NOW - 50_000


def test_a_ttl_longer_than_the_stated_lifetime_never_puts_the_last_save_in_the_future() -> None:
    assert read_flask_session(90_000, 60_000).last_save_ms(NOW) == NOW
    assert read_flask_session(90_000, None).last_save_ms(NOW) is None


class _Exploit:
    def __init__(self, canary: Path) -> None:
        self.canary = canary

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.canary}",))


class _Eval:
    def __reduce__(self) -> tuple[Any, ...]:
        return (eval, ("__import__('os').getpid()",))


def test_a_pickled_session_with_a_malicious_reduce_is_refused_and_never_run(
    tmp_path: Path,
) -> None:
    canary = tmp_path / "canary"
    payloads = [
        pickled(_Exploit(canary)),
        pickled({"_auth_user_id": "7", "x": _Exploit(canary)}),
        pickle.dumps({"x": _Exploit(canary)}, 2),
        pickle.dumps(_Exploit(canary), 0),
        pickled(_Eval()),
    ]
    for payload in payloads:
        with pytest.raises(MalformedSession, match="refused"):
            load_plain_pickle(payload)
        with pytest.raises(MalformedSession):  # protocol 0 is no pickle django-redis writes
            read_django_session(payload, 1000, 60_000)
    assert not canary.exists(), "a pickled os.system ran"
    # The same payload through plain pickle would run: the canary proves the test can fail.
    pickle.loads(pickled(_Exploit(canary)))
    assert canary.exists()


@pytest.mark.parametrize(
    ("case", "value"),
    [
        ("a truncated pickle", pickled({"a": "b" * 50})[:20]),
        ("a pickle of a list", pickled(["not", "a", "session"])),
        ("neither pickle nor JSON", b"\x00garbage"),
        ("JSON that is no dict", b"[1, 2]"),
        ("an expiry that is no time", json.dumps({"_session_expiry": "soon"}).encode()),
        ("an expiry of a thousand years", pickled({"_session_expiry": 10**13})),
        ("an expiry that is a float", pickled({"_session_expiry": 1.5})),
        ("a pickled class", pickled(Path)),
        ("a persistent id", b"\x80\x05P0\n."),
    ],
)
def test_a_django_value_that_is_no_plain_session_is_malformed(case: str, value: bytes) -> None:
    with pytest.raises(MalformedSession):
        read_django_session(value, 1000, 60_000)


_CLIENT_VALUES = st.one_of(
    st.text(max_size=80),
    st.from_regex(r"[a-z0-9:*{}._-]{30,34}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9_:*{}.-]{41,45}(\.[A-Za-z0-9_:.-]{0,30})?", fullmatch=True),
)


@settings(max_examples=1000, deadline=None)
@given(value=_CLIENT_VALUES, cookie=st.booleans())
def test_no_value_a_client_sends_names_a_key_outside_djangos_or_flasks_session_keys(
    value: str, cookie: bool
) -> None:
    for codec, head in ((DJANGO, ":1:django.contrib.sessions.cache"), (FLASK, "session:")):
        app_id = codec.app_id(value, cookie=cookie)
        if app_id is None:
            continue
        app_key = codec.app_key(app_id)
        assert app_key is not None
        assert app_key.key == head + app_id
        assert app_key.remover == "delete_if_unrenewed"
        for character in ":*?[{}. ":
            assert character not in app_id, "no id reaches another key or a SCAN pattern"


def test_only_the_cached_db_prefix_ends_sessions_by_emptying_them() -> None:
    cached_db = build_codec("django", "shop:3:django.contrib.sessions.cached_db")
    key = cached_db.app_key("a" * 32)
    assert key is not None
    assert key.remover == "empty_django_session"
    assert key.key == "shop:3:django.contrib.sessions.cached_db" + "a" * 32
    for other in (DJANGO, FLASK, build_codec("generic", "django.contrib.sessions.cached_db")):
        probe = other.app_key("a" * 43 if other is FLASK else "a" * 32)
        assert probe is not None
        assert probe.remover != "empty_django_session"
