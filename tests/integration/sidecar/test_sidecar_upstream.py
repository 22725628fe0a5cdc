"""The proxy's lean HTTP/1.1 client (``curfew.sidecar.upstream``) against real servers on
loopback: the aiohttp test app, and raw socket servers that answer byte for byte as scripted
(chunked framing with extensions and trailers, bodies delimited by close, idle connections the
app closes, malformed answers, silence)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from sidecar_harness import StartSidecar, sid_of

from curfew.sidecar.upstream import UpstreamError, UpstreamPool, UpstreamTimeout

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


async def raw_server(script: Script) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(script, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def pool(port: int, *, read_timeout: float = 5.0, idle_seconds: float = 30.0) -> UpstreamPool:
    return UpstreamPool("127.0.0.1", port, connect_timeout=1.0, read_timeout=read_timeout,
                        idle_seconds=idle_seconds)


def head(path: str = "/", method: str = "GET", extra: str = "") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: app\r\n{extra}\r\n".encode()


async def test_chunked_bodies_with_extensions_and_trailers_arrive_whole_on_one_connection(
) -> None:
    body = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-App: 1\r\n\r\n"
            b"5;ext=1\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\nX-Trailer: t\r\n\r\n")

    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                await _read_request(reader)
            except asyncio.IncompleteReadError:
                break
            for i in range(0, len(body), 7):  # in pieces: framing must not rely on packets
                writer.write(body[i:i + 7])
                await writer.drain()
        writer.close()

    server, port = await raw_server(app)
    client = pool(port)
    try:
        for _ in range(3):
            response = await client.request("GET", head())
            assert response.status == 200
            assert ("X-App", "1") in response.headers
            assert response.content_length is None
            assert await response.read() == b"hello world!"
        assert client.opened == 1, "the connection is kept alive and reused"
    finally:
        await client.aclose()
        server.close()


async def test_a_large_body_streams_through_in_pieces_intact(upstream: str) -> None:
    port = int(upstream.rsplit(":", 1)[1])
    client = pool(port)
    payload = bytes(range(256)) * 32768  # 8 MiB up, chunk-encoded by the client

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(payload), 100_000):
            yield payload[i:i + 100_000]

    try:
        response = await client.request("PUT", head("/upload", "PUT",
                                                    "Transfer-Encoding: chunked\r\n"),
                                         chunks(), chunked=True)
        echo = json.loads(await response.read())
        assert echo["body_length"] == len(payload)
        assert echo["body_sha256"] == hashlib.sha256(payload).hexdigest()

        response = await client.request("GET", head("/big"))
        assert response.content_length == 1024 * 1024
        pieces = [piece async for piece in response.iter_chunks()]
        assert b"".join(pieces) == bytes(range(256)) * 4096
        assert client.opened == 1
    finally:
        await client.aclose()


async def test_a_body_without_length_runs_until_the_app_closes_and_is_not_reused() -> None:
    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it")
        await writer.drain()
        writer.close()

    server, port = await raw_server(app)
    client = pool(port)
    try:
        for _ in range(2):
            response = await client.request("GET", head())
            assert await response.read() == b"all of it"
        assert client.opened == 2
    finally:
        await client.aclose()
        server.close()


async def test_an_idle_connection_the_app_closed_is_replaced_transparently() -> None:
    served = 0

    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Answers one request as keep-alive, then closes: an app whose idle timeout is short.
        nonlocal served
        await _read_request(reader)
        served += 1
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    server, port = await raw_server(app)
    client = pool(port)
    try:
        for _ in range(3):
            response = await client.request("GET", head())
            assert await response.read() == b"ok"
            await asyncio.sleep(0.05)  # the close reaches the pooled connection
        assert served == 3
    finally:
        await client.aclose()
        server.close()


async def test_connections_idle_longer_than_the_keepalive_are_closed_not_reused(
    upstream: str,
) -> None:
    client = pool(int(upstream.rsplit(":", 1)[1]), idle_seconds=0.2)
    try:
        ports = []
        for pause in (0, 0, 0.4, 0):
            await asyncio.sleep(pause)
            response = await client.request("GET", head("/echo"))
            ports.append(json.loads(await response.read())["peer_port"])
        assert ports[0] == ports[1], "reused while fresh"
        assert ports[2] != ports[1], "not reused after the idle limit"
        assert ports[3] == ports[2]
        assert client.opened == 2
    finally:
        await client.aclose()


async def test_connection_close_informational_answers_and_head_are_framed_right() -> None:
    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await _read_request(reader)
        if request.startswith(b"HEAD"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        else:
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n"
                         b"\r\nHTTP/1.1 201 Created\r\nConnection: close, X-Private\r\n"
                         b"X-Private: p\r\nContent-Length: 3\r\n\r\nnew")
        await writer.drain()
        await reader.read()
        writer.close()

    server, port = await raw_server(app)
    client = pool(port)
    try:
        response = await client.request("POST", head(method="POST"))
        assert (response.status, response.reason) == (201, "Created")
        assert response.connection_tokens == {"close", "x-private"}
        assert await response.read() == b"new"
        response = await client.request("HEAD", head(method="HEAD"))
        assert response.content_length == 1000
        assert await response.read() == b""
        assert client.opened == 2, "Connection: close is honoured"
    finally:
        await client.aclose()
        server.close()


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (b"SSH-2.0-OpenSSH\r\n\r\n", "Expected HTTP/"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "closed the connection mid-body"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
         "Invalid character in chunk size"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\n folded: no\r\n\r\n", "Unexpected space after start line"),
        (b"", "closed the connection without answering"),
    ],
)
async def test_broken_answers_are_upstream_errors(answer: bytes, says: str) -> None:
    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(answer)
        await writer.drain()
        writer.close()

    server, port = await raw_server(app)
    client = pool(port)
    try:
        async def exchange() -> bytes:
            response = await client.request("GET", head())
            return await response.read()

        with pytest.raises(UpstreamError, match=says):
            await exchange()
    finally:
        await client.aclose()
        server.close()


async def test_an_app_that_stops_sending_times_out_and_a_closed_port_is_refused() -> None:
    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        await asyncio.sleep(5)

    server, port = await raw_server(app)
    client = pool(port, read_timeout=0.2)
    try:
        with pytest.raises(UpstreamTimeout):
            await client.request("GET", head())
    finally:
        await client.aclose()
        server.close()
    with pytest.raises(UpstreamError, match="cannot connect"):
        await pool(9).request("GET", head())


async def _through_sidecar(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession, answer: bytes, **settings: Any
) -> aiohttp.ClientResponse:
    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(answer)
        await writer.drain()
        if answer:
            writer.close()
        else:
            await asyncio.sleep(5)

    _, port = await raw_server(app)
    running = await start_sidecar(upstream=f"http://127.0.0.1:{port}", **settings)
    return await http.get(running.url + "/x", headers={"Cookie": "session=raw-gw"})


async def test_through_the_sidecar_a_garbled_answer_is_502_and_silence_is_504(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    r = await _through_sidecar(start_sidecar, http, b"garbage\r\n\r\n")
    assert r.status == 502
    assert (await r.json())["error"] == "upstream_unavailable"
    r = await _through_sidecar(start_sidecar, http, b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n")
    assert r.status == 502
    r = await _through_sidecar(start_sidecar, http, b"", upstream_read_timeout_seconds=0.2)
    assert r.status == 504
    assert (await r.json())["error"] == "upstream_timeout"


async def test_through_the_sidecar_the_app_sees_one_clean_request_head(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    seen: list[bytes] = []

    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await _read_request(reader))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    _, port = await raw_server(app)
    running = await start_sidecar(upstream=f"http://127.0.0.1:{port}")
    # This app answers one request: the session is registered as if it had issued it.
    await running.store.register(sid_of("raw-head"), running.sidecar.watcher.policy.limits,
                                 policy="shop/storefront", workload="Deployment/shop/web")
    async with http.get(running.url + "/p?q=1", headers={
        "Cookie": "session=raw-head", "X-Forwarded-For": "10.0.0.1", "Connection": "X-Hop",
        "X-Hop": "drop me", "Curfew-Idle-Remaining": "99999", "X-Mixed-Case": "kept",
    }) as r:
        assert r.status == 200
    lines = seen[0].decode().split("\r\n")
    assert lines[0] == "GET /p?q=1 HTTP/1.1"
    names = [line.split(":", 1)[0].lower() for line in lines[1:] if line]
    assert "x-hop" not in names
    assert "connection" not in names
    assert names.count("curfew-idle-remaining") == 1
    assert "Curfew-Idle-Remaining: 900" in lines or "Curfew-Idle-Remaining: 899" in lines
    assert "X-Forwarded-For: 10.0.0.1, 127.0.0.1" in lines
    assert "X-Forwarded-Proto: http" in lines
    assert "X-Mixed-Case: kept" in lines
    assert names.count("host") == 1
