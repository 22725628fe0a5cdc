"""HTTP/1.1 heads as the proxy reads and writes them: what the fast lane serves, hands off or
refuses, the app's answer framing, and the heads it writes (the shortcuts for plain heads give
exactly the bytes of the general path)."""

from __future__ import annotations

import pytest

from curfew.sidecar.http1 import (
    HAND_OFF,
    Malformed,
    RequestHead,
    ResponseHead,
    build_response_head,
    build_upstream_head,
    header_block,
    parse_request_head,
    parse_response_head,
)


def _request(head: bytes) -> RequestHead:
    parsed = parse_request_head(head)
    assert isinstance(parsed, RequestHead)
    return parsed


def test_a_plain_request_head_is_read_with_its_first_values_and_length() -> None:
    head = _request(b"POST /api/x?y=1 HTTP/1.1\r\nHost: shop\r\nCookie: session=a\r\n"
                    b"Content-Length: 5\r\nCookie: second=b\r\nConnection: keep-alive, close\r\n")
    assert (head.method, head.target, head.content_length) == (b"POST", b"/api/x?y=1", 5)
    assert head.first[b"cookie"] == b"session=a\nsecond=b", "every Cookie field, joined"
    assert head.close is True
    assert head.plain is False, "Connection is hop-by-hop: the head is rewritten"
    assert _request(b"GET / HTTP/1.1\r\nHost: shop\r\nX-Custom:  spaced  \r\n").plain is True


@pytest.mark.parametrize(
    "head",
    [
        b"GET / HTTP/1.0\r\nHost: a\r\n",
        b"GET http://a/ HTTP/1.1\r\nHost: a\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: a\r\n",
        b"CONNECT a:443 HTTP/1.1\r\nHost: a\r\n",
        b"GET / HTTP/1.1\r\n",
        b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X-A: 1\r\n" * 101,
    ],
    ids=["http/1.0", "absolute-form", "asterisk-form", "authority-form", "no Host",
         "websocket", "expect", "chunked upload", "too many fields"],
)
def test_well_formed_heads_of_other_shapes_are_handed_off(head: bytes) -> None:
    assert parse_request_head(head) == HAND_OFF


@pytest.mark.parametrize(
    ("head", "says"),
    [
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n",
         "both Content-Length and Transfer-Encoding"),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n",
         "more than one Content-Length"),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n",
         "more than one Content-Length"),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n", "not a number"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n", "more than one Host"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n folded\r\n", "malformed header"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nBad Name: 1\r\n", "malformed header"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-A : 1\r\n", "malformed header"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\nX-B: 2\r\n", "malformed header"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r2\r\n", "malformed header"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x00b\r\n", "malformed header"),
        (b"GET / HTTP/1.1\nHost: a\r\n", "bare LF"),
    ],
    ids=["CL and TE", "two lengths", "a length twice", "signed length", "two hosts",
         "obs-fold", "space in a name", "space before the colon", "bare LF in a field",
         "bare CR", "NUL", "bare LF after the request line"],
)
def test_heads_two_parsers_could_read_differently_are_refused(head: bytes, says: str) -> None:
    with pytest.raises(Malformed, match=says):
        parse_request_head(head)


def test_the_apps_answer_is_framed_by_its_fields() -> None:
    plain = parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                b"Content-Length: 12\r\n")
    assert (plain.status, plain.content_length, plain.keep_alive, plain.plain) == (
        200, 12, True, True)
    chunked = parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n"
                                  b"Transfer-Encoding: gzip, chunked\r\n")
    assert (chunked.chunked, chunked.content_length, chunked.plain) == (True, None, False)
    closing = parse_response_head(b"HTTP/1.0 201 Created\r\nConnection: keep-alive, X-P\r\n")
    assert (closing.keep_alive, closing.tokens) == (False, frozenset({b"keep-alive", b"x-p"}))
    assert parse_response_head(b"HTTP/1.1 204\r\n").reason == b""
    with pytest.raises(Malformed, match="did not answer HTTP"):
        parse_response_head(b"HTTP/2 200 OK\r\n")
    with pytest.raises(Malformed, match="invalid Content-Length"):
        parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\ncontent-length: 2\r\n")
    with pytest.raises(Malformed, match="invalid Content-Length"):
        parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n")


def _general(head: ResponseHead) -> ResponseHead:
    """The same head taken down the general path (as if a field had to be dropped)."""
    head.plain = False
    return head


def test_a_plain_answer_head_is_relayed_exactly_as_the_general_path_writes_it() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
    added = header_block({"Curfew-Idle-Remaining": "900"})
    names = frozenset({b"curfew-idle-remaining"})
    fast = build_response_head(parse_response_head(raw), added, names, b"")
    assert fast == build_response_head(_general(parse_response_head(raw)), added, names, b"")
    assert fast == (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
                    b"Curfew-Idle-Remaining: 900\r\n\r\n")


def test_the_answer_loses_its_hop_by_hop_fields_and_the_apps_values_of_the_sidecars() -> None:
    head = parse_response_head(b"HTTP/1.1 200 OK\r\nConnection: X-Private\r\nX-Private: p\r\n"
                               b"Keep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\n"
                               b"Curfew-Idle-Remaining: 1\r\nCurfew-Warning: app\r\nX-Kept: k\r\n")
    out = build_response_head(head, b"Curfew-Idle-Remaining: 900\r\n",
                              frozenset({b"curfew-idle-remaining"}),
                              b"Transfer-Encoding: chunked\r\n")
    assert out == (b"HTTP/1.1 200 OK\r\nCurfew-Warning: app\r\nX-Kept: k\r\n"
                   b"Curfew-Idle-Remaining: 900\r\nTransfer-Encoding: chunked\r\n\r\n")


def _upstream(head: RequestHead, *, plain: bool, peer: str | None = "10.0.0.9") -> bytes:
    return build_upstream_head(
        head.method, head.target, head.block, plain=plain, peer=peer, secure=False,
        forwarded_host=head.first.get(b"host"), default_host=b"app:3000",
        added=b"Curfew-Idle-Remaining: 900\r\n",
    )


def test_a_plain_request_head_goes_to_the_app_exactly_as_the_general_path_writes_it() -> None:
    head = _request(b"GET /p?q=1 HTTP/1.1\r\nHost: shop\r\nCookie: session=a\r\n")
    assert head.plain
    assert _upstream(head, plain=True) == _upstream(head, plain=False) == (
        b"GET /p?q=1 HTTP/1.1\r\nHost: shop\r\nCookie: session=a\r\n"
        b"X-Forwarded-For: 10.0.0.9\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: shop\r\n"
        b"Curfew-Idle-Remaining: 900\r\n\r\n")


def test_the_request_to_the_app_drops_hop_by_hop_and_client_curfew_fields() -> None:
    head = _request(b"GET / HTTP/1.1\r\nHost: shop\r\nConnection: X-Hop\r\nX-Hop: h\r\n"
                    b"cUrFeW-Idle-Remaining: 99999\r\nTE: trailers\r\nX-Forwarded-For: 1.2.3.4\r\n"
                    b"X-Forwarded-Proto: https\r\nX-Kept: k\r\n")
    assert not head.plain
    assert _upstream(head, plain=False) == (
        b"GET / HTTP/1.1\r\nHost: shop\r\nX-Forwarded-Proto: https\r\nX-Kept: k\r\n"
        b"X-Forwarded-For: 1.2.3.4, 10.0.0.9\r\nX-Forwarded-Host: shop\r\n"
        b"Curfew-Idle-Remaining: 900\r\n\r\n")


def test_a_value_the_sidecar_adds_can_never_end_its_line() -> None:
    assert header_block({"A": "1", "B": "2"}) == b"A: 1\r\nB: 2\r\n"
    for bad in ("x\r\nInjected: 1", "x\nInjected: 1", "x\rInjected", "x\x00"):
        with pytest.raises(ValueError, match="line break"):
            header_block({"Location": bad})


def test_repeated_fields_are_kept_every_cookie_joined() -> None:
    head = parse_request_head(b"GET / HTTP/1.1\r\nHost: a\r\nCookie: a=1\r\nX-T: one\r\n"
                              b"cookie:  session=s \r\nX-T: two\r\n")
    assert isinstance(head, RequestHead)
    assert head.first[b"cookie"] == b"a=1\nsession=s"
    assert head.first[b"x-t"] == b"one"
    assert head.repeated == {b"cookie", b"x-t"}
    assert head.values(b"x-t") == [b"one", b"two"]
    assert head.values(b"host") == [b"a"]
    assert head.values(b"absent") == []
