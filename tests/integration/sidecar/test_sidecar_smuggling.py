"""Regressions of request smuggling through the sidecar (issue 13, item 1), over raw sockets.

A ``Connection`` header naming ``Content-Length`` (alone, beside ``keep-alive``, in a second
``Connection`` field, any case) made the hop-by-hop step drop the length while the body was
still forwarded: the app read the body as a second request the sidecar never judged, on the
fast lane and on the aiohttp hand-off (``Expect: 100-continue``). With upstream connections
reused with unread bytes, and bytes past an answer's framing relayed, a victim could be given
the smuggled answer. Each shape is refused with 400 and the connection closed on every path
(fast lane, hand-off, authz mode), and no byte past an answer's framing reaches a client.
"""

from __future__ import annotations

import asyncio

import pytest
from sidecar_harness import StartSidecar, sid_of
from test_sidecar_fastlane import closed, connect, echo, raw_app, read_response

from fixtures.sessions import plant

MIN = 60_000
SMUGGLED = (b"GET /admin HTTP/1.1\r\nHost: shop\r\nCookie: session=raw-expired\r\n"
            b"Content-Length: 0\r\n\r\n")


def smuggling(connection: bytes, *, extra: bytes = b"", target: bytes = b"/public") -> bytes:
    """A POST whose body is a whole second request, with ``connection`` field lines."""
    return (b"POST %b HTTP/1.1\r\nHost: shop\r\n%b%bContent-Length: %d\r\n\r\n%b"
            % (target, connection, extra, len(SMUGGLED), SMUGGLED))


CONNECTIONS = [
    b"Connection: content-length\r\n",
    b"Connection: keep-alive, content-length\r\n",
    b"Connection: keep-alive\r\nconnection: Content-Length\r\n",
    b"CONNECTION: x-private ,CONTENT-LENGTH , close\r\n",
    b"Connection: transfer-encoding\r\n",
    b"Connection: host\r\n",
    b"Connection: keep-alive, Curfew-Idle-Remaining\r\n",
]
IDS = ["content-length", "beside keep-alive", "in a second Connection field", "any case",
       "transfer-encoding", "host", "a Curfew field"]


class Recorder:
    """A raw app that records every byte it receives and answers each read with 200."""

    def __init__(self) -> None:
        self.received = b""

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            self.received += data
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        writer.close()


async def _refused(start_sidecar: StartSidecar, request: bytes, **settings: str) -> Recorder:
    app = Recorder()
    running = await start_sidecar(upstream=await raw_app(app), **settings)
    reader, writer = await connect(running)
    writer.write(request)
    status, fields, body = await read_response(reader)
    assert status == 400
    assert b"which is not hop-by-hop" in body
    assert fields["connection"] == "close"
    assert await closed(reader), "nothing after a refused request is read"
    writer.close()
    return app


@pytest.mark.parametrize("connection", CONNECTIONS, ids=IDS)
async def test_a_connection_header_naming_the_length_is_refused_on_the_fast_lane(
    start_sidecar: StartSidecar, connection: bytes
) -> None:
    app = await _refused(start_sidecar, smuggling(connection))
    assert app.received == b"", "neither the POST nor the request in its body reach the app"


@pytest.mark.parametrize("connection", CONNECTIONS, ids=IDS)
async def test_a_connection_header_naming_the_length_is_refused_with_expect_100_continue(
    start_sidecar: StartSidecar, connection: bytes
) -> None:
    """``Expect`` is a shape the fast lane hands off: it is refused before the hand-off."""
    app = await _refused(start_sidecar,
                         smuggling(connection, extra=b"Expect: 100-continue\r\n"))
    assert app.received == b""


@pytest.mark.parametrize("connection", CONNECTIONS, ids=IDS)
async def test_a_connection_header_naming_the_length_is_refused_after_a_hand_off(
    start_sidecar: StartSidecar, connection: bytes
) -> None:
    """Once a connection is aiohttp's, its later requests are refused by the same checks."""
    app = Recorder()
    running = await start_sidecar(upstream=await raw_app(app))
    reader, writer = await connect(running)
    # HTTP/1.0 keep-alive: handed off; aiohttp reads the rest of the connection.
    writer.write(b"GET /first HTTP/1.0\r\nHost: shop\r\nConnection: keep-alive\r\n\r\n")
    status, _, body = await read_response(reader)
    assert (status, body) == (200, b"ok")
    writer.write(smuggling(connection, extra=b"Expect: 100-continue\r\n"))
    status, fields, body = await read_response(reader)
    assert status == 400
    assert b"which is not hop-by-hop" in body
    assert fields["connection"] == "close"
    assert await closed(reader)
    assert b"/admin" not in app.received
    assert b"/public" not in app.received
    writer.close()


@pytest.mark.parametrize("connection", CONNECTIONS, ids=IDS)
async def test_a_connection_header_naming_the_length_is_refused_in_authz_mode(
    start_sidecar: StartSidecar, connection: bytes
) -> None:
    running = await start_sidecar(mode="authz", authz_path_prefix="/authz")
    reader, writer = await connect(running)
    writer.write(smuggling(connection, target=b"/authz/public"))
    status, fields, body = await read_response(reader)
    assert status == 400
    assert b"which is not hop-by-hop" in body
    assert fields["connection"] == "close"
    assert await closed(reader)
    writer.close()


async def test_the_smuggled_request_of_the_report_never_reaches_the_app_unjudged(
    start_sidecar: StartSidecar,
) -> None:
    """The reproduction as reported: an expired session inside a POST to a public path."""
    app = Recorder()
    running = await start_sidecar(upstream=await raw_app(app))
    await plant(running.store, sid_of("raw-expired"), created_ago_ms=20 * MIN,
                last_ago_ms=16 * MIN)
    reader, writer = await connect(running)
    writer.write(smuggling(b"Connection: keep-alive, content-length\r\n"))
    status, _, _ = await read_response(reader)
    assert status == 400
    assert await closed(reader)
    # The same request sent honestly is judged: the expired session never reaches the app.
    reader, writer = await connect(running)
    writer.write(SMUGGLED)
    status, fields, _ = await read_response(reader)
    assert status == 302
    assert fields["location"].startswith("https://login.example.com/sso"), "sent to log in"
    assert app.received == b""
    writer.close()


async def _leftover_app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers each request, then appends a whole second answer past the first's framing."""
    while await reader.readuntil(b"\r\n\r\n"):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nhonest"
                     b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled")


@pytest.mark.parametrize(
    "version", ["1.1", "1.0"], ids=["fast lane", "handed off to aiohttp"])
async def test_bytes_past_an_answers_framing_never_reach_a_client(
    start_sidecar: StartSidecar, version: str
) -> None:
    running = await start_sidecar(upstream=await raw_app(_leftover_app))
    for _ in range(2):
        reader, writer = await connect(running)
        for _ in range(3):
            writer.write(f"GET /x HTTP/{version}\r\nHost: shop\r\nConnection: keep-alive\r\n\r\n"
                         .encode())
            status, _, body = await read_response(reader)
            assert (status, body) == (200, b"honest"), "never the answer past the framing"
        writer.close()
    assert running.sidecar.proxy is not None
    assert running.sidecar.proxy.pool.opened == 6, "a connection with bytes left is not reused"


async def test_a_victim_never_gets_the_answer_to_a_slow_request_of_another_client(
    start_sidecar: StartSidecar,
) -> None:
    """A slow first answer followed by unsolicited bytes: the next client gets its own."""
    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while head := await reader.readuntil(b"\r\n\r\n"):
            target = head.split(b" ")[1]
            await asyncio.sleep(0.2)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(target), target))
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale")

    running = await start_sidecar(upstream=await raw_app(app))
    for who in (b"attacker", b"victim", b"next"):
        reader, writer = await connect(running)
        writer.write(b"GET /%b HTTP/1.1\r\nHost: shop\r\n\r\n" % who)
        status, _, body = await read_response(reader)
        assert (status, body) == (200, b"/" + who)
        writer.close()
        await asyncio.sleep(0.1)  # the unsolicited bytes arrive on the idle connection


async def test_the_fast_lane_still_serves_ordinary_hop_by_hop_fields(
    start_sidecar: StartSidecar,
) -> None:
    running = await start_sidecar()
    reader, writer = await connect(running)
    writer.write(b"POST /ok HTTP/1.1\r\nHost: shop\r\nConnection: keep-alive, X-Hop\r\n"
                 b"X-Hop: secret\r\nContent-Length: 3\r\n\r\nabc")
    answer = await read_response(reader)
    assert answer[0] == 200
    sent = {k.lower() for k, _ in echo(answer)["headers"]}
    assert "x-hop" not in sent
    assert "connection" not in sent
    assert echo(answer)["body_length"] == 3
    writer.close()
