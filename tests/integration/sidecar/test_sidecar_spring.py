"""Spring Session through the sidecar, on records the JDK wrote (``fixtures.apps.spring``): the
base64 cookie and the raw ``X-Auth-Token`` sign in; idle and absolute expiry remove the whole
session, every key Spring keeps beside the hash included, in each of Spring's layouts."""

from __future__ import annotations

import base64
import uuid

import aiohttp
import pytest
from sidecar_harness import RunningSidecar, StartSidecar, policy_doc, sid_of
from test_sidecar_store_keys import API, store_section

from curfew.sessions import jdk, keys
from fixtures.apps.spring import NAMESPACE, SpringRecord, SpringWriter
from fixtures.sessions import MIN, plant

COOKIE = {"cookieName": "SESSION"}
HEADER = {"header": "X-Auth-Token"}


def cookie_of(raw_id: str) -> dict[str, str]:
    """The SESSION cookie as DefaultCookieSerializer writes it: base64 of the id."""
    return {"Cookie": f"SESSION={base64.b64encode(raw_id.encode()).decode()}", **API}


async def spring_sidecar(start_sidecar: StartSidecar, session: dict[str, str]) -> RunningSidecar:
    return await start_sidecar(policy_doc(
        session=session, store=store_section("spring-session", NAMESPACE)))


async def spring_keys(running: RunningSidecar) -> set[bytes]:
    return {k async for k in running.store.client.scan_iter(match=f"{NAMESPACE}*")}


async def index_members(running: RunningSidecar, principal: str, layout: str) -> set[bytes]:
    if layout == "reactive":
        key = SpringRecord("", 0, 0, principal=principal).reactive_index.encode()
    else:
        key = keys.spring_principal_index_key_bytes(NAMESPACE, principal)
    return set(await running.store.client.smembers(key))


async def test_a_spring_cookie_in_base64_signs_in_and_joins_the_apps_session(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession, spring_writer: SpringWriter,
    redis_url: str,
) -> None:
    running = await spring_sidecar(start_sidecar, COOKIE)
    raw_id = str(uuid.uuid4())
    now = await running.store.server_time_ms()
    spring_writer.write(redis_url, SpringRecord(raw_id, now - MIN, now, principal="alice",
                                                principal_kind="attr"))
    async with http.get(running.url + "/x", headers=cookie_of(raw_id)) as r:
        assert r.status == 200
        assert "Curfew-Idle-Remaining" in r.headers
    assert (await running.record(raw_id))["c"], "the record is keyed by the app's own id"
    async with http.get(running.url + "/x", headers={"Cookie": f"SESSION={raw_id}", **API}) as r:
        assert "Curfew-Idle-Remaining" not in r.headers, "a raw id is no base64 cookie"


async def test_a_raw_x_auth_token_signs_in(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession, spring_writer: SpringWriter,
    redis_url: str,
) -> None:
    running = await spring_sidecar(start_sidecar, HEADER)
    raw_id = str(uuid.uuid4())
    now = await running.store.server_time_ms()
    spring_writer.write(redis_url, SpringRecord(raw_id, now - MIN, now))
    async with http.get(running.url + "/x", headers={"X-Auth-Token": raw_id, **API}) as r:
        assert r.status == 200
        assert "Curfew-Idle-Remaining" in r.headers
    assert (await running.record(raw_id))["c"]


PRINCIPALS = {
    "NUL and an emoji in the explicit attribute": ("attr", "ali\x00ce\U0001F600"),
    "a Hangul name after NUL in Spring Security's User": ("context-user", "\x00\ud55c\uae00"),
    "a String principal in Spring Security's context": ("context-string", "bob"),
}


@pytest.mark.parametrize("layout", ["indexed", "sorted", "reactive"])
@pytest.mark.parametrize(("kind", "principal"), PRINCIPALS.values(), ids=PRINCIPALS.keys())
@pytest.mark.parametrize(("expiry", "created_ago", "last_ago"),
                         [("idle", 20 * MIN, 16 * MIN), ("absolute", 500 * MIN, 1 * MIN)])
async def test_expiry_through_the_sidecar_removes_the_whole_spring_session(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession, spring_writer: SpringWriter,
    redis_url: str, layout: str, kind: str, principal: str, expiry: str, created_ago: int,
    last_ago: int,
) -> None:
    running = await spring_sidecar(start_sidecar, COOKIE)
    doomed, other_tab, stranger = (str(uuid.uuid4()) for _ in range(3))
    now = await running.store.server_time_ms()
    spring_writer.write(
        redis_url,
        SpringRecord(doomed, now - created_ago, now - last_ago, principal=principal,
                     principal_kind=kind, layout=layout),
        # The same user's other session, and someone else's: both stay, whole.
        SpringRecord(other_tab, now - MIN, now, principal=principal, principal_kind=kind,
                     layout=layout),
        SpringRecord(stranger, now - MIN, now, principal="zoe", principal_kind="attr",
                     layout=layout),
    )
    async with http.get(running.url + "/x", headers=cookie_of(doomed)) as r:
        assert r.status == 200
    before = await spring_keys(running)
    await plant(running.store, sid_of(doomed), created_ago_ms=created_ago, last_ago_ms=last_ago)
    async with http.get(running.url + "/x", headers=cookie_of(doomed)) as r:
        assert r.status == 401
        assert (await r.json())["reason"] == expiry
    after = await spring_keys(running)
    gone = {k.decode("utf-8", "replace") for k in before - after}
    assert f"{NAMESPACE}sessions:{doomed}" in gone
    assert f"{NAMESPACE}sessions:expires:{doomed}" in gone
    assert all(other_tab not in k and stranger not in k for k in gone)
    client = running.store.client
    assert not await client.exists(f"{NAMESPACE}sessions:{doomed}"), "Spring finds no session"
    assert await index_members(running, principal, layout) == {jdk.write_string(other_tab)}
    if layout == "reactive":
        assert not await client.exists(f"{NAMESPACE}sessions:{doomed}:idx")
        assert await client.exists(f"{NAMESPACE}sessions:{other_tab}:idx")
    members: set[bytes] = set()
    if layout in ("sorted", "reactive"):
        members = set(await client.zrange(f"{NAMESPACE}sessions:expirations", 0, -1))
        assert members == {jdk.write_string(other_tab), jdk.write_string(stranger)}
    else:
        async for key in client.scan_iter(match=f"{NAMESPACE}expirations:*"):
            members |= set(await client.smembers(key))
        assert members == {jdk.write_string("expires:" + s) for s in (other_tab, stranger)}
    async with http.get(running.url + "/x", headers=cookie_of(doomed)) as r:
        assert r.status == 401, "a replayed cookie stays expired"


async def test_expiry_removes_a_spring_session_of_the_non_indexed_repository(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession, spring_writer: SpringWriter,
    redis_url: str,
) -> None:
    running = await spring_sidecar(start_sidecar, HEADER)
    raw_id = str(uuid.uuid4())
    now = await running.store.server_time_ms()
    spring_writer.write(redis_url, SpringRecord(raw_id, now - 20 * MIN, now - 16 * MIN,
                                                principal="carol", principal_kind="attr",
                                                layout="plain"))
    assert await spring_keys(running) == {f"{NAMESPACE}sessions:{raw_id}".encode()}
    async with http.get(running.url + "/x", headers={"X-Auth-Token": raw_id, **API}) as r:
        assert r.status == 200
    await plant(running.store, sid_of(raw_id), created_ago_ms=20 * MIN, last_ago_ms=16 * MIN)
    async with http.get(running.url + "/x", headers={"X-Auth-Token": raw_id, **API}) as r:
        assert r.status == 401
    assert await spring_keys(running) == set()
