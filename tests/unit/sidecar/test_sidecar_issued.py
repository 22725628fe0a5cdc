"""Which fields of the app's answer issue a session the sidecar registers: ``Set-Cookie``
values, and the token fields (the session header, ``Curfew-Session-Issued``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from curfew.sidecar.policy import SidecarPolicy, issued_session_id, issued_token_id

MakePolicy = Callable[..., SidecarPolicy]
TOKEN = "Zm9yLXRoZS1kZW1vLXNlc3Npb24tdG9rZW4"


@pytest.mark.parametrize(
    ("case", "set_cookies", "issued"),
    [
        ("a sign-in sets the session cookie", [f"session={TOKEN}; Path=/; HttpOnly"], TOKEN),
        ("a quoted value is read unquoted", [f'session="{TOKEN}"; Path=/'], TOKEN),
        ("other cookies issue nothing", ["theme=dark; Path=/", "session_x=1"], None),
        ("the last of two session cookies is the one a browser keeps",
         ["session=first; Path=/", f"session={TOKEN}; Path=/"], TOKEN),
        ("a cookie set then deleted in one answer issues nothing",
         [f"session={TOKEN}", "session=; Max-Age=0"], None),
        ("a sign-out with Max-Age=0 issues nothing", [f"session={TOKEN}; Max-Age=0"], None),
        ("a negative Max-Age deletes the cookie too", [f"session={TOKEN}; max-age=-1"], None),
        ("an Expires in the past deletes it",
         [f"session={TOKEN}; Expires=Thu, 01 Jan 1970 00:00:00 GMT"], None),
        ("a positive Max-Age wins over an Expires in the past",
         [f"session={TOKEN}; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=60"], TOKEN),
        ("an Expires in the future keeps it",
         [f"session={TOKEN}; Expires=Fri, 01 Jan 2100 00:00:00 GMT"], TOKEN),
        ("an unreadable Expires is ignored", [f"session={TOKEN}; Expires=soon"], TOKEN),
        ("an empty value issues nothing", ["session=; Path=/"], None),
        ("a value outside the grammar issues nothing", ["session=a b; Path=/"], None),
        ("a name in another case is another cookie", [f"Session={TOKEN}"], None),
    ],
    ids=lambda v: v if isinstance(v, str) and " " in v else "",
)
def test_only_a_live_session_cookie_of_the_formats_grammar_is_issued(
    make_policy: MakePolicy, case: str, set_cookies: list[str], issued: str | None
) -> None:
    assert issued_session_id(make_policy(), set_cookies) == issued, case


def test_header_sessions_are_never_issued_by_cookies(make_policy: MakePolicy) -> None:
    policy = make_policy(session={"header": "Authorization", "headerPrefix": "Bearer "})
    assert issued_session_id(policy, [f"session={TOKEN}"]) is None


BEARER = {"header": "Authorization", "headerPrefix": "Bearer "}


@pytest.mark.parametrize(
    ("case", "session", "values", "issued"),
    [
        ("a bare token in the session header", {"header": "X-Auth-Token"}, [TOKEN], TOKEN),
        ("surrounding whitespace is not the token's", {"header": "X-Auth-Token"},
         [f"  {TOKEN} "], TOKEN),
        ("the header prefix may come with the token", BEARER, [f"Bearer {TOKEN}"], TOKEN),
        ("in any case, as requests are read", BEARER, [f"bearer {TOKEN}"], TOKEN),
        ("or not at all", BEARER, [TOKEN], TOKEN),
        ("an empty value is a sign-out", {"header": "X-Auth-Token"}, [""], None),
        ("a prefix alone is no token", BEARER, ["Bearer "], None),
        ("the same token twice is that token", {"header": "X-Auth-Token"}, [TOKEN, TOKEN],
         TOKEN),
        ("two different tokens issue nothing", {"header": "X-Auth-Token"}, [TOKEN, "other"],
         None),
        ("a value outside the grammar issues nothing", {"header": "X-Auth-Token"}, ["a b"],
         None),
        ("a token longer than any id issues nothing", {"header": "X-Auth-Token"}, ["a" * 5000],
         None),
        ("a cookie session's value, for Curfew-Session-Issued", {"cookieName": "session"},
         [TOKEN], TOKEN),
    ],
    ids=lambda v: v if isinstance(v, str) and " " in v else "",
)
def test_a_token_field_issues_one_token_of_the_formats_grammar(
    make_policy: MakePolicy, case: str, session: dict[str, str], values: list[str],
    issued: str | None,
) -> None:
    assert issued_token_id(make_policy(session=session), values) == issued, case
