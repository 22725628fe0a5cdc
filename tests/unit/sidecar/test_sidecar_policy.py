"""The sidecar's pure request rules: session extraction, activity, client kind, redirects."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest

from curfew.sessions.cookies import SEPARATE_FIELDS, AmbiguousSession, session_cookie
from curfew.sidecar.policy import (
    HEADER_ABSOLUTE_REMAINING,
    HEADER_IDLE_REMAINING,
    HEADER_RENEWAL_DUE,
    HEADER_WARNING,
    SidecarPolicy,
    build_clear_cookie,
    build_login_prefix,
    build_login_redirect,
    build_remaining_headers,
    build_www_authenticate,
    extract_session_id,
    form_encode,
    is_activity,
    is_api_client,
    safe_return_path,
)

MakePolicy = Callable[..., SidecarPolicy]


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("session=abc", "abc"),
        ("theme=dark; session=abc; lang=en", "abc"),
        ("session=same; theme=dark; session=same", "same"),
        ("mysession=nope; session_x=nope", None),
        ("session=", None),
        ("theme=dark", None),
    ],
)
def test_the_session_cookie_is_found_by_exact_name(header: str, value: str | None) -> None:
    assert session_cookie(header, "session") == value


@pytest.mark.parametrize(
    ("header_value", "raw"),
    [
        ("Bearer tok-123", "tok-123"),
        ("bearer tok-123", "tok-123"),
        ("Bearer   tok-123  ", "tok-123"),
        ("Basic dXNlcjpwdw==", None),
        ("Bearer ", None),
        (None, None),
    ],
)
def test_a_header_session_needs_the_configured_prefix(
    make_policy: MakePolicy, header_value: str | None, raw: str | None
) -> None:
    policy = make_policy(session={"header": "Authorization", "headerPrefix": "Bearer "})
    assert extract_session_id(policy, "session=cookie-is-ignored", header_value) == raw


@pytest.mark.parametrize(
    "header",
    ["session=first; session=second", "session=; session=abc",
     "session=abc; theme=dark; session=abc; session=abd"],
)
def test_two_different_values_of_the_session_cookie_are_ambiguous(header: str) -> None:
    # Apps differ on which one they read: judging either would let the other through.
    with pytest.raises(AmbiguousSession):
        session_cookie(header, "session")


def test_a_session_header_sent_twice_must_say_the_same(make_policy: MakePolicy) -> None:
    policy = make_policy(session={"header": "Authorization", "headerPrefix": "Bearer "})
    twice = SEPARATE_FIELDS.join(["Bearer tok", "Bearer tok"])
    assert extract_session_id(policy, None, twice) == "tok"
    with pytest.raises(AmbiguousSession):
        extract_session_id(policy, None, SEPARATE_FIELDS.join(["Bearer tok", "Bearer other"]))
    with pytest.raises(AmbiguousSession):
        extract_session_id(policy, None, SEPARATE_FIELDS.join(["Basic x", "Bearer tok"]))


def test_a_header_session_without_prefix_is_the_whole_value(make_policy: MakePolicy) -> None:
    policy = make_policy(session={"header": "X-Session-Token"})
    assert policy.header == "x-session-token"
    assert extract_session_id(policy, None, " tok ") == "tok"


def test_a_cookie_policy_ignores_headers(make_policy: MakePolicy) -> None:
    policy = make_policy()
    assert extract_session_id(policy, None, "Bearer tok") is None
    assert extract_session_id(policy, "session=s1", None) == "s1"


@pytest.mark.parametrize(
    ("method", "path", "counts"),
    [
        ("GET", "/cart", True),
        ("POST", "/api/orders", True),
        ("GET", "/healthz", False),
        ("GET", "/healthz/deep", True),
        ("GET", "/api/notifications/poll", False),
        ("OPTIONS", "/cart", False),
        ("HEAD", "/cart", False),
    ],
)
def test_excluded_path_globs_and_methods_are_not_activity(
    make_policy: MakePolicy, method: str, path: str, counts: bool
) -> None:
    assert is_activity(make_policy(), method, path) is counts


@pytest.mark.parametrize(
    ("method", "accept", "requested_with", "fetch_mode", "api"),
    [
        ("GET", "text/html,application/xhtml+xml,*/*;q=0.8", None, "navigate", False),
        ("GET", "text/html", None, None, False),
        ("GET", None, None, None, False),
        ("GET", "application/json", None, None, True),
        ("GET", "application/problem+json, */*", None, None, True),
        ("GET", "*/*", "XMLHttpRequest", None, True),
        ("GET", "*/*", None, "cors", True),
        ("POST", "text/html", None, "navigate", True),
        ("DELETE", None, None, None, True),
        ("HEAD", "text/html", None, None, False),
    ],
)
def test_api_clients_are_told_apart_from_browser_navigations(
    method: str, accept: str | None, requested_with: str | None, fetch_mode: str | None, api: bool
) -> None:
    assert is_api_client(method, accept, requested_with, fetch_mode) is api


@pytest.mark.parametrize(
    ("target", "safe"),
    [
        ("/cart?item=3&q=a%20b", "/cart?item=3&q=a%20b"),
        ("/", "/"),
        ("//evil.example/phish", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("evil.example", "/"),
        ("/a\r\nSet-Cookie: x=1", "/"),
        ("/page#fragment", "/page"),
    ],
)
def test_only_same_origin_relative_return_urls_survive(target: str, safe: str) -> None:
    assert safe_return_path(target) == safe


def test_the_login_redirect_carries_the_original_url_and_the_reason(
    make_policy: MakePolicy,
) -> None:
    policy = make_policy(reauthentication={
        "loginURL": "https://login.example.com/sso?tenant=shop&return_to=/stale#frag",
        "returnToParameter": "return_to",
    })
    location = build_login_redirect(policy, "/cart?item=3", "idle")
    assert location == (
        "https://login.example.com/sso?tenant=shop&return_to=%2Fcart%3Fitem%3D3&curfew_reason=idle")
    parts = urlsplit(location)
    assert parse_qs(parts.query) == {
        "tenant": ["shop"], "return_to": ["/cart?item=3"], "curfew_reason": ["idle"]}


def test_the_login_prefix_keeps_the_login_urls_own_query_byte_for_byte() -> None:
    # Only the parameters the sidecar sets are dropped (however they are spelled); the rest is
    # the operator's and stays as written, even where it is not form-encoded.
    prefix = build_login_prefix(
        "/login?next=%7Ex&a=b+c&ret%75rn_to=old&&curfew_reason=absolute&x=%2f", "return_to")
    assert prefix == "/login?next=%7Ex&a=b+c&x=%2f&return_to="
    assert build_login_prefix("https://sso.example", "back") == "https://sso.example/?back="
    assert build_login_prefix(None, "return_to") is None


def test_an_open_redirect_attempt_returns_to_the_root(make_policy: MakePolicy) -> None:
    location = build_login_redirect(make_policy(), "//evil.example/", "absolute")
    assert location is not None
    assert parse_qs(urlsplit(location).query) == {"return_to": ["/"], "curfew_reason": ["absolute"]}


def test_without_a_login_url_there_is_no_redirect(make_policy: MakePolicy) -> None:
    assert build_login_redirect(make_policy(reauthentication={}), "/cart", "idle") is None


@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        ("/a b?c=d&e=f#g", "%2Fa+b%3Fc%3Dd%26e%3Df%23g"),
        ("100%25 ~*'()!", "100%2525+%7E*%27%28%29%21"),
        ("caf\u00e9 \u2713 \U0001f600", "caf%C3%A9+%E2%9C%93+%F0%9F%98%80"),
        ("-._AZaz09+", "-._AZaz09%2B"),
    ],
)
def test_form_encoding_is_the_url_standards(text: str, encoded: str) -> None:
    assert form_encode(text) == encoded


NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="node is not installed (make system-deps installs it)")
def test_form_encoding_matches_url_search_params_for_every_character_class() -> None:
    # Every ASCII character, Latin-1, a BMP sample, astral characters and a lone surrogate:
    # what node's URLSearchParams (the URL Standard's serializer, as in browsers) writes.
    corpus = [chr(c) for c in range(0x100)] + [
        "\u0100\u07ff\u0800\ufffd\uffff", "\U0001f600\U0010ffff", "a\ud800b", "/p a?t=h#f&g=%"]
    assert NODE is not None
    done = subprocess.run(
        [NODE, "-e", "const items = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
                     "process.stdout.write(JSON.stringify(items.map(t => "
                     "new URLSearchParams([['', t]]).toString().slice(1))));"],
        input=json.dumps(corpus), capture_output=True, text=True, timeout=30, check=True,
    )
    assert [form_encode(t) for t in corpus] == json.loads(done.stdout)


def test_the_clearing_cookie_expires_the_session_cookie(make_policy: MakePolicy) -> None:
    cookie = build_clear_cookie(make_policy(), secure=False)
    assert cookie is not None
    assert cookie.startswith("session=; Path=/; Max-Age=0;")
    assert "Secure" not in cookie
    assert build_clear_cookie(make_policy(), secure=True).endswith("; Secure")  # type: ignore[union-attr]
    host = make_policy(session={"cookieName": "__Host-sid"})
    assert build_clear_cookie(host, secure=False).endswith("; Secure")  # type: ignore[union-attr]
    bearer = make_policy(session={"header": "Authorization", "headerPrefix": "Bearer "})
    assert build_clear_cookie(bearer, secure=True) is None


@pytest.mark.parametrize(
    ("idle", "absolute", "warning"),
    [
        (899.9, 20000.0, None),
        (120.0, 20000.0, "idle"),
        (119.5, 20000.0, "idle"),
        (600.0, 60.0, "absolute"),
    ],
)
def test_remaining_headers_round_down_and_flag_the_warning_window(
    make_policy: MakePolicy, idle: float, absolute: float, warning: str | None
) -> None:
    headers = build_remaining_headers(make_policy(), idle, absolute)
    assert headers[HEADER_IDLE_REMAINING] == str(int(idle))
    assert headers[HEADER_ABSOLUTE_REMAINING] == str(int(absolute))
    assert headers.get(HEADER_WARNING) == warning


def test_a_due_renewal_is_announced_to_the_app(make_policy: MakePolicy) -> None:
    assert build_remaining_headers(make_policy(), 10, 10, renewal_due=True)[
        HEADER_RENEWAL_DUE] == "true"
    assert HEADER_RENEWAL_DUE not in build_remaining_headers(make_policy(), 10, 10)


def test_without_a_warning_lead_there_is_never_a_warning(make_policy: MakePolicy) -> None:
    policy = make_policy(timeouts={"idleSeconds": 60, "absoluteSeconds": 600})
    assert HEADER_WARNING not in build_remaining_headers(policy, 0.5, 0.5)


def test_bearer_sessions_get_a_bearer_challenge(make_policy: MakePolicy) -> None:
    bearer = make_policy(session={"header": "Authorization", "headerPrefix": "Bearer "})
    assert build_www_authenticate(bearer, "idle").startswith('Bearer realm="curfew", '
                                                            'error="invalid_token"')
    assert 'reason="absolute"' in build_www_authenticate(make_policy(), "absolute")
