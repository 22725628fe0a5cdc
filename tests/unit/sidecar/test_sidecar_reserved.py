"""Which targets are the sidecar's own, and who may keep a session alive: the pure rules of
``curfew.sidecar.reserved``, against a table of attacks and a reference normaliser."""

from __future__ import annotations

import posixpath
import re
from urllib.parse import unquote

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from curfew.sidecar.reserved import is_reserved_target, keepalive_allowed


@pytest.mark.parametrize(
    "target",
    [
        "/.curfew/session",
        "/.curfew/keepalive",
        "/.curfew/client.js",
        "/.curfew/session?from=%2E%2E%2Fadmin",
        "/.curfew/",
        "/.curfew/a.b/c-d_e~f",
    ],
)
def test_canonical_sidecar_paths_are_reserved(target: str) -> None:
    assert is_reserved_target(target)


@pytest.mark.parametrize(
    "target",
    [
        "/.curfew/../admin",
        "/%2Ecurfew/../admin",
        "/%2ecurfew/session",
        "/.curfew/%2E%2E/admin",
        "/.curfew/%2e%2e/admin",
        "/.curfew/%2e%2e%2fadmin",
        "/.curfew/..%2Fadmin",
        "/.curfew/%252e%252e/admin",
        "/.curfew/%2F..%2Fadmin",
        "/.curfew/..\\admin",
        "/.curfew\\..\\admin",
        "/.curfew/..;/admin",
        "/.curfew;x=1/../admin",
        "/.curfew/session;jsessionid=1",
        "/.curfew//admin",
        "//.curfew/session",
        "/.curfew/./session",
        "/.curfew/session/.",
        "/.curfew/session/..",
        "/.curfew/.../admin",
        "/.curfew/se%73sion",
        "/.curfew/session#/../../admin",
        "/.curfew/sessi\u00f6n",
        "/.curfew",
        "/.CURFEW/session",
        "/app/../.curfew/session",
        "http://shop.example.com/.curfew/session",
        "*",
        "",
    ],
)
def test_other_spellings_are_app_requests(target: str) -> None:
    assert not is_reserved_target(target)


# --- the property: a reserved target means the same to every server behind the sidecar -----


def _rfc3986_remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4, as written (no slash merging)."""
    out: list[str] = []
    while path:
        if path.startswith(("../", "./")):
            path = path[path.index("/") + 1:]
        elif path.startswith("/./") or path == "/.":
            path = "/" + path[3:]
        elif path.startswith("/../") or path == "/..":
            path = "/" + path[4:]
            if out:
                out.pop()
        elif path in (".", ".."):
            path = ""
        else:
            start = 1 if path.startswith("/") else 0
            end = path.find("/", start)
            end = len(path) if end < 0 else end
            out.append(path[:end])
            path = path[end:]
    return "".join(out)


def readings(target: str) -> set[str]:
    """Every path a server behind the sidecar might take the target for: decoded zero to three
    times, ``\\`` as ``/`` or not, ``;`` parameters dropped or not, ``#`` a fragment or not,
    then dot-segments removed per RFC 3986 or by ``posixpath.normpath`` (which also merges
    slashes, as nginx does)."""
    found: set[str] = set()
    for raw in {target.partition("?")[0], target.partition("?")[0].partition("#")[0]}:
        decoded = raw
        for _ in range(4):
            for backslash in (False, True):
                for params in (False, True):
                    path = decoded.replace("\\", "/") if backslash else decoded
                    path = re.sub(r";[^/]*", "", path) if params else path
                    found.add(_rfc3986_remove_dot_segments(path))
                    found.add(posixpath.normpath(path) if path else path)
            decoded = unquote(decoded)
    return found


def _same_path(reading: str, path: str) -> bool:
    return reading.rstrip("/") == path.rstrip("/")


_PIECES = st.sampled_from([
    "/", ".", "..", ".curfew", "curfew", "session", "admin", "%2e", "%2E", "%2f", "%2F",
    "%252e", "%252f", "%25", "%", "%5c", "%5C", "\\", ";", ";x=1", "?", "#", "a", "~", "%73",
    "//", "/./", "/../", ":", "@",
])
_PLAIN = ["session", "client.js", "a", "..a", "a..", ".a", "~", "x=1", "@", "!", "a.b", ".curfew"]
_TRICKY = [
    "", ".", "..", "...", "%2e", "%2E%2E", ".%2e", "a%2fb", "%2F", "%252e%252e", "%25", "%",
    "a%5Cb", "a\\b", "..\\", "a;x=1", "..;", "se%73sion", "a?q=/../", "a#/../b",
]
targets = st.one_of(
    # Segments, mostly plain: about half of these targets are reserved, and checked.
    st.builds(
        lambda prefix, segments: prefix + "/".join(segments),
        st.sampled_from(["/.curfew/"] * 4 + ["/", "/%2Ecurfew/", "/.curfew", ""]),
        st.lists(st.sampled_from(_PLAIN * 6 + _TRICKY), max_size=6),
    ),
    st.builds(
        lambda prefix, pieces: prefix + "".join(pieces),
        st.sampled_from(["/.curfew/", "/", "/%2Ecurfew/", "/.curfew", "", "/app/"]),
        st.lists(_PIECES, max_size=12),
    ),
    st.text(max_size=40),
)


@settings(max_examples=3000)
@given(targets)
@example("/.curfew/../admin")
@example("/%2Ecurfew/../admin")
@example("/.curfew/%2E%2E/admin")
@example("/.curfew/session")
def test_a_reserved_target_reads_as_the_same_sidecar_path_on_every_server(target: str) -> None:
    if not is_reserved_target(target):
        # Not reserved: an app request, whose session is checked. Safe whatever it means.
        return
    path = target.partition("?")[0]
    for reading in readings(target):
        assert reading == "/.curfew" or reading.startswith("/.curfew/"), (target, reading)
        assert _same_path(reading, path), (target, reading)


_SEGMENT = st.from_regex(r"[A-Za-z0-9\-_~!$&'()*+,=:@.]{1,12}", fullmatch=True).filter(
    lambda s: s.strip(".") != "")


@given(st.lists(_SEGMENT, min_size=1, max_size=5), st.booleans(), st.text(max_size=10))
def test_every_canonical_path_under_the_prefix_is_reserved(
    segments: list[str], slash: bool, query: str
) -> None:
    path = "/.curfew/" + "/".join(segments) + ("/" if slash else "")
    assert all(_same_path(r, path) for r in readings(path))
    assert is_reserved_target(path + "?" + query)


_ENCODINGS = st.sampled_from([
    "%2e", "%2E", "%2f", "%2F", "%252e", "%252F", "%5c", "%73", "%", "\\", ";", ";x=1", "#",
])


@given(st.lists(_SEGMENT, min_size=1, max_size=4), _ENCODINGS, st.integers(min_value=1))
def test_a_sidecar_path_with_an_encoding_a_backslash_or_a_parameter_is_an_app_request(
    segments: list[str], piece: str, at: int
) -> None:
    path = "/.curfew/" + "/".join(segments)
    at = min(at, len(path))
    assert not is_reserved_target(path[:at] + piece + path[at:])


@given(st.lists(_SEGMENT, min_size=1, max_size=4), st.sampled_from(["", ".", ".."]),
       st.integers(min_value=0))
def test_a_sidecar_path_with_a_dot_segment_or_an_empty_one_is_an_app_request(
    segments: list[str], segment: str, at: int
) -> None:
    # An empty last segment is a trailing slash, which is plain.
    segments.insert(min(at, len(segments) - (segment == "")), segment)
    assert not is_reserved_target("/.curfew/" + "/".join(segments))


# --- keepalive: same origin, non-simple --------------------------------------------------------


@pytest.mark.parametrize(
    ("marker", "origin", "fetch_site", "host"),
    [
        ("1", "https://shop.example.com", "same-origin", "shop.example.com"),
        ("1", "http://127.0.0.1:8080", None, "127.0.0.1:8080"),
        ("1", None, "same-origin", "shop.example.com"),
        ("1", None, None, "shop.example.com"),
        ("1", "https://Shop.Example.com", "Same-Origin", "shop.example.com"),
        ("1", "https://shop.example.com", None, "shop.example.com:443"),
        ("1", "http://[::1]:8080", None, "[::1]:8080"),
    ],
)
def test_a_keepalive_from_the_page_itself_is_allowed(
    marker: str, origin: str | None, fetch_site: str | None, host: str
) -> None:
    assert keepalive_allowed(marker, origin, fetch_site, host)


@pytest.mark.parametrize(
    ("marker", "origin", "fetch_site", "host"),
    [
        (None, "https://shop.example.com", "same-origin", "shop.example.com"),
        ("0", None, None, "shop.example.com"),
        ("true", None, None, "shop.example.com"),
        ("1", "https://evil.example", "cross-site", "shop.example.com"),
        ("1", "https://evil.example", None, "shop.example.com"),
        ("1", None, "cross-site", "shop.example.com"),
        ("1", None, "same-site", "shop.example.com"),
        ("1", None, "none", "shop.example.com"),
        ("1", "null", None, "shop.example.com"),
        ("1", "https://shop.example.com.evil.example", None, "shop.example.com"),
        ("1", "https://shop.example.com:8443", None, "shop.example.com"),
        ("1", "ftp://shop.example.com", None, "shop.example.com"),
        ("1", "https://shop.example.com", None, None),
        ("1", "https://shop.example.com", None, "shop.example.com:80"),
        ("1", "https://shop.example.com:99999", None, "shop.example.com"),
        ("1", "https://shop.example.com/path", None, "shop.example.com"),
        ("1", "https://user@shop.example.com", None, "evil.example"),
        ("1", "https://shop.example.com", None, "shop.example.com:x"),
    ],
)
def test_a_keepalive_from_elsewhere_or_without_the_header_is_refused(
    marker: str | None, origin: str | None, fetch_site: str | None, host: str | None
) -> None:
    assert not keepalive_allowed(marker, origin, fetch_site, host)
