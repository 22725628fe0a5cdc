"""Which ``Set-Cookie`` values of the app's answer issue a session the sidecar registers."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from curfew.sidecar.policy import SidecarPolicy, issued_session_id

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
