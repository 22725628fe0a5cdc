"""No client value chooses a Redis key, and strangers leave nothing in the store: the attacks of
issue 13 (items 4 and 5) against a real sidecar, a real Redis and the real purge command."""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from sidecar_harness import RunningSidecar, StartSidecar, policy_doc, sid_of, wait_for

from fixtures.purge import curfew_purge, purge_config, write_config
from fixtures.sessions import MIN, plant

API = {"Accept": "application/json"}


def store_section(format: str, prefix: str, **extra: str) -> dict[str, object]:
    return {"format": format, "keyPrefix": prefix, **extra,
            "redisSecretRef": {"name": "r", "key": "url"},
            "sessionKeySecretRef": {"name": "r", "key": "k"}}


async def expired_record(running: RunningSidecar, value: str) -> None:
    """An expired record for ``value``, as a sidecar without the id grammar would have made."""
    await plant(running.store, sid_of(value), created_ago_ms=20 * MIN, last_ago_ms=16 * MIN)


async def test_a_spring_cookie_naming_the_expiration_store_deletes_nothing(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar(policy_doc(
        session={"cookieName": "SESSION"},
        store=store_section("spring-session", "spring:session:")))
    client = running.store.client
    await client.zadd("spring:session:sessions:expirations", {"a-session-id": 1})
    await expired_record(running, "expirations")
    async with http.get(running.url + "/x", headers={"Cookie": "SESSION=expirations", **API}) as r:
        assert r.status == 200, "not a Spring session id: a request without a session"
        assert "Curfew-Idle-Remaining" not in r.headers
    assert await client.zcard("spring:session:sessions:expirations") == 1


async def test_a_loose_id_pattern_still_never_deletes_a_key_of_another_type(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    # An operator's pattern that lets "expirations" through: the type check is the last word.
    running = await start_sidecar(policy_doc(
        session={"cookieName": "SESSION", "idEncoding": "raw"},
        store=store_section("spring-session", "spring:session:", idPattern="[a-z0-9-]{8,36}")))
    client = running.store.client
    await client.zadd("spring:session:sessions:expirations", {"a-session-id": 1})
    await expired_record(running, "expirations")
    async with http.get(running.url + "/x", headers={"Cookie": "SESSION=expirations", **API}) as r:
        assert r.status == 401
    assert await client.zcard("spring:session:sessions:expirations") == 1


async def test_a_generic_cookie_naming_another_key_of_the_app_deletes_nothing(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar(policy_doc(
        session={"cookieName": "sid"}, store=store_section("generic", "app:")))
    client = running.store.client
    await client.set("app:config", "the app's settings")
    await expired_record(running, "config")
    async with http.get(running.url + "/x", headers={"Cookie": "sid=config", **API}) as r:
        assert r.status == 200
    assert await client.get("app:config") == b"the app's settings"


async def test_an_expired_generic_session_is_deleted_with_its_key(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar(policy_doc(
        session={"cookieName": "sid"}, store=store_section("generic", "app:")))
    client = running.store.client
    app_id = "k" * 26
    await client.set(f"app:{app_id}", "php session data")
    await expired_record(running, app_id)
    async with http.get(running.url + "/x", headers={"Cookie": f"sid={app_id}", **API}) as r:
        assert r.status == 401
    assert await client.exists(f"app:{app_id}") == 0


@pytest.mark.parametrize("format", ["curfew", "connect-redis", "spring-session"])
async def test_random_cookie_values_create_nothing_and_cannot_trip_the_purge_cap(
    start_sidecar: StartSidecar, tmp_path: Path, redis_url: str, format: str
) -> None:
    prefix = {"curfew": "curfew:", "connect-redis": "sess:",
              "spring-session": "spring:session:"}[format]
    running = await start_sidecar(policy_doc(store=store_section(format, prefix)))
    client = running.store.client
    # Ten real sessions, one of them expired: a tenth, under the cap of a half.
    for n in range(10):
        await plant(running.store, sid_of(f"real-{n}"), created_ago_ms=60 * MIN,
                    last_ago_ms=(20 if n == 0 else 1) * MIN)
    before = await client.dbsize()

    def stranger() -> str:
        if format == "connect-redis":
            return f"s%3A{secrets.token_urlsafe(24)}.{secrets.token_urlsafe(32)}"
        if format == "spring-session":
            return base64.b64encode(str(uuid.uuid4()).encode()).decode()  # Spring's cookie
        return secrets.token_urlsafe(32)

    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        for _ in range(300):
            async with http.get(running.url + "/x",
                                headers={"Cookie": f"session={stranger()}", **API}) as r:
                assert r.status == 200
                assert "Curfew-Idle-Remaining" not in r.headers
    assert await client.dbsize() == before, "a stranger's cookie left a key behind"
    if format != "curfew":
        return  # the app formats' purge scans the app's keys, which strangers cannot make
    run = curfew_purge(write_config(tmp_path, purge_config(max_fraction=0.5)), redis_url)
    assert run.summary["outcome"] == "ok", run.summary
    assert run.summary["scanned"] == 10
    assert run.summary["expired"]["idle"] == 1


async def test_a_session_the_app_issues_is_registered_once_and_a_sign_out_registers_none(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar()
    token = secrets.token_urlsafe(32)
    await running.issue(token)
    assert (await running.record(token))["w"] == "Deployment/shop/web"
    # The app sends its cookie again with the session it just read: nothing new to register.
    cookie = {"Cookie": f"session={token}", **API}
    async with http.get(running.url + "/issue", params={"name": "session", "value": token},
                        headers=cookie) as r:
        assert r.status == 200
    async with http.get(running.ops_url + "/metrics") as r:
        text = await r.text()
    assert 'curfew_sidecar_requests_total{action="registered",decision="issued"} 1.0' in text
    # A cookie the app deletes is no session to register.
    gone = secrets.token_urlsafe(32)
    async with http.get(running.url + "/issue",
                        params={"name": "session", "value": f"{gone}; Max-Age=0"}) as r:
        assert r.status == 200
    assert await running.record(gone) == {}


async def test_a_sign_in_handed_off_to_aiohttp_registers_its_session_too(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar()
    token = secrets.token_urlsafe(32)

    async def form() -> AsyncIterator[bytes]:
        yield b"user=ada"

    # A chunked upload is not the fast lane's: the aiohttp path relays the answer.
    async with http.post(running.url + "/issue", params={"name": "session", "value": token},
                         data=form()) as r:
        assert r.status == 200
        assert r.headers["Set-Cookie"].startswith(f"session={token}")

    async def registered() -> bool:
        return bool(await running.record(token))

    await wait_for(registered)


async def test_an_audit_line_never_carries_a_cookie_value_outside_the_grammar(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    running = await start_sidecar()
    value = "x" * 5000
    async with http.get(running.url + "/x", headers={"Cookie": f"session={value}"}) as r:
        assert r.status == 200
    assert not [rec for rec in caplog.records if "xxxxxxxx" in rec.getMessage()]
    assert await running.store.client.dbsize() == 0
    assert json.dumps(value) not in caplog.text
