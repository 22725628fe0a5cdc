"""A real Django app (django-redis, the cache and cached_db session backends) and a real Flask app
(Flask-Session's Redis interface) behind a real sidecar, on one real redis-server: sign-in through
the sidecar, idle and absolute expiry, and after expiry the app's own session gone, so its cookie
no longer works even sent straight to the app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from sidecar_harness import RunningSidecar, StartSidecar, policy_doc, wait_for

from curfew.sessions.formats_python import load_plain_pickle
from fixtures.apps import AppCase, RunningApp, python_app

API = {"Accept": "application/json"}
IDLE, ABSOLUTE = 1.5, 4.0


CASES = [
    AppCase("django cache, pickle", "django", {"SESSION_ENGINE": "cache"}, "sessionid",
            "django", ":1:django.contrib.sessions.cache"),
    AppCase("django cache, JSON, own prefix and version", "django",
            {"SESSION_ENGINE": "cache", "SERIALIZER": "json", "KEY_PREFIX": "shop",
             "VERSION": 3},
            "sessionid", "django", "shop:3:django.contrib.sessions.cache"),
    AppCase("django cached_db", "django", {"SESSION_ENGINE": "cached_db"}, "sessionid",
            "django", ":1:django.contrib.sessions.cached_db"),
    AppCase("flask-session", "flask", {}, "session", "flask-session", "session:"),
    AppCase("flask-session, signed ids", "flask", {"USE_SIGNER": 1}, "session",
            "flask-session", "session:"),
]


@dataclass
class Deployed:
    case: AppCase
    app: RunningApp
    sidecar: RunningSidecar

    async def app_keys(self) -> list[bytes]:
        return [k async for k in self.sidecar.store.client.scan_iter(match=self.case.prefix + "*")]


@pytest.fixture(params=CASES, ids=lambda c: c.name)
async def deployed(
    request: pytest.FixtureRequest, start_sidecar: StartSidecar, redis_url: str, tmp_path: Any
) -> AsyncIterator[Deployed]:
    case: AppCase = request.param
    lifetime = {"SESSION_COOKIE_AGE": 600} if case.app == "django" else {"LIFETIME": 600}
    with python_app(case.app, REDIS_URL=redis_url, DB_PATH=str(tmp_path / "django.sqlite3"),
                    **lifetime, **case.env) as app:
        running = await start_sidecar(
            policy_doc(
                session={"cookieName": case.cookie},
                timeouts={"idleSeconds": IDLE, "absoluteSeconds": ABSOLUTE},
                store={"format": case.format, "keyPrefix": case.prefix,
                       "appTTLSeconds": 600,
                       "redisSecretRef": {"name": "r", "key": "url"},
                       "sessionKeySecretRef": {"name": "r", "key": "k"}}),
            upstream=app.url)
        yield Deployed(case, app, running)


async def sign_in(d: Deployed, http: aiohttp.ClientSession) -> tuple[str, str]:
    """Sign in through the sidecar: the cookie the app set, and the app's session id. The
    session's record comes with its first request (its app key exists by then)."""
    async with http.get(d.sidecar.url + "/login", params={"user": "ada"}, headers=API) as r:
        assert r.status == 200, await r.text()
        cookie = r.cookies[d.case.cookie].value
    keys = await d.app_keys()
    assert len(keys) == 1, "the app keeps one session key"
    app_id = keys[0].decode()[len(d.case.prefix):]
    assert not await d.sidecar.record(app_id)
    assert (await me(d.sidecar.url, http, d, cookie)).status == 200
    await wait_for(lambda: _has_record(d.sidecar, app_id))
    return cookie, app_id


async def _has_record(running: RunningSidecar, app_id: str) -> bool:
    return bool(await running.record(app_id))


async def me(
    url: str, http: aiohttp.ClientSession, d: Deployed, cookie: str
) -> aiohttp.ClientResponse:
    async with http.get(url + "/me", headers={"Cookie": f"{d.case.cookie}={cookie}", **API}) as r:
        await r.read()
        return r


async def reason_of(url: str, http: aiohttp.ClientSession, d: Deployed, cookie: str) -> str:
    async with http.get(url + "/me", headers={"Cookie": f"{d.case.cookie}={cookie}", **API}) as r:
        assert r.status == 401
        body = await r.json()
        return str(body.get("reason"))


async def assert_gone_from_the_app(d: Deployed, http: aiohttp.ClientSession, cookie: str) -> None:
    if d.case.prefix.endswith("cached_db"):
        # Deleted, Django would read it back from its database: emptied, it is anonymous.
        (key,) = await d.app_keys()
        client = d.sidecar.store.client
        assert load_plain_pickle(await client.get(key)) == {}
        assert await client.pttl(key) > 500_000, "the entry keeps the session's TTL"
    else:
        assert await d.app_keys() == [], "the app's session is gone from the store"
    straight = await me(d.app.url, http, d, cookie)
    assert straight.status == 401, "the cookie no longer works even sent straight to the app"


async def test_a_session_signed_in_through_the_sidecar_ends_after_idle_time_in_the_app_too(
    deployed: Deployed, http: aiohttp.ClientSession
) -> None:
    cookie, _ = await sign_in(deployed, http)
    assert (await me(deployed.sidecar.url, http, deployed, cookie)).status == 200
    assert (await me(deployed.app.url, http, deployed, cookie)).status == 200
    await asyncio.sleep(IDLE + 0.3)
    assert await reason_of(deployed.sidecar.url, http, deployed, cookie) == "idle"
    await assert_gone_from_the_app(deployed, http, cookie)


async def test_an_active_session_ends_at_its_absolute_limit_in_the_app_too(
    deployed: Deployed, http: aiohttp.ClientSession
) -> None:
    cookie, _ = await sign_in(deployed, http)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ABSOLUTE + 0.3
    while loop.time() < deadline:
        r = await me(deployed.sidecar.url, http, deployed, cookie)
        if r.status != 200:
            break
        await asyncio.sleep(0.4)
    assert await reason_of(deployed.sidecar.url, http, deployed, cookie) == "absolute"
    await assert_gone_from_the_app(deployed, http, cookie)


async def test_a_strangers_well_formed_session_cookie_leaves_nothing_in_the_store(
    deployed: Deployed, http: aiohttp.ClientSession
) -> None:
    forged = ("abcdefghij0123456789abcdefghij01" if deployed.case.app == "django"
              else "A" * 43 + ".Zm9yZ2VkLXNpZ25hdHVyZQ")
    r = await me(deployed.sidecar.url, http, deployed, forged)
    assert r.status == 401, "the app answers a request without a session"
    assert "Curfew-Idle-Remaining" not in r.headers
    client = deployed.sidecar.store.client
    assert [k async for k in client.scan_iter(match="*")] == [], "no record, no app key"
