"""Harness of the sidecar's integration tests: everything real, on loopback.

- ``upstream``: a real aiohttp app that echoes what it received (method, path, headers, body
  digest, the peer it saw), streams, redirects, serves a websocket, and answers slowly on demand.
- ``MountedConfig``: a ConfigMap volume laid out as kubelet does (``policy.json`` ->
  ``..data/policy.json``, ``..data`` -> a timestamped directory swapped atomically on update).
- ``start_sidecar``: real sidecars in this process on free ports, against the real Redis of
  ``tests/fixtures/redis_servers.py`` (``redis_url``: the shared server, flushed per test).
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from curfew.api.config import UnifiedConfig
from curfew.sessions.identity import session_hash
from curfew.sessions.keys import session_keys
from curfew.sessions.store import RedisSessionStore
from curfew.sidecar.main import open_store
from curfew.sidecar.reload import load_policy
from curfew.sidecar.server import Sidecar
from curfew.sidecar.settings import SidecarSettings
from fixtures.policy_docs import policy_doc
from fixtures.redis_servers import RedisServer

KEY = b"integration-test-session-key-0123456789"


def sid_of(raw: str) -> str:
    """The keyed hash the sidecar stores and logs for a raw session id."""
    return session_hash(KEY, raw)




def sealed_json(doc: dict[str, Any]) -> str:
    return UnifiedConfig.model_validate(doc).sealed().to_json()


class MountedConfig:
    """A ConfigMap volume with one key, ``policy.json``, updated the way kubelet does it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / "policy.json"
        self._generation = 0

    def write(self, doc: dict[str, Any] | str) -> None:
        """Publish new content: new directory, then an atomic swap of the ``..data`` link."""
        text = doc if isinstance(doc, str) else sealed_json(doc)
        self._generation += 1
        new = self.root / f"..2026_11_26_00_00_00.{self._generation:04d}"
        new.mkdir()
        (new / "policy.json").write_text(text)
        data = self.root / "..data"
        old = os.readlink(data) if data.is_symlink() else None
        tmp = self.root / "..data_tmp"
        os.symlink(new.name, tmp)
        os.replace(tmp, data)
        if not self.path.is_symlink():
            os.symlink("..data/policy.json", self.path)
        if old is not None:
            shutil.rmtree(self.root / old)


# --- the upstream app ----------------------------------------------------------------------


async def _echo(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return web.json_response({
        "method": request.method,
        "target": request.raw_path,
        "headers": [[k, v] for k, v in request.headers.items()],
        "body_length": len(body),
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "peer_port": peer[1] if peer else None,
    })


async def _stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    await response.prepare(request)
    for i in range(3):
        await response.write(f"chunk-{i}\n".encode())
        await asyncio.sleep(0.3)
    await response.write_eof()
    return response


async def _big(request: web.Request) -> web.Response:
    return web.Response(body=bytes(range(256)) * 4096, content_type="application/octet-stream")


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("seconds", "0.5")))
    return web.Response(text="slow done")


async def _redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("/somewhere-else")


async def _no_content(request: web.Request) -> web.Response:
    return web.Response(status=204)


async def _not_modified(request: web.Request) -> web.Response:
    return web.Response(status=304, headers={"ETag": '"v1"'})


async def _cookies(request: web.Request) -> web.Response:
    response = web.Response(text="two cookies")
    response.headers.add("Set-Cookie", "a=1; Path=/")
    response.headers.add("Set-Cookie", "b=2; Path=/")
    return response


async def _issue(request: web.Request) -> web.Response:
    """Sign in: the app issues the session named in the query: the cookie ``?name=&value=``,
    or with ``?header=&value=`` the token in that answer header (as Spring's header resolver
    sends ``X-Auth-Token``, or ``Curfew-Session-Issued``)."""
    response = web.Response(text="signed in")
    if "header" in request.query:
        response.headers[request.query["header"]] = request.query["value"]
        return response
    response.headers.add("Set-Cookie", f"{request.query['name']}={request.query['value']}; "
                                       "Path=/; HttpOnly")
    return response


async def _gzip(request: web.Request) -> web.Response:
    return web.Response(body=GZIP_BODY, headers={"Content-Encoding": "gzip"})


GZIP_BODY = gzip.compress(b"compressed by the app")


async def _ws(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(protocols=("chat.v1",))
    await ws.prepare(request)
    async for msg in ws:
        if msg.type is aiohttp.WSMsgType.TEXT:
            await ws.send_str(f"echo:{msg.data}")
        elif msg.type is aiohttp.WSMsgType.BINARY:
            await ws.send_bytes(msg.data[::-1])
    return ws


@pytest.fixture
async def upstream() -> AsyncIterator[str]:
    """Base URL of the echo app."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_get("/stream", _stream)
    app.router.add_get("/big", _big)
    app.router.add_get("/slow", _slow)
    app.router.add_get("/redirect", _redirect)
    app.router.add_get("/ws", _ws)
    app.router.add_get("/no-content", _no_content)
    app.router.add_get("/not-modified", _not_modified)
    app.router.add_get("/cookies", _cookies)
    app.router.add_get("/gzip", _gzip)
    app.router.add_route("*", "/issue", _issue)
    app.router.add_route("*", "/{tail:.*}", _echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis of the test's own, to kill and start again."""
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client that keeps no cookies: each test sends exactly the cookies it means to."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        yield session


# --- sidecars --------------------------------------------------------------------------------


@dataclass
class RunningSidecar:
    sidecar: Sidecar
    url: str
    ops_url: str
    config: MountedConfig
    store: RedisSessionStore
    """A store client of the test's own, on the sidecar's namespace, to inspect records."""

    async def issue(self, *raws: str, cookie: str = "session", header: str | None = None,
                    prefix: str = "") -> None:
        """The app issues each session through the sidecar (a sign-in answered with its
        ``Set-Cookie``, or with ``header``: ``prefix`` and the token in that answer header),
        which registers it: the ``curfew`` format's way to a record in proxy mode."""
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
            for raw in raws:
                query = ({"header": header, "value": prefix + raw} if header
                         else {"name": cookie, "value": raw})
                async with http.get(self.url + "/issue", params=query,
                                    headers={"Connection": "close"}) as r:
                    assert r.status == 200, await r.text()
        for raw in raws:
            await wait_for(lambda raw=raw: self._has_record(raw))  # type: ignore[misc]

    async def register(self, *raws: str, cookie: str = "session", header: str | None = None
                       ) -> None:
        """The app registers each session it issued on the ops port, in the session ``cookie``
        or, when given, the session ``header`` (each raw value is the whole header value): the
        ``curfew`` format's way to a record where the sidecar sees no answers (authz mode)."""
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
            for raw in raws:
                field = {header: raw} if header else {"Cookie": f"{cookie}={raw}"}
                async with http.post(self.ops_url + "/sessions/register", headers=field) as r:
                    assert r.status == 201, await r.text()

    async def _has_record(self, raw: str) -> bool:
        return bool(await self.record(raw))

    async def record(self, raw: str) -> dict[str, str]:
        """The session record the store holds for a raw id (empty when none)."""
        key = session_keys(self.store.namespace, sid_of(raw))[0]
        fields = await self.store.client.hgetall(key)
        return {k.decode(): v.decode() for k, v in fields.items()}


StartSidecar = Callable[..., Awaitable[RunningSidecar]]


@pytest.fixture
async def start_sidecar(
    tmp_path: Path, redis_url: str, upstream: str
) -> AsyncIterator[StartSidecar]:
    """Start sidecars: ``await start_sidecar(doc=None, mode="proxy", **settings)``."""
    started: list[RunningSidecar] = []

    async def start(
        doc: dict[str, Any] | None = None, *, mode: str = "proxy", **settings: Any
    ) -> RunningSidecar:
        mount = MountedConfig(tmp_path / f"config-{len(started)}")
        mount.root.mkdir()
        mount.write(doc or policy_doc())
        values: dict[str, Any] = {
            "config": mount.path, "listen": "127.0.0.1:0", "ops_listen": "127.0.0.1:0",
            "mode": mode, "redis_url": redis_url, "session_key": KEY.decode(),
            "config_poll_seconds": 0.05, "shutdown_grace_seconds": 5,
        }
        if mode == "proxy":
            values["upstream"] = upstream
        values.update(settings)
        config = SidecarSettings(**values)
        policy = load_policy(config.config, app_secrets=config.app_secrets)
        assert config.redis_url is not None
        # The store as the process opens it: the lean connection for plain redis:// URLs.
        store = open_store(config, policy)
        sidecar = Sidecar(config, policy, store)
        bound = await sidecar.start()
        inspector = RedisSessionStore.from_url(
            config.redis_url.get_secret_value(), key_prefix=policy.key_prefix,
            format=policy.store_format,
        )
        running = RunningSidecar(
            sidecar, f"http://127.0.0.1:{bound[0][1]}", f"http://127.0.0.1:{bound[-1][1]}",
            mount, inspector,
        )
        started.append(running)
        return running

    yield start
    for running in started:
        await running.sidecar.stop()
        await running.store.aclose()


def audit_events(
    caplog: pytest.LogCaptureFixture, event: str | None = None
) -> list[dict[str, Any]]:
    """The audit events logged so far (all, or of one kind)."""
    events = [json.loads(r.getMessage()) for r in caplog.records if r.name == "curfew.audit"]
    return [e for e in events if event is None or e["event"] == event]


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Poll ``check`` until it is true, failing after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
