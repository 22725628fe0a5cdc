"""Session codecs: which cookie and header values are a session of each format, what id and app
key they stand for, and which id patterns a policy may set."""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curfew.sessions.codec import (
    DEFAULT_ID_PATTERNS,
    MAX_ID_LENGTH,
    UUID_PATTERN,
    InvalidIdPattern,
    build_codec,
    check_id_pattern,
)

SPRING = build_codec("spring-session", "spring:session:")
SPRING_RAW = build_codec("spring-session", "spring:session:", id_encoding="raw")
SPRING_B64 = build_codec("spring-session", "spring:session:", id_encoding="base64")
EXPRESS = build_codec("connect-redis", "sess:")
GENERIC = build_codec("generic", "session:")
CURFEW = build_codec("curfew", "curfew:")

UUID = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
UID_SAFE = "bW9ja2VkLXVpZC1zYWZlLTI0LWJ5dGVz"  # 24 bytes in base64url: 32 characters


@pytest.mark.parametrize(
    ("case", "codec", "value", "cookie", "app_id"),
    [
        ("a Spring cookie holds the id in base64",
         SPRING, base64.b64encode(UUID.encode()).decode(), True, UUID),
        ("a Spring cookie written without base64 (idEncoding raw) holds the id itself",
         SPRING_RAW, UUID, True, UUID),
        ("a raw id in a Spring cookie is no session when the cookie is base64 (the default)",
         SPRING, UUID, True, None),
        ("a Spring cookie in base64 without its padding is read as Java's decoder reads it",
         SPRING, base64.b64encode(UUID.encode()).decode().rstrip("="), True, UUID),
        ("a Spring cookie in URL-safe base64 is no session (Java's basic decoder refuses it)",
         SPRING, base64.urlsafe_b64encode(b"\xfb" + UUID.encode()).decode(), True, None),
        ("a Spring header in base64 is read when idEncoding says base64",
         SPRING_B64, base64.b64encode(UUID.encode()).decode(), False, UUID),
        ("a base64 Spring header is no session by default (X-Auth-Token holds the id itself)",
         SPRING, base64.b64encode(UUID.encode()).decode(), False, None),
        ("a cookie of non-ASCII characters is no base64 and no session", SPRING, "\x80" * 4,
         True, None),
        ("a Spring header holds the id itself", SPRING, UUID, False, UUID),
        ("a Spring id in upper case is not one Spring writes", SPRING, UUID.upper(), False, None),
        ("Spring's expiration store is no session id", SPRING, "expirations", True, None),
        ("a Spring expiry key's tail is no session id", SPRING, "expires:" + UUID, False, None),
        ("base64 of something else is no Spring session",
         SPRING, base64.b64encode(b"expirations" * 3 + b"abc").decode(), True, None),
        ("an express cookie is s:<id>.<signature>",
         EXPRESS, f"s:{UID_SAFE}.c2lnbmF0dXJl", True, UID_SAFE),
        ("an express cookie is never percent-decoded twice (the cookie reading did once)",
         EXPRESS, f"s%3A{UID_SAFE}.c2lnbmF0dXJl", True, None),
        ("a signed express cookie without its signature is no session",
         EXPRESS, f"s:{UID_SAFE}", True, None),
        ("a bare uid-safe id is read as the id", EXPRESS, UID_SAFE, True, UID_SAFE),
        ("an express id one character short is no session", EXPRESS, UID_SAFE[1:], True, None),
        ("an express id with a base64 slash is no uid-safe id",
         EXPRESS, "/" + UID_SAFE[1:], False, None),
        ("a generic id of token characters is valid", GENERIC, "a" * 16, True, "a" * 16),
        ("a generic value naming another key of the app is no session",
         GENERIC, "config", True, None),
        ("a generic value with a colon never reaches another namespace",
         GENERIC, "lock:" + "a" * 16, True, None),
        ("a generic id past 128 characters is no session", GENERIC, "a" * 129, True, None),
        ("a curfew-format JWT is a session", CURFEW, "eyJhbGciOi.eyJzdWIi.c2ln", False,
         "eyJhbGciOi.eyJzdWIi.c2ln"),
        ("a curfew-format value with a space is no session", CURFEW, "a b", False, None),
        ("a curfew-format value past the longest id is no session",
         CURFEW, "a" * (MAX_ID_LENGTH + 1), True, None),
        ("a newline never ends a valid id", GENERIC, "a" * 16 + "\n", True, None),
    ],
    ids=lambda v: v if isinstance(v, str) and " " in v else "",
)
def test_a_value_is_the_apps_session_id_only_within_its_formats_grammar(
    case: str, codec, value: str, cookie: bool, app_id: str | None
) -> None:
    assert codec.app_id(value, cookie=cookie) == app_id, case


def test_each_format_names_its_apps_key_and_the_type_that_key_holds() -> None:
    spring = SPRING.app_key(UUID)
    assert spring is not None
    assert (spring.key, spring.types) == (f"spring:session:sessions:{UUID}", ("hash",))
    express = EXPRESS.app_key(UID_SAFE)
    assert express is not None
    assert (express.key, express.types) == (f"sess:{UID_SAFE}", ("string",))
    generic = GENERIC.app_key("a" * 16)
    assert generic is not None
    assert generic.types_arg == "string,hash"
    assert CURFEW.app_key("anything") is None


def test_an_id_pattern_replaces_the_formats_grammar_as_a_full_match() -> None:
    php = build_codec("generic", "PHPREDIS_SESSION:", r"[a-v0-9]{26,32}")
    assert php.app_id("a" * 26, cookie=True) == "a" * 26
    assert php.app_id("a" * 26 + "z", cookie=True) is None, "a partial match is no match"
    assert php.app_id("x" + "a" * 26, cookie=True) is None


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("[a-z", "not a regular expression"),
        ("[a-z]*", "matches ''"),
        (r"\S*|.+", "matches ''"),
        (r"[\w ]+", "matches ' '"),
        (r"[\s\w]{1,9}", "matches ' '"),
        (".{1,64}", "matches ' '"),
        ("a" * 257, "longer than 256"),
    ],
)
def test_an_id_pattern_that_could_take_a_non_id_for_a_session_is_refused(
    pattern: str, why: str
) -> None:
    with pytest.raises(InvalidIdPattern, match=re.escape(why)):
        check_id_pattern(pattern)


def test_every_default_grammar_is_a_pattern_a_policy_could_set() -> None:
    for pattern in DEFAULT_ID_PATTERNS.values():
        assert check_id_pattern(pattern) == pattern


_CLIENT_VALUES = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["expirations", "expires:x", "config", "s:abc.def", "s%3Aabc.def", "%ff"]),
    # Near misses of each grammar: the right length and alphabet, with key syntax mixed in.
    st.from_regex(r"[0-9a-f:*{}-]{36}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9_:.*{}-]{30,34}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9_:-]{14,130}", fullmatch=True),
    st.from_regex(UUID_PATTERN, fullmatch=True).map(lambda u: base64.b64encode(u.encode())
                                                     .decode()),
    st.from_regex(r"s(:|%3A)[A-Za-z0-9_:-]{32}\.[A-Za-z0-9+/]{1,43}", fullmatch=True),
)


@settings(max_examples=1000, deadline=None)
@given(value=_CLIENT_VALUES, cookie=st.booleans())
def test_no_value_a_client_sends_names_a_key_outside_the_apps_session_keys(
    value: str, cookie: bool
) -> None:
    for codec, head in ((SPRING, "spring:session:sessions:"), (EXPRESS, "sess:"),
                        (GENERIC, "session:")):
        app_id = codec.app_id(value, cookie=cookie)
        if app_id is None:
            continue
        assert codec.pattern.fullmatch(app_id)
        app_key = codec.app_key(app_id)
        assert app_key is not None
        assert app_key.key == head + app_id
        for character in ":*?[{}. ":
            assert character not in app_id, "no id reaches another key or a SCAN pattern"
