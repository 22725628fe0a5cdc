"""The nginx configuration of docs/sidecar.md, run by a real nginx in front of a real app with
the sidecar in authz mode: what the docs print is what works.

The ``nginx`` block is read from the docs; only its addresses are replaced by the test's ports.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from sidecar_harness import RunningSidecar, StartSidecar, policy_doc, sid_of
from yarl import URL

from fixtures.redis_servers import RedisServer, free_port
from fixtures.sessions import plant

DOCS = Path(__file__).resolve().parents[3] / "docs" / "sidecar.md"
MIN = 60_000


def nginx_server_block(listen: int, sidecar: int, app: int) -> str:
    [block] = re.findall(r"```nginx\n(.*?)```", DOCS.read_text(), re.S)
    return (block.replace("listen 80;", f"listen 127.0.0.1:{listen};")
                 .replace("127.0.0.1:8080", f"127.0.0.1:{sidecar}")
                 .replace("127.0.0.1:3000", f"127.0.0.1:{app}"))


class Nginx:
    """A real nginx in the foreground, serving one ``server`` block, from a directory of its own."""

    def __init__(self, tmp: Path, server: str) -> None:
        self.tmp = tmp
        temp_paths = "\n".join(f"  {kind}_temp_path {tmp}/{kind};"
                               for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        conf = tmp / "nginx.conf"
        conf.write_text(f"""
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 128; }}
http {{
  access_log off;
{temp_paths}
{server}
}}
""")
        self.proc = subprocess.Popen(["nginx", "-p", str(tmp), "-c", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> str:
        """Stop nginx; its error log."""
        self.proc.terminate()
        self.proc.wait(10)
        log = self.tmp / "error.log"
        return log.read_text() if log.exists() else ""


Front = Callable[..., Awaitable[tuple[RunningSidecar, str]]]


@pytest.fixture
async def front(
    start_sidecar: StartSidecar, upstream: str, tmp_path: Path
) -> AsyncIterator[Front]:
    """``await front(redis_url=None, doc=None)``: the sidecar in authz mode behind the
    documented nginx; returns the sidecar and nginx's base URL."""
    if shutil.which("nginx") is None:
        pytest.skip("nginx is not installed (make system-deps)")
    started: list[Nginx] = []

    async def start(
        redis_url: str | None = None, doc: dict[str, Any] | None = None
    ) -> tuple[RunningSidecar, str]:
        extra = {"redis_url": redis_url} if redis_url else {}
        running = await start_sidecar(doc, mode="authz", **extra)
        port = free_port()
        server = nginx_server_block(port, int(running.url.rsplit(":", 1)[1]),
                                    int(upstream.rsplit(":", 1)[1]))
        started.append(Nginx(tmp_path, server))
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        async with aiohttp.ClientSession() as probe:
            while True:
                try:
                    async with probe.get(base + "/.curfew/healthz") as r:
                        if r.status == 200:
                            return running, base
                except aiohttp.ClientConnectionError:
                    pass
                assert time.monotonic() < deadline, "nginx never came up"
                await asyncio.sleep(0.05)

    yield start
    for nginx in started:
        errors = nginx.stop()
        assert "[emerg]" not in errors, errors


def _sent(echo: dict[str, object]) -> dict[str, str]:
    return {k.lower(): v for k, v in echo["headers"]}  # type: ignore[attr-defined]


async def test_nginx_with_the_documented_config_enforces_the_policy(
    front: Front, http: aiohttp.ClientSession
) -> None:
    running, base = await front()
    async with http.get(base + "/login", headers={"Curfew-Idle-Remaining": "99999"}) as r:
        assert r.status == 200
        sent = _sent(await r.json())
    assert "curfew-idle-remaining" not in sent, "a forged header must not reach the app"

    async with http.get(base + "/cart", headers={"Cookie": "session=raw-ng1"}) as r:
        assert "Curfew-Idle-Remaining" not in r.headers, "a session the app never registered"
    assert await running.record("raw-ng1") == {}
    await running.register("raw-ng1")
    async with http.get(base + "/cart", headers={"Cookie": "session=raw-ng1"}) as r:
        assert r.status == 200
        assert r.headers["Curfew-Idle-Remaining"] in ("899", "900")
        sent = _sent(await r.json())
    assert sent["curfew-idle-remaining"] == r.headers["Curfew-Idle-Remaining"]
    assert sent["curfew-absolute-remaining"] in ("28799", "28800")

    async with http.get(base + "/.curfew/session",
                        headers={"Cookie": "session=raw-ng1"}) as r:
        assert (await r.json())["absoluteRemainingSeconds"] <= 28800

    await plant(running.store, sid_of("raw-ng2"), created_ago_ms=20 * MIN,
                last_ago_ms=16 * MIN)
    async with http.get(base + "/cart?item=3", allow_redirects=False,
                        headers={"Cookie": "session=raw-ng2", "Accept": "text/html"}) as r:
        assert r.status == 302
        location = urlsplit(r.headers["Location"])
        assert r.headers["Set-Cookie"].startswith("session=; Path=/; Max-Age=0")
    assert location.netloc == "login.example.com"
    assert parse_qs(location.query) == {"return_to": ["/cart?item=3"], "curfew_reason": ["idle"]}

    await plant(running.store, sid_of("raw-ng3"), created_ago_ms=481 * MIN,
                last_ago_ms=1 * MIN)
    async with http.post(base + "/api/orders", data=b"{}",
                         headers={"Cookie": "session=raw-ng3",
                                  "Accept": "application/json"}) as r:
        assert r.status == 401
        assert json.loads(await r.text()) == {"error": "session_expired",
                                              "reason": "absolute"}
        assert r.headers["WWW-Authenticate"].startswith("Session")
        assert r.headers["Set-Cookie"].startswith("session=;")


async def test_nginx_with_the_documented_config_fails_closed_without_the_store(
    front: Front, http: aiohttp.ClientSession, own_redis: RedisServer
) -> None:
    _, base = await front(own_redis.url)
    own_redis.kill()
    async with http.get(base + "/cart", headers={"Cookie": "session=raw-ng4"}) as r:
        assert r.status == 503
        assert json.loads(await r.text()) == {"error": "session_store_unavailable"}
        assert r.headers["Retry-After"] == "1"
        assert r.headers["Cache-Control"] == "no-store"
    async with http.get(base + "/login") as r:
        assert r.status == 200


async def test_nginx_answers_two_different_session_cookies_with_400_ambiguous_session(
    front: Front, http: aiohttp.ClientSession
) -> None:
    running, base = await front()
    for cookies in (["session=raw-a1; session=raw-a2"], ["session=raw-a1", "session=raw-a2"]):
        headers = [("Cookie", c) for c in cookies] + [("Accept", "text/html")]
        async with http.get(base + "/cart", headers=headers, allow_redirects=False) as r:
            assert r.status == 400, cookies
            assert json.loads(await r.text()) == {"error": "ambiguous_session"}
            assert "Location" not in r.headers
            assert "Set-Cookie" not in r.headers
            assert "app" not in await r.text()
    assert await running.record("raw-a1") == {}, "neither session was judged"
    assert await running.record("raw-a2") == {}


async def test_nginx_keeps_a_relative_login_url_relative(
    front: Front, http: aiohttp.ClientSession
) -> None:
    doc = policy_doc(reauthentication={"loginURL": "/login", "returnToParameter": "next"})
    running, base = await front(doc=doc)
    await plant(running.store, sid_of("raw-rel"), created_ago_ms=20 * MIN,
                last_ago_ms=16 * MIN)
    async with http.get(base + "/cart?item=3", allow_redirects=False,
                        headers={"Cookie": "session=raw-rel", "Accept": "text/html"}) as r:
        assert r.status == 302
        # Absolute, nginx would name its own listener (scheme, port), not the client's origin.
        assert r.headers["Location"] == "/login?next=%2Fcart%3Fitem%3D3&curfew_reason=idle"


@pytest.mark.parametrize("target", [
    "/.curfew/../admin", "/%2Ecurfew/../admin", "/.curfew/%2E%2E/admin", "/.curfew/..%2Fadmin",
])
async def test_nginx_never_serves_the_app_to_an_expired_session_through_a_curfew_spelling(
    front: Front, http: aiohttp.ClientSession, target: str
) -> None:
    running, base = await front()
    await plant(running.store, sid_of("raw-by"), created_ago_ms=20 * MIN,
                last_ago_ms=16 * MIN)
    async with http.get(URL(base + target, encoded=True), allow_redirects=False, headers={
            "Cookie": "session=raw-by", "Accept": "application/json"}) as r:
        body = await r.text()
        assert r.status == 401, body
        assert json.loads(body) == {"error": "session_expired", "reason": "idle"}


async def test_nginx_passes_a_same_origin_keepalive_and_refuses_a_cross_site_one(
    front: Front, http: aiohttp.ClientSession
) -> None:
    running, base = await front()
    await plant(running.store, sid_of("raw-ka"), created_ago_ms=14 * MIN, last_ago_ms=14 * MIN)
    before = await running.record("raw-ka")
    async with http.post(base + "/.curfew/keepalive", data=b"x", headers={
            "Cookie": "session=raw-ka", "Content-Type": "text/plain",
            "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}) as r:
        assert r.status == 403
    assert await running.record("raw-ka") == before
    async with http.post(base + "/.curfew/keepalive", headers={
            "Cookie": "session=raw-ka", "Curfew-Keepalive": "1", "Origin": base,
            "Sec-Fetch-Site": "same-origin"}) as r:
        assert r.status == 200
    assert (await running.record("raw-ka"))["l"] != before["l"]
