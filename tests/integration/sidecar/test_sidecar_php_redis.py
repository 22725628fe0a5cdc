"""The php-redis format against the real thing: a PHP app (php-cli, phpredis) keeping its
sessions in a real Redis, behind a real sidecar. Sign-in, idle and absolute expiry through the
sidecar; after expiry PHP's own key is gone and the cookie, sent straight to PHP, signs no one
in; values outside PHP's id grammar name no key."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from sidecar_harness import RunningSidecar, StartSidecar, policy_doc

from curfew.sessions.codec import PHP_ID_PATTERN
from fixtures.apps.php import PhpApp, start_php_app

API = {"Accept": "application/json"}
PREFIX = "PHPREDIS_SESSION:"


@pytest.fixture
def php_app(redis_url: str) -> Iterator[PhpApp]:
    port = urlsplit(redis_url).port
    assert port is not None
    app = start_php_app(port, lifetime=60)
    yield app
    app.stop()


def php_policy(idle: float, absolute: float, **store: Any) -> dict[str, Any]:
    return policy_doc(
        timeouts={"idleSeconds": idle, "absoluteSeconds": absolute},
        session={"cookieName": "PHPSESSID"},
        store={"format": "php-redis", "keyPrefix": PREFIX, **store,
               "redisSecretRef": {"name": "r", "key": "url"},
               "sessionKeySecretRef": {"name": "r", "key": "k"}},
    )


async def sign_in(http: aiohttp.ClientSession, base: str) -> str:
    """Sign in as PHP does it (a new session, its cookie in the answer); the id."""
    async with http.get(base + "/signin", params={"user": "alice"}, headers=API) as r:
        assert r.status == 200, await r.text()
        assert await r.text() == "signed in as alice\n"
        jar: SimpleCookie = SimpleCookie()
        for value in r.headers.getall("Set-Cookie"):
            jar.load(value)
    return jar["PHPSESSID"].value


async def page(http: aiohttp.ClientSession, base: str, session: str) -> aiohttp.ClientResponse:
    async with http.get(base + "/page", headers={"Cookie": f"PHPSESSID={session}", **API}) as r:
        await r.read()
        return r


async def test_signing_in_through_the_sidecar_gives_the_php_session_a_record(
    start_sidecar: StartSidecar, php_app: PhpApp, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar(php_policy(900, 28800), upstream=php_app.url)
    session = await sign_in(http, running.url)
    assert re.fullmatch(PHP_ID_PATTERN, session), "an id PHP generated is of the grammar"
    assert await running.store.client.type(PREFIX + session) == b"string"
    r = await page(http, running.url, session)
    assert r.status == 200
    assert r.headers["Curfew-Idle-Remaining"]
    record = await running.record(session)
    assert record["k"] == "1"
    assert record["w"] == "Deployment/shop/web"


async def expire_and_check(running: RunningSidecar, http: aiohttp.ClientSession, php: PhpApp,
                           session: str, reason: str) -> None:
    """The next request through the sidecar is refused for ``reason``; then PHP's key is gone
    and PHP itself, asked straight, no longer knows the user."""
    r = await page(http, running.url, session)
    assert r.status == 401, "expired: turned away"
    assert r.headers["Curfew-Reason"] == reason
    assert await running.store.client.exists(PREFIX + session) == 0
    assert (await running.record(session))["x"] == reason
    r = await page(http, php.url, session)
    assert r.status == 401, "the cookie signs no one in, even sent straight to the app"


async def test_an_idle_php_session_is_ended_in_php_too(
    start_sidecar: StartSidecar, php_app: PhpApp, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar(php_policy(1.5, 3600), upstream=php_app.url)
    session = await sign_in(http, running.url)
    assert (await page(http, running.url, session)).status == 200
    await asyncio.sleep(0.6)
    assert (await page(http, running.url, session)).status == 200, "active: kept"
    await asyncio.sleep(1.7)
    await expire_and_check(running, http, php_app, session, "idle")


async def test_a_php_session_past_its_absolute_limit_is_ended_in_php_too(
    start_sidecar: StartSidecar, php_app: PhpApp, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar(php_policy(60, 3), upstream=php_app.url)
    session = await sign_in(http, running.url)
    for _ in range(3):  # active all along: only the absolute limit can end it
        assert (await page(http, running.url, session)).status == 200
        await asyncio.sleep(0.4)
    await asyncio.sleep(2.0)
    await expire_and_check(running, http, php_app, session, "absolute")


async def test_a_cookie_naming_a_phpredis_lock_key_is_no_session(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    # phpredis's session locks live next to the sessions: <prefix><id>_LOCK, a string too. The
    # echo app stands in for PHP here: PHP itself (strict mode) would take the lock key for a
    # session, fail to decode it and delete it, which is PHP's business, not the sidecar's.
    running = await start_sidecar(php_policy(1, 3600))
    session = "0123456789abcdefghijklmnop"
    client = running.store.client
    await client.set(PREFIX + session, "user|s:5:\"alice\";", ex=60)
    await client.set(PREFIX + session + "_LOCK", "held-by-a-request", ex=60)
    for _ in range(2):
        r = await page(http, running.url, session + "_LOCK")
        assert r.status == 200
        assert "Curfew-Idle-Remaining" not in r.headers, "forwarded as a request without one"
        await asyncio.sleep(1.1)
    assert await running.record(session + "_LOCK") == {}
    assert await client.get(PREFIX + session + "_LOCK") == b"held-by-a-request"


@pytest.mark.parametrize("value", [
    "short", "a" * 257, "0123456789abcdef0123456789:config", "0123456789abcdef01234567.89",
    "0123456789abcdef012345_LOCK", "%2A" * 30,
])
async def test_a_value_outside_phps_id_grammar_reaches_no_key(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession, value: str
) -> None:
    running = await start_sidecar(php_policy(1, 3600))
    client = running.store.client
    await client.set(PREFIX + value, "user|s:5:\"alice\";", ex=60)
    before = sorted(await client.keys("*"))
    async with http.get(running.url + "/page",
                        headers={"Cookie": f"PHPSESSID={value}", **API}) as r:
        assert r.status == 200, "forwarded as a request without a session"
        assert "Curfew-Idle-Remaining" not in r.headers
    assert await running.record(value) == {}
    assert sorted(await client.keys("*")) == before, "no record, nothing written or deleted"


@pytest.mark.parametrize("strict", [True, False])
async def test_only_phps_strict_mode_keeps_a_client_chosen_id_out_of_reach(
    start_sidecar: StartSidecar, redis_url: str, http: aiohttp.ClientSession, strict: bool
) -> None:
    # Why docs/store.md asks for session.use_strict_mode: without it PHP adopts any id a client
    # sends, one outside the grammar too, which the sidecar passes as no session at all.
    port = urlsplit(redis_url).port
    assert port is not None
    php = start_php_app(port, lifetime=60, strict=strict)
    try:
        running = await start_sidecar(php_policy(1, 3600), upstream=php.url)
        chosen = "chosen.by.the.client.0123456789"
        async with http.get(running.url + "/signin", params={"user": "alice"},
                            headers={"Cookie": f"PHPSESSID={chosen}", **API}) as r:
            assert r.status == 200
            assert "Curfew-Idle-Remaining" not in r.headers
        adopted = await running.store.client.exists(PREFIX + chosen) == 1
        assert adopted is not strict
        r = await page(http, running.url, chosen)
        assert "Curfew-Idle-Remaining" not in r.headers, "never judged by the sidecar"
        assert r.status == (401 if strict else 200)
    finally:
        php.stop()
