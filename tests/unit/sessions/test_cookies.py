"""The one cookie reading on its own: its quick path for headers as browsers send them agrees
with the full rule, its errors never carry a value, and hostile headers stay cheap.
(The table against real framework parsers is tests/integration/sessions/test_cookie_reading.py.)
"""

from __future__ import annotations

import contextlib
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curfew.sessions import cookies
from curfew.sessions.cookies import SEPARATE_FIELDS, AmbiguousSession, session_cookie

_TOKEN = st.text(alphabet=st.sampled_from(list("!#&'*+-.^_`|~09azAZ")), min_size=1, max_size=6)
_OCTETS = st.text(alphabet=st.sampled_from(list("!#$%&()*+-./09:<=>?@AZ[]^_`az{|}~3aC")),
                  max_size=8)


def _outcome(read: object, header: str, name: str) -> list[str] | str:
    try:
        return read(header, name)  # type: ignore[operator,no-any-return]
    except AmbiguousSession:
        return "ambiguous"


@settings(max_examples=2000, deadline=None)
@given(
    name=st.sampled_from(["session", "connect.sid", "s_id", "__Host-sid", "SESSION"]),
    pairs=st.lists(st.tuples(st.one_of(_TOKEN, st.sampled_from(
        ["session", "Session", "SESSION", "connect.sid", "connect_sid", "Connect.Sid", "s_id",
         "s.id", "__Host-sid", "__host-SID", "'session'", "session'", "session~", "session"])),
        _OCTETS), min_size=1, max_size=5),
)
def test_the_quick_path_reads_plain_headers_as_the_full_rule_does(
    name: str, pairs: list[tuple[str, str]]
) -> None:
    header = "; ".join(f"{n}={v}" for n, v in pairs)
    assert cookies._PLAIN_HEADER.fullmatch(header)
    assert _outcome(cookies._plain_values, header, name) == _outcome(
        cookies._strict_values, header, name)


@pytest.mark.parametrize(
    "header",
    ["x=1, session=SECRETVALUE", 'session="SECRETVALUE"', "session=SECRETVALUE; session=OTHER",
     "Session=SECRETVALUE", "session=SECRET%zzVALUE", "session=SECRET%C3VALUE",
     "session=SECRETVALUE\nx=1"],
)
def test_a_refusal_names_the_rule_never_the_value(header: str) -> None:
    with pytest.raises(AmbiguousSession) as refused:
        session_cookie(header, "session")
    assert "SECRET" not in str(refused.value)
    assert "OTHER" not in str(refused.value)


@pytest.mark.parametrize(
    "header",
    # About the most the fast lane takes in a head (16 KiB).
    ["a=" + "%25" * 5400 + "; session=abc", "%" + "25" * 8000 + "73ession=abc",
     "x=" + "\\" * 16000 + "; session=abc", ", " * 8000 + "session=abc",
     "a" * 16000 + "=1; session=abc", ";" * 16000 + "session=abc",
     ("session=abc; " * 1200)[:-2]],
)
def test_hostile_headers_as_large_as_a_head_are_read_quickly(header: str) -> None:
    started = time.process_time()
    with contextlib.suppress(AmbiguousSession):
        session_cookie(header, "session")
    assert time.process_time() - started < 0.1


def test_a_name_encoded_past_what_any_framework_decodes_is_still_refused() -> None:
    deep = "s"
    for _ in range(6):
        deep = deep.replace("%", "%25") if "%" in deep else "%73"
    with pytest.raises(AmbiguousSession):
        session_cookie(f"{deep}ession=abc", "session")


def test_the_session_in_one_of_several_cookie_fields_is_refused_but_other_fields_pass() -> None:
    with pytest.raises(AmbiguousSession, match="several Cookie fields"):
        session_cookie(SEPARATE_FIELDS.join(["theme=dark", "session=abc"]), "session")
    assert session_cookie(SEPARATE_FIELDS.join(["theme=dark", "lang=en"]), "session") is None


def test_percent_escapes_are_judged_decoded() -> None:
    assert session_cookie("session=s%3Aabc.sig%2Bx%2F", "session") == "s:abc.sig+x/"
    assert session_cookie("session=caf%C3%A9", "session") == "caf\u00e9"
    assert session_cookie("session=s:abc", "session") == "s:abc"
