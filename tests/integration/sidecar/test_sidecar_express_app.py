"""The connect-redis format against the real Express app (express 5, express-session 1.19,
connect-redis 9, node-redis) on loopback, behind a real sidecar, on a real redis-server: the
sidecar joins the app's own sessions by the id inside the signed cookie, verifies signatures
with the app's secrets, ends expired sessions in the app's store, and the purge keeps sessions
the app alone keeps alive."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import aiohttp
import pytest
import redis
from sidecar_harness import KEY, StartSidecar, sealed_json

from curfew.sessions.codec import express_sign
from fixtures.apps.express import ensure_express_app, express_app
from fixtures.policy_docs import policy_doc
from fixtures.purge import curfew_purge

SECRETS = ["current cookie secret", "previous cookie secret"]
COOKIE = "connect.sid"
JSON = {"Accept": "application/json"}


def express_policy(*, idle: float, absolute: float) -> dict[str, Any]:
    return policy_doc(
        timeouts={"idleSeconds": idle, "absoluteSeconds": absolute},
        session={"cookieName": COOKIE},
        activity={},
        store={"format": "connect-redis", "keyPrefix": "sess:",
               "redisSecretRef": {"name": "sessions-redis", "key": "url"},
               "sessionKeySecretRef": {"name": "sessions-redis", "key": "session-key"},
               "appSecretRef": {"name": "shop-cookies", "key": "cookie-secret"}},
        purge={"maxPurgeFraction": 1},
    )


@pytest.fixture(scope="module", autouse=True)
def _installed() -> None:
    ensure_express_app()


@pytest.fixture
def app(redis_url: str) -> Iterator[str]:
    with express_app(redis_url, SECRETS) as url:
        yield url


@pytest.fixture
def store(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


async def sign_in(http: aiohttp.ClientSession, base: str, user: str) -> str:
    """Sign in at ``base`` (the sidecar or the app); the cookie value as the app set it."""
    async with http.post(base + "/login", data={"user": user}) as r:
        assert r.status == 200, await r.text()
        cookie = r.cookies[COOKIE].value
    assert cookie.startswith("s%3A"), "express-session signs and percent-encodes its cookie"
    return cookie


def app_id(cookie: str) -> str:
    """The session id inside ``s:<id>.<signature>``."""
    return unquote(cookie)[2:].rpartition(".")[0]


async def page(http: aiohttp.ClientSession, base: str, cookie: str) -> tuple[int, str, str]:
    """GET /page with the session cookie: status, Curfew-Reason (or ''), body."""
    async with http.get(base + "/page", headers={**JSON, "Cookie": f"{COOKIE}={cookie}"}) as r:
        return r.status, r.headers.get("Curfew-Reason", ""), await r.text()


async def test_a_sign_in_through_the_sidecar_joins_the_apps_own_session(
    app: str, start_sidecar: StartSidecar, http: aiohttp.ClientSession, store: redis.Redis
) -> None:
    sidecar = await start_sidecar(express_policy(idle=60, absolute=600), upstream=app,
                                  app_secret=json.dumps(SECRETS))
    cookie = await sign_in(http, sidecar.url, "alice")
    assert await page(http, sidecar.url, cookie) == (200, "", "signed in as alice")
    raw = app_id(cookie)
    assert store.exists(f"sess:{raw}") == 1
    record = await sidecar.record(raw)
    assert record, "the record is keyed by the app's id, not by the signed cookie"
    assert not await sidecar.record(unquote(cookie))
    assert not [k for k in store.scan_iter("sess:*") if b"{" in k], "Curfew keys under sess:"


async def test_idle_expiry_through_the_sidecar_ends_the_apps_session(
    app: str, start_sidecar: StartSidecar, http: aiohttp.ClientSession, store: redis.Redis
) -> None:
    sidecar = await start_sidecar(express_policy(idle=2, absolute=600), upstream=app,
                                  app_secret=json.dumps(SECRETS))
    cookie = await sign_in(http, sidecar.url, "alice")
    assert (await page(http, sidecar.url, cookie))[0] == 200
    await asyncio.sleep(2.5)
    status, reason, _ = await page(http, sidecar.url, cookie)
    assert (status, reason) == (401, "idle")
    assert store.exists(f"sess:{app_id(cookie)}") == 0
    assert await page(http, app, cookie) == (401, "", "not signed in"), \
        "the cookie sent straight to the app no longer works"


async def test_absolute_expiry_through_the_sidecar_ends_an_active_session(
    app: str, start_sidecar: StartSidecar, http: aiohttp.ClientSession, store: redis.Redis
) -> None:
    sidecar = await start_sidecar(express_policy(idle=2, absolute=4), upstream=app,
                                  app_secret=json.dumps(SECRETS))
    cookie = await sign_in(http, sidecar.url, "alice")
    answers = []
    for _ in range(12):
        answers.append(await page(http, sidecar.url, cookie))
        if answers[-1][0] != 200:
            break
        await asyncio.sleep(0.5)
    assert answers[-1][:2] == (401, "absolute"), answers
    assert len(answers) >= 6, "active sessions live until the absolute limit"
    assert store.exists(f"sess:{app_id(cookie)}") == 0
    assert await page(http, app, cookie) == (401, "", "not signed in")


async def test_a_forged_signature_is_no_session_and_touches_nothing(
    app: str, start_sidecar: StartSidecar, http: aiohttp.ClientSession, store: redis.Redis
) -> None:
    sidecar = await start_sidecar(express_policy(idle=60, absolute=600), upstream=app,
                                  app_secret=json.dumps(SECRETS))
    cookie = await sign_in(http, app, "alice")  # straight at the app: no Curfew record yet
    raw = app_id(cookie)
    for forged in (quote("s:" + express_sign(raw, b"a guessed secret"), safe=""),
                   quote("s:" + raw + ".", safe=""), raw):
        assert await page(http, sidecar.url, forged) == (401, "", "not signed in")
        assert await page(http, app, forged) == (401, "", "not signed in"), "the app agrees"
    assert not await sidecar.record(raw), "no record for a session no secret signed"
    assert store.exists(f"sess:{raw}") == 1, "and nothing deleted"
    # A cookie signed with the previous secret of the rotation is the session, for both.
    rotated = quote("s:" + express_sign(raw, SECRETS[1].encode()), safe="")
    assert await page(http, app, rotated) == (200, "", "signed in as alice")
    assert await page(http, sidecar.url, rotated) == (200, "", "signed in as alice")
    assert await sidecar.record(raw)


def snapshot(store: redis.Redis) -> dict[bytes, bytes | None]:
    """Every key with its serialized value (DUMP): equal snapshots, nothing written."""
    return {key: store.dump(key) for key in store.scan_iter(count=1000)}


async def test_the_purge_keeps_sessions_the_app_touched_and_removes_idle_ones(
    app: str, start_sidecar: StartSidecar, http: aiohttp.ClientSession, store: redis.Redis,
    redis_url: str, tmp_path: Path,
) -> None:
    # The touched sessions are touched again right before each purge, which must then start
    # within the idle limit: 6 s leaves room for a purge process starting on a loaded machine.
    doc = express_policy(idle=6, absolute=600)
    sidecar = await start_sidecar(doc, upstream=app, app_secret=json.dumps(SECRETS))
    touched = [await sign_in(http, app, f"user{i}") for i in range(2)]
    idle = await sign_in(http, app, "idle")
    # Used through the sidecar once, then only straight at the app: Curfew's record decides.
    recorded = await sign_in(http, app, "recorded")
    assert (await page(http, sidecar.url, recorded))[0] == 200
    await asyncio.sleep(6.5)

    async def touch() -> None:
        for cookie in [*touched, recorded]:
            # resave: false and nothing changed: express-session touches, connect-redis
            # EXPIREs, and the JSON's cookie.expires still says the sign-in.
            assert await page(http, app, cookie) == (200, "", expected_page(store, cookie))

    config = tmp_path / "policy.json"
    config.write_text(sealed_json(doc))

    await touch()
    before = snapshot(store)
    dry = curfew_purge(config, redis_url, "--dry-run", session_key=KEY.decode())
    assert dry.code == 0, dry.stderr
    assert dry.summary["expired"]["idle"] == 2, dry.summary
    assert snapshot(store) == before, "a dry run writes nothing"

    await touch()
    run = curfew_purge(config, redis_url, session_key=KEY.decode())
    assert run.code == 0, run.stderr
    assert run.summary["expired"] == {"idle": 2, "absolute": 0, "tightened": 0}, run.summary
    for cookie in (idle, recorded):
        assert store.exists(f"sess:{app_id(cookie)}") == 0
        assert await page(http, app, cookie) == (401, "", "not signed in")
    for cookie in touched:
        assert store.exists(f"sess:{app_id(cookie)}") == 1
        assert (await page(http, app, cookie))[0] == 200


def expected_page(store: redis.Redis, cookie: str) -> str:
    """The page's answer for the session ``cookie`` names, from the app's own record."""
    value = store.get(f"sess:{app_id(cookie)}")
    assert value is not None
    return f"signed in as {json.loads(value)['user']}"
