"""Session cookies spelled so that the app reads a session the sidecar would not judge: refused
with 400 ``ambiguous_session`` on every path (fast lane, hand-off to aiohttp, the sidecar's own
endpoints, authz mode for Envoy and nginx), never forwarded.

The upstream is the harness's echo app, an aiohttp app: it reads ``x=1, session=<id>`` and the
quoted ``"\\141bc123"`` as the session, which is how these spellings reached apps before.
"""

from __future__ import annotations

import json

import aiohttp
import pytest
from sidecar_harness import RunningSidecar, StartSidecar, sid_of
from test_sidecar_fastlane import connect, read_response
from test_sidecar_nginx import Front, front

from fixtures.sessions import plant

__all__ = ["front"]  # the fixture, used by name

MIN = 60_000
AMBIGUOUS = {"error": "ambiguous_session"}
EXPIRED = "raw-expired"
RESPELLED = [
    f"x=1, session={EXPIRED}",
    f"theme=dark,session={EXPIRED}",
    'session="\\141bc123"',  # abc123 once unquoted
    f"SESSION={EXPIRED}",
    f"session={EXPIRED}; session=raw-fresh",
    f"session ={EXPIRED}",
]
IDS = ["comma", "comma without space", "escaped quoted", "capitals", "two values",
       "space before equals"]


async def _expire(running: RunningSidecar, *raws: str) -> None:
    for raw in raws:
        await plant(running.store, sid_of(raw), created_ago_ms=20 * MIN, last_ago_ms=16 * MIN)


async def _send(running: RunningSidecar, head: str) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await connect(running)
    writer.write(head.encode("latin-1"))
    answer = await read_response(reader)
    writer.close()
    return answer


@pytest.mark.parametrize("cookie", RESPELLED, ids=IDS)
@pytest.mark.parametrize(
    "shape",
    ["GET /notes HTTP/1.1\r\n", "GET /notes HTTP/1.0\r\n",
     "POST /notes HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 0\r\n",
     "GET /.curfew/session HTTP/1.1\r\n", "POST /.curfew/keepalive HTTP/1.1\r\n"
     "Content-Length: 0\r\nCurfew-Keepalive: 1\r\nSec-Fetch-Site: same-origin\r\n"],
    ids=["fast lane", "handed off (HTTP/1.0)", "handed off (Expect)", "status endpoint",
         "keepalive endpoint"],
)
async def test_a_respelled_expired_session_is_refused_on_every_path(
    start_sidecar: StartSidecar, cookie: str, shape: str
) -> None:
    running = await start_sidecar()
    await _expire(running, EXPIRED, "abc123")
    status, fields, body = await _send(
        running, f"{shape}Host: shop\r\nCookie: {cookie}\r\nAccept: application/json\r\n\r\n")
    assert (status, json.loads(body)) == (400, AMBIGUOUS)
    assert fields["curfew-reason"] == "ambiguous_session"
    assert fields["cache-control"] == "no-store"
    # The plain spelling of the same session is expired: what the respelling would have passed.
    status, _, body = await _send(
        running, f"{shape}Host: shop\r\nCookie: session={EXPIRED}\r\n"
                 "Accept: application/json\r\n\r\n")
    assert (status, json.loads(body)["error"]) == (401, "session_expired")


async def test_odd_cookies_beside_a_plain_session_do_not_stop_it(
    start_sidecar: StartSidecar,
) -> None:
    running = await start_sidecar()
    await running.issue("raw-fresh")
    status, fields, body = await _send(
        running, 'GET /notes HTTP/1.1\r\nHost: shop\r\nCookie: prefs="a,b"; x=1, y=2; '
                 "session=raw-fresh; lang=en\r\n\r\n")
    assert status == 200
    assert fields["curfew-idle-remaining"] in ("899", "900")
    assert json.loads(body)["target"] == "/notes"
    assert await running.record("raw-fresh")


async def test_express_spellings_of_one_session_are_one_session(
    start_sidecar: StartSidecar,
) -> None:
    # express percent-decodes cookie values: s%3Aabc and s:abc are one session there, so here.
    running = await start_sidecar()
    await _expire(running, "s:raw.sig")
    for spelling in ("s%3Araw.sig", "s:raw.sig", "s%3araw.sig", "%73%3Araw.sig"):
        status, _, body = await _send(
            running, f"GET /notes HTTP/1.1\r\nHost: shop\r\nCookie: session={spelling}\r\n"
                     "Accept: application/json\r\n\r\n")
        assert (status, json.loads(body)["error"]) == (401, "session_expired"), spelling


@pytest.mark.parametrize("cookie", RESPELLED, ids=IDS)
async def test_authz_checks_refuse_a_respelled_session(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession, cookie: str
) -> None:
    running = await start_sidecar(mode="authz", authz_path_prefix="/authz")
    await _expire(running, EXPIRED, "abc123")
    # Envoy relays the sidecar's answer as it is.
    async with http.get(running.url + "/authz/notes",
                        headers={"Cookie": cookie, "Content-Length": "0"}) as r:
        assert (r.status, await r.json()) == (400, AMBIGUOUS)
    # nginx understands only 401: the reason tells its config to answer 400.
    async with http.get(running.url + "/authz", headers={
            "Cookie": cookie, "X-Original-URI": "/notes", "X-Original-Method": "GET"}) as r:
        assert r.status == 401
        assert r.headers["Curfew-Reason"] == "ambiguous_session"
        assert await r.json() == AMBIGUOUS


async def test_nginx_with_the_documented_config_answers_400_to_a_respelled_session(
    front: Front, http: aiohttp.ClientSession
) -> None:
    running, base = await front()
    await _expire(running, EXPIRED, "abc123")
    for cookie in RESPELLED:
        for path in ("/cart", "/.curfew/session"):
            async with http.get(base + path, headers={"Cookie": cookie}) as r:
                assert (r.status, json.loads(await r.text())) == (400, AMBIGUOUS), (cookie, path)
