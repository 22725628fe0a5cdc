"""express-session's signed cookie: signatures verified as cookie-signature does, with every
secret of a rotation, and the ways a secret list is written in its Secret.

The expected signatures were written by cookie-signature 1.2.2 (express-session 1.19.0's) under
node; the integration tests check the same against the real app."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from curfew.sessions.codec import (
    MAX_APP_SECRETS,
    InvalidAppSecrets,
    build_codec,
    express_sign,
    express_unsign,
    parse_app_secrets,
)

ID = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
SIGNED = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.RT5Cal5xFtX9GjJLGoiK+GzZ+cCRnZ5ZbIS8ml7E5Xo"
"""``sign(ID, 'keyboard cat')`` by cookie-signature."""
UNICODE_ID = "k1-_AbCdEfGhIjKlMnOpQrStUvWxYz09"
UNICODE_SIGNED = f"{UNICODE_ID}.86Woec5gDXpN7t6HpM4DiwtxJmtzOqXX3uaAEj9M3ps"
"""``sign(UNICODE_ID, 'sécret ünicode')``: node keys the HMAC with the secret's UTF-8."""

KEY = (b"keyboard cat",)
VERIFYING = build_codec("connect-redis", "sess:", app_secrets=KEY)
STRIPPING = build_codec("connect-redis", "sess:")


@pytest.mark.parametrize(
    ("case", "value", "secret", "signed"),
    [
        ("cookie-signature's own example", "hello", b"tobiiscool",
         "hello.DGDUkGlIkCzPz+C0B064FNgHdEjox7ch8tOBGslZ5QI"),
        ("a uid-safe id", ID, b"keyboard cat", SIGNED),
        ("a secret with non-ASCII characters", UNICODE_ID, "sécret ünicode".encode(),
         UNICODE_SIGNED),
    ],
)
def test_a_signature_is_the_one_cookie_signature_writes(
    case: str, value: str, secret: bytes, signed: str
) -> None:
    assert express_sign(value, secret) == signed, case
    assert express_unsign(signed, (secret,)) == value, case


@pytest.mark.parametrize(
    ("case", "cookie", "app_id"),
    [
        ("a cookie the secret signed is its id", "s:" + SIGNED, ID),
        ("a signature with one character changed is no session", "s:" + SIGNED[:-1] + "p", None),
        ("a signature cut short is no session", "s:" + SIGNED[:-1], None),
        ("a signature with base64 padding is not the one express writes",
         "s:" + SIGNED + "=", None),
        ("a signature of another id is no session",
         "s:" + "B" * 32 + SIGNED[32:], None),
        ("an unsigned id is no session when signatures are verified", ID, None),
        ("a cookie without its signature is no session", "s:" + ID, None),
        ("an empty signature is no session", "s:" + ID + ".", None),
        ("a signature in base64url is not the one express writes",
         "s:" + SIGNED.replace("+", "-"), None),
        ("a non-ASCII signature is no session", "s:" + ID + ".é", None),
    ],
)
def test_a_verifying_codec_reads_only_cookies_its_secret_signed(
    case: str, cookie: str, app_id: str | None
) -> None:
    assert VERIFYING.app_id(cookie, cookie=True) == app_id, case


def test_any_secret_of_a_rotation_verifies_and_others_do_not() -> None:
    rotation = build_codec("connect-redis", "sess:", app_secrets=(b"new secret", b"keyboard cat"))
    assert rotation.app_id("s:" + SIGNED, cookie=True) == ID
    other = build_codec("connect-redis", "sess:", app_secrets=(b"keyboard dog",))
    assert other.app_id("s:" + SIGNED, cookie=True) is None


def test_without_secrets_the_signature_is_stripped_unread() -> None:
    assert STRIPPING.app_id("s:" + SIGNED[:-1] + "p", cookie=True) == ID


def test_a_header_value_is_an_id_not_a_cookie() -> None:
    assert VERIFYING.app_id(ID, cookie=False) == ID


@given(st.text(max_size=80))
def test_no_value_but_a_signed_one_has_an_id(value: str) -> None:
    app_id = VERIFYING.app_id(value, cookie=True)
    assert app_id is None or value == "s:" + express_sign(app_id, KEY[0])


@pytest.mark.parametrize(
    ("case", "text", "secrets"),
    [
        ("one secret", "keyboard cat", (b"keyboard cat",)),
        ("one secret with a final newline", "keyboard cat\n", (b"keyboard cat",)),
        ("one secret a line, CR LF and empty lines ignored", "new\r\n\r\nold\r\n",
         (b"new", b"old")),
        ("a JSON list", '["new", "old"]', (b"new", b"old")),
        ("a JSON list with spaces around it", ' ["only"]\n', (b"only",)),
        ("spaces inside a line are the secret's", " a b ", (b" a b ",)),
    ],
)
def test_app_secrets_are_read_one_a_line_or_as_a_json_list(
    case: str, text: str, secrets: tuple[bytes, ...]
) -> None:
    assert parse_app_secrets(text) == secrets, case


@pytest.mark.parametrize(
    ("case", "text", "message"),
    [
        ("an empty value", "", "holds no secret"),
        ("only newlines", "\n\r\n", "holds no secret"),
        ("an empty JSON list", "[]", "holds no secret"),
        ("broken JSON", '["a", ', "no JSON list"),
        ("a JSON list of numbers", "[1, 2]", "list of strings"),
        ("too many secrets", "\n".join(str(n) for n in range(MAX_APP_SECRETS + 1)), "more than"),
    ],
)
def test_unreadable_app_secrets_say_why_without_a_secret(
    case: str, text: str, message: str
) -> None:
    with pytest.raises(InvalidAppSecrets, match=message) as error:
        parse_app_secrets(text)
    assert "keyboard" not in str(error.value), case


def test_an_express_session_is_removed_by_the_guarded_string_script() -> None:
    key = VERIFYING.app_key(ID)
    assert key is not None
    assert (key.key, key.types, key.remover) == (f"sess:{ID}", ("string",),
                                                 "delete_if_unrenewed")
    generic = build_codec("generic", "session:").app_key(ID)
    assert generic is not None
    assert generic.remover == "delete_app_session"
