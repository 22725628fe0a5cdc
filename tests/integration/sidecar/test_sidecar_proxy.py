"""Proxy mode relays HTTP faithfully: sessions pass with their remaining time, everything else
untouched; keep-alive, streamed bodies, hop-by-hop headers, X-Forwarded-*, websockets."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from sidecar_harness import GZIP_BODY, StartSidecar, audit_events, sid_of
from yarl import URL

from curfew.sessions.lifetime import TOUCH_GRANULARITY_MS


def _headers(echo: dict[str, Any]) -> dict[str, str]:
    return {k.lower(): v for k, v in echo["headers"]}


async def test_a_request_without_a_session_passes_untouched(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    running = await start_sidecar()
    target = URL(running.url + "/login?next=%2Fcart", encoded=True)
    async with http.get(target, headers={"Cookie": "theme=dark"}) as r:
        assert r.status == 200
        assert not [h for h in r.headers if h.lower().startswith("curfew-")]
        echo = await r.json()
    assert echo["target"] == "/login?next=%2Fcart"
    assert _headers(echo)["cookie"] == "theme=dark"
    assert not [h for h in _headers(echo) if h.startswith("curfew-")]
    assert await running.store.client.dbsize() == 0
    assert audit_events(caplog) == []


async def test_a_session_the_app_issued_is_forwarded_with_its_remaining_time(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    running = await start_sidecar()
    await running.issue("raw-s1")
    async with http.get(running.url + "/cart", headers={"Cookie": "session=raw-s1"}) as r:
        assert r.status == 200
        assert r.headers["Curfew-Idle-Remaining"] in ("899", "900")
        assert r.headers["Curfew-Absolute-Remaining"] in ("28799", "28800")
        assert "Curfew-Warning" not in r.headers
        echo = await r.json()
    sent = _headers(echo)
    assert sent["curfew-idle-remaining"] == r.headers["Curfew-Idle-Remaining"]
    assert sent["curfew-absolute-remaining"] == r.headers["Curfew-Absolute-Remaining"]
    assert (await running.record("raw-s1"))["w"] == "Deployment/shop/web"
    [seen] = audit_events(caplog, "session_first_seen")
    assert seen["session"] == sid_of("raw-s1")
    assert seen["policy"] == "shop/storefront"


async def test_curfew_headers_sent_by_a_client_never_reach_the_app(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar()
    forged = {"Curfew-Idle-Remaining": "99999", "Curfew-Audit-Expired": "idle",
              "Curfew-Warning": "idle"}
    async with http.get(running.url + "/x", headers=forged) as r:
        sent = _headers(await r.json())
    assert not [h for h in sent if h.startswith("curfew-")]


async def test_end_to_end_headers_pass_and_hop_by_hop_headers_do_not(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar()
    headers = {
        "X-Custom": "kept", "Authorization": "Basic dXNlcjpwdw==",
        "Connection": "keep-alive, X-Drop-Me", "X-Drop-Me": "named by Connection",
        "Keep-Alive": "timeout=5", "TE": "trailers", "Proxy-Authorization": "secret",
        "X-Forwarded-For": "203.0.113.7",
    }
    async with http.post(running.url + "/api/orders?id=7", headers=headers, data=b"{}") as r:
        assert r.status == 200
        echo = await r.json()
    sent = _headers(echo)
    assert echo["method"] == "POST"
    assert echo["target"] == "/api/orders?id=7"
    assert sent["x-custom"] == "kept"
    assert sent["authorization"] == "Basic dXNlcjpwdw=="
    for hop in ("x-drop-me", "keep-alive", "te", "proxy-authorization"):
        assert hop not in sent
    assert sent["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
    assert sent["x-forwarded-proto"] == "http"
    assert sent["x-forwarded-host"] == running.url.removeprefix("http://")
    assert sent["host"] == running.url.removeprefix("http://")


async def test_connections_to_the_app_are_kept_alive_and_reused(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar()
    ports = set()
    for _ in range(5):
        async with http.get(running.url + "/x") as r:
            ports.add((await r.json())["peer_port"])
    assert len(ports) == 1


async def test_request_and_response_bodies_are_streamed_intact(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar()
    payload = bytes(range(256)) * 12288  # 3 MiB, sent chunked: no Content-Length

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(payload), 65536):
            yield payload[i:i + 65536]

    async with http.put(running.url + "/upload", data=chunks(),
                        headers={"Cookie": "session=raw-up"}) as r:
        echo = await r.json()
    assert echo["body_length"] == len(payload)
    assert echo["body_sha256"] == hashlib.sha256(payload).hexdigest()

    async with http.get(running.url + "/big") as r:
        assert r.headers["Content-Length"] == str(1024 * 1024)
        assert await r.read() == bytes(range(256)) * 4096

    started = time.monotonic()
    async with http.get(running.url + "/stream") as r:
        first = await r.content.readline()
        first_at = time.monotonic() - started
        rest = await r.read()
    assert first == b"chunk-0\n"
    assert rest == b"chunk-1\nchunk-2\n"
    assert first_at < 0.3, "the first chunk must arrive before the app has finished"


async def test_redirects_from_the_app_are_relayed_not_followed(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar()
    async with http.get(running.url + "/redirect", allow_redirects=False) as r:
        assert r.status == 302
        assert r.headers["Location"] == "/somewhere-else"


async def test_bodiless_statuses_repeated_cookies_and_compressed_bodies_pass_as_sent(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar()
    for _ in range(2):  # twice: the pooled connection must survive a bodiless response
        async with http.get(running.url + "/no-content") as r:
            assert r.status == 204
            assert await r.read() == b""
        async with http.get(running.url + "/not-modified") as r:
            assert r.status == 304
            assert r.headers["ETag"] == '"v1"'
    await running.issue("raw-c")
    async with http.get(running.url + "/cookies", headers={"Cookie": "session=raw-c"}) as r:
        assert r.headers.getall("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/"]
        assert r.headers["Curfew-Idle-Remaining"] in ("899", "900")
    async with http.get(running.url + "/gzip", auto_decompress=False) as r:
        assert r.headers["Content-Encoding"] == "gzip"
        assert await r.read() == GZIP_BODY


async def test_an_unreachable_app_is_a_bad_gateway(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar(upstream="http://127.0.0.1:9")
    async with http.get(running.url + "/x") as r:
        assert r.status == 502
        assert (await r.json())["error"] == "upstream_unavailable"


async def test_websockets_are_relayed_and_their_messages_count_as_activity(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar(websocket_activity_interval_seconds=0.1)
    await running.issue("raw-ws")
    async with http.ws_connect(running.url + "/ws", protocols=("chat.v1",),
                               headers={"Cookie": "session=raw-ws"}) as ws:
        assert ws.protocol == "chat.v1"
        first_touch = (await running.record("raw-ws"))["l"]
        # Activity closer than the touch granularity to the last one is not written again.
        await asyncio.sleep(TOUCH_GRANULARITY_MS / 1000 + 0.05)
        await ws.send_str("hello")
        assert (await ws.receive()).data == "echo:hello"
        await ws.send_bytes(b"abc")
        assert (await ws.receive()).data == b"cba"

        async def touched() -> bool:
            return (await running.record("raw-ws"))["l"] != first_touch

        deadline = time.monotonic() + 3
        while not await touched():
            assert time.monotonic() < deadline, "websocket traffic never counted as activity"
            await asyncio.sleep(0.05)


async def test_a_websocket_is_closed_when_its_session_expires(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar(websocket_activity_interval_seconds=0.1)
    await running.issue("raw-ws2")
    async with http.ws_connect(running.url + "/ws", headers={"Cookie": "session=raw-ws2"}) as ws:
        await ws.send_str("hi")
        assert (await ws.receive()).data == "echo:hi"
        # End the session from elsewhere (as another replica or the purge job would).
        await running.store.expire(sid_of("raw-ws2"))
        msg = await asyncio.wait_for(ws.receive(), timeout=3)
        assert msg.type is aiohttp.WSMsgType.CLOSE
        assert ws.close_code == 4401
