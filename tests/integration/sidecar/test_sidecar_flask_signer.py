"""A real Flask app with Flask-Session's signed ids (``SESSION_USE_SIGNER``) behind a real
sidecar given the app's SECRET_KEY (``store.appSecretRef``): a cookie the app signed is the
session; a forged one, or one re-signed with another key, is no session and creates or deletes
nothing; and a rotation (the new and the old key in the Secret) accepts the cookies of app pods
on either key."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from itsdangerous import Signer
from sidecar_harness import RunningSidecar, StartSidecar, policy_doc, wait_for

from fixtures.apps import RunningApp, python_app

API = {"Accept": "application/json"}
NEW_KEY = "the new SECRET_KEY, après la rotation"
OLD_KEY = "the old SECRET_KEY"
IDLE = 1.5
PREFIX = "session:"


@dataclass
class Deployed:
    app: RunningApp
    sidecar: RunningSidecar
    app_key: str
    """The SECRET_KEY the app signs with."""

    async def app_keys(self) -> list[bytes]:
        return [k async for k in self.sidecar.store.client.scan_iter(match=PREFIX + "*")]

    async def all_keys(self) -> set[bytes]:
        return {k async for k in self.sidecar.store.client.scan_iter(match="*")}


@pytest.fixture(params=[NEW_KEY, OLD_KEY], ids=["app on the new key", "app on the old key"])
async def deployed(
    request: pytest.FixtureRequest, start_sidecar: StartSidecar, redis_url: str
) -> AsyncIterator[Deployed]:
    with python_app("flask", REDIS_URL=redis_url, LIFETIME=600, USE_SIGNER=1,
                    SECRET_KEY=request.param) as app:
        running = await start_sidecar(
            policy_doc(
                session={"cookieName": "session"},
                timeouts={"idleSeconds": IDLE, "absoluteSeconds": 600},
                store={"format": "flask-session", "keyPrefix": PREFIX, "appTTLSeconds": 600,
                       "redisSecretRef": {"name": "r", "key": "url"},
                       "sessionKeySecretRef": {"name": "r", "key": "k"},
                       "appSecretRef": {"name": "flask", "key": "secret-key"}}),
            upstream=app.url, app_secret=f"{NEW_KEY}\n{OLD_KEY}\n")
        yield Deployed(app, running, request.param)


async def me(url: str, http: aiohttp.ClientSession, cookie: str) -> int:
    return (await judged(url, http, cookie))[0]


async def judged(url: str, http: aiohttp.ClientSession, cookie: str) -> tuple[int, bool]:
    """The answer's status, and whether the sidecar judged the request as a session's (it
    tells a session's remaining idle time; a request without one gets no such header)."""
    async with http.get(url + "/me", headers={"Cookie": f"session={cookie}", **API}) as r:
        await r.read()
        return r.status, "Curfew-Idle-Remaining" in r.headers


async def sign_in(url: str, http: aiohttp.ClientSession) -> str:
    async with http.get(url + "/login", params={"user": "ada"}, headers=API) as r:
        assert r.status == 200, await r.text()
        return r.cookies["session"].value


async def _has_record(running: RunningSidecar, app_id: str) -> bool:
    return bool(await running.record(app_id))


async def test_a_cookie_the_app_signed_is_the_session_and_ends_in_the_app_too(
    deployed: Deployed, http: aiohttp.ClientSession
) -> None:
    cookie = await sign_in(deployed.sidecar.url, http)
    app_id, _, _signature = cookie.rpartition(".")
    assert Signer(deployed.app_key, salt="flask-session", key_derivation="hmac").validate(cookie)
    assert await deployed.app_keys() == [(PREFIX + app_id).encode()]
    assert await me(deployed.sidecar.url, http, cookie) == 200
    await wait_for(lambda: _has_record(deployed.sidecar, app_id))
    await asyncio.sleep(IDLE + 0.3)
    assert await me(deployed.sidecar.url, http, cookie) == 401
    assert await deployed.app_keys() == [], "the app's session is gone from the store"
    assert await me(deployed.app.url, http, cookie) == 401, "and its cookie no longer works"


async def test_a_forged_or_re_signed_id_is_no_session_and_touches_nothing(
    deployed: Deployed, http: aiohttp.ClientSession
) -> None:
    cookie = await sign_in(deployed.app.url, http)  # straight at the app: no record yet
    app_id = cookie.rpartition(".")[0]
    before = await deployed.all_keys()
    forged = [
        Signer("a guessed key", salt="flask-session", key_derivation="hmac").sign(app_id),
        Signer(deployed.app_key).sign(app_id),  # itsdangerous's defaults, not Flask-Session's
        (app_id + "." + "A" * 27).encode(),
        app_id.encode(),  # unsigned
    ]
    for value in forged:
        text = value.decode()
        assert await me(deployed.app.url, http, text) == 401, "the app refuses it too"
        assert await judged(deployed.sidecar.url, http, text) == (401, False)
    assert not await deployed.sidecar.record(app_id), "no record for a session no key signed"
    assert await deployed.all_keys() == before, "nothing created, nothing deleted"
    # The cookie the app signed is the session, through the sidecar too.
    assert await judged(deployed.sidecar.url, http, cookie) == (200, True)
    await wait_for(lambda: _has_record(deployed.sidecar, app_id))


async def test_either_key_of_the_rotation_signs_a_session_the_sidecar_accepts(
    deployed: Deployed, http: aiohttp.ClientSession
) -> None:
    """The Secret holds both keys while app pods roll from the old to the new: a cookie signed
    by the pod's key works through the sidecar, whichever of the two it is; a cookie signed by
    the other key is the app's to refuse (Flask-Session knows one key), not the sidecar's."""
    cookie = await sign_in(deployed.sidecar.url, http)
    assert await me(deployed.sidecar.url, http, cookie) == 200
    app_id = cookie.rpartition(".")[0]
    other = OLD_KEY if deployed.app_key == NEW_KEY else NEW_KEY
    resigned = Signer(other, salt="flask-session", key_derivation="hmac").sign(app_id).decode()
    assert await me(deployed.app.url, http, resigned) == 401, "Flask-Session knows one key"
    assert await judged(deployed.sidecar.url, http, resigned) == (401, True), (
        "the sidecar takes it for the session (the pod on the other key would too)")
