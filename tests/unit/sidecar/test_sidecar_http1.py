"""HTTP/1.1 messages as the proxy reads (llhttp, through httptools) and writes them: what the
fast lane serves, hands off or refuses, the app's answer framing and what comes past it, and
the heads it writes (the shortcut for plain heads gives exactly the bytes of the general
path)."""

from __future__ import annotations

import pytest

from curfew.sidecar.http1 import (
    HAND_OFF,
    Malformed,
    RequestHead,
    RequestParser,
    ResponseHead,
    ResponseReader,
    build_response_head,
    build_upstream_head,
    header_block,
    request_refusal,
)


def _parse(head: bytes) -> RequestHead | str:
    """``head``: a request head without its empty line."""
    parser = RequestParser()
    assert parser.feed_head(head + b"\r\n")
    return parser.head(head)


def _request(head: bytes) -> RequestHead:
    parsed = _parse(head)
    assert isinstance(parsed, RequestHead)
    return parsed


def test_a_plain_request_head_is_read_with_its_first_values_and_length() -> None:
    head = _request(b"POST /api/x?y=1 HTTP/1.1\r\nHost: shop\r\nCookie: session=a\r\n"
                    b"Content-Length: 5\r\nCookie: second=b\r\nConnection: keep-alive, close\r\n")
    assert (head.method, head.target, head.content_length) == (b"POST", b"/api/x?y=1", 5)
    assert head.first[b"cookie"] == b"session=a\nsecond=b", "every Cookie field, joined"
    assert head.close is True
    assert head.plain is False, "Connection is hop-by-hop: the head is rewritten"
    bodiless = _request(b"GET / HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n")
    assert bodiless.close is True, "read before llhttp completes the message and forgets"
    assert _request(b"GET / HTTP/1.1\r\nHost: shop\r\n").close is False
    spaced = _request(b"GET / HTTP/1.1\r\nHost: shop\r\nX-Custom:  spaced \t\r\n")
    assert spaced.plain is True
    assert spaced.first[b"x-custom"] == b"spaced", "whitespace around a value is not the value"


def test_one_parser_reads_the_requests_of_a_connection_in_turn() -> None:
    parser = RequestParser()
    assert parser.feed_head(b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n")
    first = parser.head(b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n")
    assert isinstance(first, RequestHead)
    assert first.content_length == 3
    parser.feed_body(b"abc")
    assert not parser.feed_head(b"GET /b HT"), "a head in pieces is not complete"
    assert parser.feed_head(b"TP/1.1\r\nHost: b\r\n\r\n")
    second = parser.head(b"GET /b HTTP/1.1\r\nHost: b\r\n")
    assert isinstance(second, RequestHead)
    assert second.target == b"/b"


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
    assert _parse(head) == HAND_OFF


@pytest.mark.parametrize(
    ("head", "says"),
    [
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n",
         "Transfer-Encoding can't be present with Content-Length"),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n",
         "Duplicate Content-Length"),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\ncontent-length: 3\r\n",
         "Duplicate Content-Length"),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n", "Invalid character"),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n",
         "Invalid `Transfer-Encoding`"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n", "more than one Host"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n folded\r\n", "whitespace after header"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nBad Name: 1\r\n", "Invalid header token"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-A : 1\r\n", "Invalid header token"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\nX-B: 2\r\n", "Missing expected CR"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r2\r\n", "Missing expected LF"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x00b\r\n", "Invalid header value char"),
        (b"GET / HTTP/2.0\r\nHost: a\r\n", "HTTP/2.0 is not HTTP/1.1"),
        (b"get / HTTP/1.1\r\nHost: a\r\n", "Invalid method"),
    ],
    ids=["CL and TE", "two lengths", "a length twice", "signed length", "coding after chunked",
         "two hosts", "obs-fold", "space in a name", "space before the colon",
         "bare LF in a field", "bare CR", "NUL", "another version", "lower-case method"],
)
def test_heads_llhttp_or_the_server_refuses_are_malformed(head: bytes, says: str) -> None:
    with pytest.raises(Malformed, match=says):
        _parse(head)


def test_a_bare_lf_is_refused_as_soon_as_llhttp_sees_it_before_the_head_ends() -> None:
    with pytest.raises(Malformed, match="Expected CRLF after version"):
        RequestParser().feed_head(b"GET / HTTP/1.1\nHost: a\n")


@pytest.mark.parametrize(
    "connection",
    [b"content-length", b"Content-Length", b"keep-alive, content-length",
     b"keep-alive,Transfer-Encoding", b"close , HOST", b"Curfew-Idle-Remaining",
     b"x, curfew-principal , y"],
)
def test_a_connection_header_naming_framing_host_or_curfew_fields_is_refused(
    connection: bytes,
) -> None:
    with pytest.raises(Malformed, match=r"Connection names .*, which is not hop-by-hop"):
        _parse(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nConnection: %b\r\n"
               % connection)
    assert request_refusal([(b"Host", b"a"), (b"Connection", connection)]) is not None


def test_a_second_connection_field_is_checked_like_the_first() -> None:
    head = (b"POST / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nContent-Length: 1\r\n"
            b"connection: x-private, content-length\r\n")
    with pytest.raises(Malformed, match="content-length"):
        _parse(head)
    assert request_refusal([(b"Connection", b"keep-alive"),
                            (b"CONNECTION", b"x, Content-Length")]) is not None


def test_ordinary_requests_pass_the_servers_checks() -> None:
    assert request_refusal([(b"Host", b"a"), (b"Connection", b"keep-alive, X-Hop"),
                            (b"X-Hop", b"1")]) is None
    assert request_refusal([(b"Host", b"a"), (b"host", b"b")]) == "more than one Host"


def _read(data: bytes, *, head_only: bool = False, pieces: int = 1) -> ResponseReader:
    reader = ResponseReader(head_only=head_only)
    step = max(1, len(data) // pieces)
    for i in range(0, len(data), step):
        reader.feed(data[i:i + step])
    return reader


def _head(reader: ResponseReader) -> ResponseHead:
    assert reader.head is not None
    return reader.head


def test_the_apps_answer_is_framed_by_llhttp() -> None:
    plain = _read(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\n"
                  b"hello world!")
    head = _head(plain)
    assert (head.status, head.content_length, head.keep_alive, head.plain) == (200, 12, True, True)
    assert (plain.complete, bytes(plain.body), plain.leftover) == (True, b"hello world!", False)
    chunked = _read(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"6;ext=1\r\nhello \r\n6\r\nworld!\r\n0\r\nX-T: t\r\n\r\n", pieces=7)
    assert (_head(chunked).chunked, _head(chunked).content_length) == (True, None)
    assert (chunked.complete, bytes(chunked.body), chunked.leftover) == (
        True, b"hello world!", False)
    closing = _read(b"HTTP/1.0 201 Created\r\nConnection: keep-alive, X-P\r\n\r\nuntil close")
    assert (_head(closing).keep_alive, _head(closing).tokens) == (
        False, frozenset({b"keep-alive", b"x-p"})), "a body until close ends the connection"
    assert (closing.until_close, closing.complete) == (True, False)
    closing.finish()
    assert closing.complete
    assert _head(_read(b"HTTP/1.1 204\r\n\r\n")).reason == b""


def test_interim_answers_are_skipped_and_head_answers_have_no_body() -> None:
    reader = _read(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert (_head(reader).status, bytes(reader.body), reader.leftover) == (200, b"ok", False)
    head = _read(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", head_only=True)
    assert (head.complete, head.leftover, _head(head).content_length) == (True, False, 1000)


@pytest.mark.parametrize(
    ("answer", "extra"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", b"HTTP/1.1 200 OK\r\n\r\n"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", b"\r\n"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", b"X"),
        (b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", b"\n"),
    ],
    ids=["a second answer", "a stray CRLF", "a byte after the last chunk", "after a 204"],
)
def test_any_byte_past_the_answers_framing_is_noticed(answer: bytes, extra: bytes) -> None:
    assert not _read(answer).leftover
    after = _read(answer + extra)
    assert after.leftover
    alone = _read(answer)
    assert (after.body, _head(after)) == (alone.body, _head(alone)), "the framed answer only"
    late = _read(answer + extra, pieces=len(answer + extra))
    assert late.leftover, "the bytes past the framing came in a later read"


def test_one_reader_reads_the_answers_of_a_connection_in_turn_when_each_ended_exactly() -> None:
    reader = _read(b"HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 3\r\n\r\none")
    assert reader.reusable
    assert _head(reader).block == b"X-A: 1\r\nContent-Length: 3\r\n", "relayed as sent"
    reader.reset(head_only=False)
    reader.feed(b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\ntwo\r\n0\r\n\r\n")
    assert (_head(reader).status, bytes(reader.body), reader.leftover) == (201, b"two", False)
    assert not _read(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", head_only=True).reusable, (
        "after an answer to HEAD llhttp still expects its body")
    assert not _read(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n12").reusable
    interim = _read(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert _head(interim).block is None, "not the final answer's own lines: rebuilt from fields"


def test_a_head_answer_with_bytes_after_its_head_is_noticed() -> None:
    assert _read(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", head_only=True).leftover


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (b"SSH-2.0-OpenSSH\r\n\r\n", "Expected HTTP/"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\ncontent-length: 2\r\n\r\n",
         "Duplicate Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", "Invalid character in Content-Length"),
        (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n",
         "switched protocols"),
        (b"HTTP/1.1 200 OK\r\n" + b"X: " + b"a" * 70000, "oversized response head"),
    ],
)
def test_answers_llhttp_refuses_are_malformed(answer: bytes, says: str) -> None:
    with pytest.raises(Malformed, match=says):
        _read(answer)


def test_the_answer_loses_its_hop_by_hop_fields_and_the_apps_values_of_the_sidecars() -> None:
    reader = _read(b"HTTP/1.1 200 OK\r\nConnection: X-Private\r\nX-Private: p\r\n"
                   b"Keep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\n"
                   b"Curfew-Idle-Remaining: 1\r\nCurfew-Warning: app\r\nX-Kept: k\r\n\r\n")
    out = build_response_head(_head(reader), b"Curfew-Idle-Remaining: 900\r\n",
                              frozenset({b"curfew-idle-remaining"}),
                              b"Transfer-Encoding: chunked\r\n")
    assert out == (b"HTTP/1.1 200 OK\r\nCurfew-Warning: app\r\nX-Kept: k\r\n"
                   b"Curfew-Idle-Remaining: 900\r\nTransfer-Encoding: chunked\r\n\r\n")
    plain = _read(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n")
    assert build_response_head(_head(plain), b"Curfew-Idle-Remaining: 900\r\n",
                               frozenset({b"curfew-idle-remaining"}), b"") == (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n"
        b"Curfew-Idle-Remaining: 900\r\n\r\n")


def _upstream(head: RequestHead, *, plain: bool, peer: str | None = "10.0.0.9") -> bytes:
    return build_upstream_head(
        head.method, head.target, head.fields, block=head.block, plain=plain, peer=peer,
        secure=False, forwarded_host=head.first.get(b"host"), default_host=b"app:3000",
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
    head = _request(b"GET / HTTP/1.1\r\nHost: a\r\nCookie: a=1\r\nX-T: one\r\n"
                    b"cookie:  session=s \r\nX-T: two\r\n")
    assert head.first[b"cookie"] == b"a=1\nsession=s"
    assert head.first[b"x-t"] == b"one"
    assert head.repeated == {b"cookie", b"x-t"}
    assert head.values(b"x-t") == [b"one", b"two"]
    assert head.values(b"host") == [b"a"]
    assert head.values(b"absent") == []
