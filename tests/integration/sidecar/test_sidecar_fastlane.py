"""The fast lane of proxy mode over raw sockets: pipelining, requests in pieces, bodies both
ways, bodiless answers, hand-offs to aiohttp on the same connection, smuggling shapes refused,
spoofed headers, the app failing or a client leaving mid-answer, and graceful shutdown.

Upstreams are the echo app of the harness or raw servers scripted byte by byte; Redis is real.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from sidecar_harness import KEY, MountedConfig, RunningSidecar, StartSidecar, policy_doc, wait_for

from fixtures.redis_servers import RedisServer, free_port

Response = tuple[int, dict[str, str], bytes]


async def connect(running: RunningSidecar) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    url = urlsplit(running.url)
    return await asyncio.open_connection(url.hostname, url.port)


async def read_response(reader: asyncio.StreamReader, *, head_only: bool = False) -> Response:
    """One answer: status, fields (lower-cased names, last value wins), body (de-chunked)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    fields = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            fields[name.lower()] = value.strip()
    if head_only or status in (204, 304):
        return status, fields, b""
    if fields.get("transfer-encoding") == "chunked":
        body = b""
        while size := int((await reader.readuntil(b"\r\n"))[:-2], 16):
            body += (await reader.readexactly(size + 2))[:-2]
        await reader.readuntil(b"\r\n")
        return status, fields, body
    return status, fields, await reader.readexactly(int(fields.get("content-length", "0")))


def echo(response: Response) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(response[2])
    return result


def sent_headers(response: Response) -> dict[str, str]:
    return {k.lower(): v for k, v in echo(response)["headers"]}


async def closed(reader: asyncio.StreamReader) -> bool:
    """Whether the peer closed the connection (nothing more arrives)."""
    return await asyncio.wait_for(reader.read(), 10) == b""


async def test_pipelined_requests_are_answered_in_order_on_one_connection(
    start_sidecar: StartSidecar,
) -> None:
    running = await start_sidecar()
    await running.issue("raw-pipe")
    reader, writer = await connect(running)
    writer.write(b"".join(
        f"GET /p{i} HTTP/1.1\r\nHost: shop\r\nCookie: session=raw-pipe\r\n\r\n".encode()
        for i in range(5)
    ) + b"POST /last HTTP/1.1\r\nHost: shop\r\nContent-Length: 4\r\n\r\nbody")
    answers = [await read_response(reader) for _ in range(6)]
    assert [echo(a)["target"] for a in answers] == [*(f"/p{i}" for i in range(5)), "/last"]
    # Each allowed, with the idle time left counted from the first (later ones, within the
    # touch granularity, are not written again).
    assert [a[1].get("curfew-idle-remaining") in ("899", "900") for a in answers[:5]] \
        == [True] * 5
    assert echo(answers[5])["body_sha256"] == hashlib.sha256(b"body").hexdigest()
    writer.close()


async def test_a_request_split_across_many_small_writes_is_served_whole(
    start_sidecar: StartSidecar,
) -> None:
    running = await start_sidecar()
    reader, writer = await connect(running)
    body = b'{"order": 7, "items": ["a", "b"]}'
    request = (b"POST /api/orders HTTP/1.1\r\nHost: shop\r\nCookie: session=raw-bytes\r\n"
               b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%b"
               % (len(body), body))
    for i in range(len(request)):
        writer.write(request[i:i + 1])
        await writer.drain()
    answer = await read_response(reader)
    assert answer[0] == 200
    assert echo(answer)["method"] == "POST"
    assert echo(answer)["body_sha256"] == hashlib.sha256(body).hexdigest()
    writer.close()


async def test_bodiless_answers_keep_the_connection_framed(
    start_sidecar: StartSidecar,
) -> None:
    running = await start_sidecar()
    reader, writer = await connect(running)
    for request, expect in [
        (b"HEAD /big HTTP/1.1\r\nHost: shop\r\n\r\n", 200),
        (b"GET /no-content HTTP/1.1\r\nHost: shop\r\n\r\n", 204),
        (b"GET /not-modified HTTP/1.1\r\nHost: shop\r\n\r\n", 304),
    ]:
        writer.write(request)
        status, fields, _ = await read_response(reader, head_only=True)
        assert status == expect
        if request.startswith(b"HEAD"):
            assert fields["content-length"] == str(1024 * 1024), "HEAD keeps the app's length"
    writer.write(b"GET /big HTTP/1.1\r\nHost: shop\r\n\r\n")
    status, fields, body = await read_response(reader)
    assert (status, body) == (200, bytes(range(256)) * 4096), "the connection is still framed"
    writer.close()


Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def raw_app(script: Script) -> str:
    server = await asyncio.start_server(script, "127.0.0.1", 0)
    return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def test_chunked_and_close_delimited_answers_are_streamed_chunked_as_they_come(
    start_sidecar: StartSidecar,
) -> None:
    release = asyncio.Event()

    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readuntil(b"\r\n\r\n")).startswith(b"GET /chunked"):
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"6;ext=1\r\nfirst-\r\n")
            await writer.drain()
            await release.wait()
            writer.write(b"4\r\nlast\r\n0\r\nX-Trailer: t\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
        writer.close()

    running = await start_sidecar(upstream=await raw_app(app))
    reader, writer = await connect(running)
    writer.write(b"GET /chunked HTTP/1.1\r\nHost: shop\r\n\r\n")
    status, fields, _ = await read_response(reader, head_only=True)
    assert (status, fields["transfer-encoding"]) == (200, "chunked")
    assert await reader.readuntil(b"first-\r\n") == b"6\r\nfirst-\r\n", "before the app ends"
    release.set()
    assert await reader.readuntil(b"0\r\n\r\n") == b"4\r\nlast\r\n0\r\n\r\n", "no trailers"
    writer.write(b"GET /until-close HTTP/1.1\r\nHost: shop\r\n\r\n")
    status, fields, body = await read_response(reader)
    assert (status, fields["transfer-encoding"], body) == (200, "chunked", b"until the end")
    assert "connection" not in fields, "the client's connection outlives the app's"
    writer.close()


async def test_a_large_answer_is_relayed_as_it_arrives_not_buffered_whole(
    start_sidecar: StartSidecar,
) -> None:
    release = asyncio.Event()
    size = 4 * 1024 * 1024

    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + b"a" * 1024)
        await writer.drain()
        await release.wait()  # the rest only once the client has seen the beginning
        writer.write(b"a" * (size - 1024))
        await writer.drain()

    running = await start_sidecar(upstream=await raw_app(app))
    reader, writer = await connect(running)
    writer.write(b"GET /download HTTP/1.1\r\nHost: shop\r\n\r\n")
    status, fields, _ = await read_response(reader, head_only=True)
    assert (status, fields["content-length"]) == (200, str(size))
    assert await reader.readexactly(1024) == b"a" * 1024
    release.set()
    assert await reader.readexactly(size - 1024) == b"a" * (size - 1024)
    writer.close()


async def test_requests_only_aiohttp_handles_are_handed_off_on_the_same_connection(
    start_sidecar: StartSidecar,
) -> None:
    running = await start_sidecar()
    await running.issue("raw-hand")
    reader, writer = await connect(running)
    writer.write(b"GET /first HTTP/1.1\r\nHost: shop\r\n\r\n")
    assert echo(await read_response(reader))["target"] == "/first"
    # A chunked upload: the fast lane hands the connection to aiohttp from this request on.
    writer.write(b"POST /upload HTTP/1.1\r\nHost: shop\r\nCookie: session=raw-hand\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    answer = await read_response(reader)
    assert echo(answer)["body_sha256"] == hashlib.sha256(b"hello world").hexdigest()
    assert answer[1]["curfew-idle-remaining"] in ("899", "900")
    writer.write(b"GET /after HTTP/1.1\r\nHost: shop\r\n\r\n")
    assert echo(await read_response(reader))["target"] == "/after"
    writer.close()

    reader, writer = await connect(running)
    writer.write(b"PUT /expect HTTP/1.1\r\nHost: shop\r\nExpect: 100-continue\r\n"
                 b"Content-Length: 3\r\n\r\n")
    assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10) == (
        b"HTTP/1.1 100 Continue\r\n\r\n")
    writer.write(b"abc")
    assert echo(await read_response(reader))["body_length"] == 3
    writer.close()

    reader, writer = await connect(running)
    writer.write(b"GET /.curfew/healthz HTTP/1.1\r\nHost: shop\r\n\r\n")
    status, _, body = await read_response(reader)
    assert (status, body) == (200, b"ok\n"), "the sidecar's own endpoints are aiohttp's"
    writer.write(b"GET /old HTTP/1.0\r\nHost: shop\r\n\r\n")
    assert echo(await read_response(reader))["target"] == "/old"
    writer.close()


@pytest.mark.parametrize(
    ("head", "says"),
    [
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"0\r\n\r\n", b"Transfer-Encoding can't be present with Content-Length"),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
         b"Duplicate Content-Length"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n  folded\r\n\r\n",
         b"Unexpected whitespace after header value"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX(A): 1\r\n\r\n", b"Invalid header token"),
        (b"GET / HTTP/1.1\nHost: a\n\n", b"Expected CRLF after version"),
    ],
    ids=["CL and TE", "two lengths", "obs-fold", "bad name", "bare LF"],
)
async def test_smuggling_shapes_are_refused_and_never_reach_the_app(
    start_sidecar: StartSidecar, head: bytes, says: bytes
) -> None:
    seen: list[bytes] = []

    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.read(65536))
        writer.close()

    running = await start_sidecar(upstream=await raw_app(app))
    reader, writer = await connect(running)
    writer.write(head)
    status, _, body = await read_response(reader)
    assert status == 400
    assert says in body
    assert await closed(reader), "a refused connection is closed: nothing after it is read"
    assert seen == []


async def test_spoofed_curfew_headers_are_stripped_and_forwarded_for_is_extended(
    start_sidecar: StartSidecar,
) -> None:
    running = await start_sidecar()
    reader, writer = await connect(running)
    writer.write(b"GET /x HTTP/1.1\r\nHost: shop\r\ncurfew-idle-remaining: 99999\r\n"
                 b"CURFEW-AUDIT-EXPIRED: idle\r\nCurfew-Warning: idle\r\n"
                 b"X-Forwarded-For: 203.0.113.7\r\nKeep-Alive: timeout=5\r\n\r\n")
    sent = sent_headers(await read_response(reader))
    assert not [h for h in sent if h.startswith("curfew-")]
    assert "keep-alive" not in sent
    assert sent["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
    assert sent["x-forwarded-proto"] == "http"
    assert sent["x-forwarded-host"] == "shop"
    writer.close()


@pytest.mark.parametrize("version", ["1.1", "1.0"], ids=["fast lane", "handed off"])
async def test_two_different_session_cookies_are_refused_not_judged_one_by_one(
    start_sidecar: StartSidecar, version: str,
) -> None:
    """The app might read the second one (the last, or any that works): neither is trusted."""
    running = await start_sidecar()
    await running.issue("raw-one")
    reader, writer = await connect(running)
    # The same session twice in one field is one session.
    writer.write(f"GET /same HTTP/{version}\r\nHost: shop\r\nCookie: session=raw-one; "
                 "theme=dark; session=raw-one\r\nConnection: keep-alive\r\n\r\n".encode())
    answer = await read_response(reader)
    assert answer[0] == 200
    assert answer[1]["curfew-idle-remaining"] in ("899", "900")
    assert echo(answer)["target"] == "/same"
    # Split over two fields even the same session is refused: servers join fields with "; "
    # or "," (then express reads "raw-one,theme=dark") or read the first only.
    for cookies in (b"Cookie: session=raw-one\r\nCookie: session=raw-other\r\n",
                    b"Cookie: session=raw-one; session=raw-other\r\n",
                    b"Cookie: session=raw-one\r\nCookie: theme=dark; session=raw-one\r\n"):
        writer.write(f"GET /two HTTP/{version}\r\nHost: shop\r\n".encode() + cookies
                     + b"Connection: keep-alive\r\n\r\n")
        status, fields, body = await read_response(reader)
        assert (status, json.loads(body)) == (400, {"error": "ambiguous_session"})
        assert fields["cache-control"] == "no-store"
    writer.close()


async def test_two_different_session_headers_are_refused(start_sidecar: StartSidecar) -> None:
    running = await start_sidecar(
        policy_doc(session={"header": "Authorization", "headerPrefix": "Bearer "}))
    reader, writer = await connect(running)
    writer.write(b"GET /two HTTP/1.1\r\nHost: shop\r\nAuthorization: Bearer raw-one\r\n"
                 b"Authorization: Bearer raw-other\r\n\r\n")
    status, _, body = await read_response(reader)
    assert (status, json.loads(body)) == (400, {"error": "ambiguous_session"})
    writer.close()


async def test_an_app_that_is_down_or_silent_is_502_or_504_on_a_kept_connection(
    start_sidecar: StartSidecar,
) -> None:
    down = await start_sidecar(upstream="http://127.0.0.1:9")
    reader, writer = await connect(down)
    for _ in range(2):
        writer.write(b"GET /x HTTP/1.1\r\nHost: shop\r\nCookie: session=raw-down\r\n\r\n")
        status, _, body = await read_response(reader)
        assert (status, json.loads(body)) == (502, {"error": "upstream_unavailable"})
    writer.close()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(5)

    slow = await start_sidecar(upstream=await raw_app(silent), upstream_read_timeout_seconds=0.2)
    reader, writer = await connect(slow)
    writer.write(b"GET /x HTTP/1.1\r\nHost: shop\r\n\r\n")
    status, _, body = await read_response(reader)
    assert (status, json.loads(body)) == (504, {"error": "upstream_timeout"})
    writer.close()


async def test_a_client_that_leaves_mid_answer_releases_the_apps_connection(
    start_sidecar: StartSidecar,
) -> None:
    app_saw_close = asyncio.Event()

    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n" + b"a" * 100000)
        await writer.drain()
        with contextlib.suppress(ConnectionError):  # closed or reset: gone either way
            await reader.read()
        app_saw_close.set()

    running = await start_sidecar(upstream=await raw_app(app))
    reader, writer = await connect(running)
    writer.write(b"GET /big HTTP/1.1\r\nHost: shop\r\n\r\n")
    await read_response(reader, head_only=True)
    writer.transport.abort()
    await asyncio.wait_for(app_saw_close.wait(), 10)


async def test_shutdown_finishes_the_request_in_flight_and_closes_idle_connections(
    start_sidecar: StartSidecar,
) -> None:
    running = await start_sidecar()
    idle_reader, idle_writer = await connect(running)
    idle_writer.write(b"GET /x HTTP/1.1\r\nHost: shop\r\n\r\n")
    await read_response(idle_reader)
    reader, writer = await connect(running)
    writer.write(b"GET /slow?seconds=0.5 HTTP/1.1\r\nHost: shop\r\n\r\n")
    lane = running.sidecar.fast_lane
    assert lane is not None

    async def with_the_app() -> bool:
        return any(client.exchange is not None for client in lane.connections)

    await wait_for(with_the_app)
    stopping = asyncio.create_task(running.sidecar.stop())
    assert await closed(idle_reader), "an idle keep-alive connection is closed at once"
    status, fields, body = await read_response(reader)
    assert (status, body, fields["connection"]) == (200, b"slow done", "close")
    assert await closed(reader)
    await stopping
    with pytest.raises(OSError):
        await connect(running)


async def test_hand_offs_work_on_uvloop_in_a_real_sidecar_process(
    tmp_path: Path, redis_server: RedisServer, upstream: str
) -> None:
    """The tests above run the sidecar on the test's event loop; the process runs on uvloop,
    whose transports the hand-off (``set_protocol``) must work with too."""
    redis_server.client().flushall()
    mount = MountedConfig(tmp_path / "config")
    mount.root.mkdir()
    mount.write(policy_doc())
    port, ops = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CURFEW_SESSION_KEY")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "curfew", "sidecar", "--config", str(mount.path),
        "--listen", f"127.0.0.1:{port}", "--ops-listen", f"127.0.0.1:{ops}",
        "--upstream", upstream,
        env={**env, "REDIS_URL": redis_server.url, "CURFEW_SESSION_KEY": KEY.decode()},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
            async def ready() -> bool:
                assert proc.returncode is None, "the sidecar exited"
                try:
                    async with http.get(f"http://127.0.0.1:{ops}/readyz") as r:
                        return r.status == 200
                except aiohttp.ClientConnectionError:
                    return False

            await wait_for(ready, timeout=20)
            async with http.ws_connect(base + "/ws", headers={"Cookie": "session=raw-uv"}) as ws:
                await ws.send_str("over uvloop")
                assert (await ws.receive()).data == "echo:over uvloop"
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /fast HTTP/1.1\r\nHost: shop\r\n\r\n"
                         b"POST /chunked HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n"
                         b"\r\n3\r\nabc\r\n0\r\n\r\n")
            assert echo(await read_response(reader))["target"] == "/fast"
            assert echo(await read_response(reader))["body_length"] == 3
            writer.close()
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 10) == 0
