"""A ``curfew``-format record only for a session the app issued, in every mode and session
transport (issue 13, item 5): header tokens and authz checks of strangers leave the store as it
was and cannot trip the purge's cap; a token the app issues (its answer's session header or
``Curfew-Session-Issued``, or ``POST /sessions/register`` on the ops port) is then enforced.

Real sidecars, the real echo app, a real Redis and the real ``curfew purge`` on loopback.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import secrets
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sidecar_harness import RunningSidecar, StartSidecar, policy_doc, sid_of, wait_for

from fixtures.purge import curfew_purge, purge_config, write_config
from fixtures.sessions import MIN, plant

API = {"Accept": "application/json"}
TOKEN_HEADER = {"header": "X-Auth-Token"}
SHORT = {"idleSeconds": 1, "absoluteSeconds": 600}
"""Timeouts under which a session idles out while the test waits."""


async def plant_ten(running: RunningSidecar) -> int:
    """Ten real sessions, one of them expired (a tenth, under a cap of a half); the key count."""
    for n in range(10):
        await plant(running.store, sid_of(f"real-{n}"), created_ago_ms=60 * MIN,
                    last_ago_ms=(20 if n == 0 else 1) * MIN)
    return int(await running.store.client.dbsize())


def purge_ends_ok(tmp_path: Path, redis_url: str) -> None:
    run = curfew_purge(write_config(tmp_path, purge_config(max_fraction=0.5)), redis_url)
    assert run.summary["outcome"] == "ok", run.summary
    assert run.summary["scanned"] == 10, "only the app's sessions have records"
    assert run.summary["expired"]["idle"] == 1


async def registered(running: RunningSidecar, raw: str) -> None:
    async def has() -> bool:
        return bool(await running.record(raw))

    await wait_for(has)


# --- strangers ---------------------------------------------------------------------------------


async def test_300_random_header_tokens_create_nothing_and_the_purge_after_them_ends_ok(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession, tmp_path: Path, redis_url: str
) -> None:
    running = await start_sidecar(policy_doc(session=TOKEN_HEADER))
    before = await plant_ten(running)
    for n in range(300):
        # Half on fresh connections, half pipelined on one: both lanes of the main port.
        extra = {"Connection": "close"} if n % 2 else {}
        token = secrets.token_urlsafe(32)
        async with http.get(running.url + "/api",
                            headers={"X-Auth-Token": token, **extra, **API}) as r:
            assert r.status == 200
            assert "Curfew-Idle-Remaining" not in r.headers, "a token the app never issued"
    assert await running.store.client.dbsize() == before, "a stranger's token left a key"
    purge_ends_ok(tmp_path, redis_url)


def envoy(cookie: str) -> dict[str, str]:
    return {"Cookie": cookie, "Content-Length": "0", "x-envoy-internal": "true", **API}


def nginx(cookie: str, uri: str) -> dict[str, str]:
    return {"Cookie": cookie, "X-Original-URI": uri, "X-Original-Method": "POST", **API}


async def test_300_random_authz_checks_create_nothing_and_the_purge_after_them_ends_ok(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession, tmp_path: Path, redis_url: str
) -> None:
    running = await start_sidecar(mode="authz", authz_path_prefix="/authz")
    before = await plant_ten(running)
    for n in range(300):
        cookie = f"session={secrets.token_urlsafe(32)}"
        if n % 2:
            check = http.post(running.url + "/authz/api/orders", headers=envoy(cookie))
        else:
            check = http.get(running.url + "/auth", headers=nginx(cookie, f"/cart?n={n}"))
        async with check as r:
            assert r.status == 200, "an unknown session passes unjudged"
            assert "Curfew-Idle-Remaining" not in r.headers
    assert await running.store.client.dbsize() == before, "a stranger's check left a key"
    purge_ends_ok(tmp_path, redis_url)


# --- what the app issues is enforced -------------------------------------------------------------


async def test_a_header_token_the_app_issues_is_enforced_until_it_idles_out(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar(policy_doc(session=TOKEN_HEADER, timeouts=SHORT))
    token = secrets.token_urlsafe(32)
    # As Spring's HeaderHttpSessionIdResolver: the sign-in answer carries X-Auth-Token.
    async with http.post(running.url + "/issue",
                         params={"header": "X-Auth-Token", "value": token}) as r:
        assert r.status == 200
        assert r.headers["X-Auth-Token"] == token, "the app's own header reaches its client"
    await registered(running, token)
    async with http.get(running.url + "/api", headers={"X-Auth-Token": token, **API}) as r:
        assert r.status == 200
        assert r.headers["Curfew-Idle-Remaining"] in ("0", "1")
    await asyncio.sleep(1.2)
    async with http.get(running.url + "/api", headers={"X-Auth-Token": token, **API}) as r:
        assert r.status == 401
        assert r.headers["Curfew-Reason"] == "idle"
    # Spring's sign-out answers an empty X-Auth-Token: nothing to register.
    async with http.post(running.url + "/issue",
                         params={"header": "X-Auth-Token", "value": ""}) as r:
        assert r.status == 200
    assert await running.record("") == {}


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


@pytest.mark.parametrize("lane", ["fast lane", "hand-off"])
async def test_curfew_session_issued_registers_the_token_and_never_reaches_the_client(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession, lane: str
) -> None:
    running = await start_sidecar()
    token = secrets.token_urlsafe(32)
    query = {"header": "Curfew-Session-Issued", "value": token}
    # A chunked upload is not the fast lane's: aiohttp's path relays that answer.
    body = _chunks(b"user=ada") if lane == "hand-off" else None
    async with http.post(running.url + "/issue", params=query, data=body) as r:
        assert r.status == 200
        assert "Curfew-Session-Issued" not in r.headers
        assert token not in json.dumps(list(r.headers.items()))
        assert await r.text() == "signed in"
    await registered(running, token)
    async with http.get(running.url + "/x", headers={"Cookie": f"session={token}", **API}) as r:
        assert r.status == 200
        assert "Curfew-Idle-Remaining" in r.headers


async def test_curfew_session_issued_is_removed_in_raw_bytes_and_for_every_format(
    start_sidecar: StartSidecar, upstream: str
) -> None:
    # connect-redis sessions are known by the app's key: the header registers nothing there,
    # and is removed all the same.
    running = await start_sidecar(policy_doc(store={
        "format": "connect-redis", "keyPrefix": "sess:",
        "redisSecretRef": {"name": "r", "key": "url"},
        "sessionKeySecretRef": {"name": "r", "key": "k"}}))
    token = secrets.token_urlsafe(18)
    reader, writer = await asyncio.open_connection("127.0.0.1", int(running.url.rsplit(":")[-1]))
    writer.write(b"GET /issue?header=curfew-SESSION-issued&value=%b HTTP/1.1\r\nHost: shop\r\n"
                 b"Connection: close\r\n\r\n" % token.encode())
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200")
    assert b"session-issued" not in answer.lower()
    assert token.encode() not in answer
    assert await running.store.client.dbsize() == 0


async def test_a_registered_authz_session_is_enforced_until_it_idles_out(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar(policy_doc(timeouts=SHORT), mode="authz")
    token = secrets.token_urlsafe(32)
    cookie = f"session={token}"
    async with http.get(running.url + "/auth", headers=nginx(cookie, "/cart")) as r:
        assert (r.status, r.headers.get("Curfew-Idle-Remaining")) == (200, None)
    assert await running.record(token) == {}, "checks create nothing"
    register = running.ops_url + "/sessions/register"
    async with http.post(register, headers={"Cookie": cookie}) as r:
        assert r.status == 201
        assert await r.json() == {"registered": "new"}
    async with http.post(register, headers={"Cookie": cookie}) as r:
        assert r.status == 200, "registering twice creates nothing more"
        assert await r.json() == {"registered": "allowed"}
    async with http.get(running.url + "/auth", headers=nginx(cookie, "/cart")) as r:
        assert r.status == 200
        assert r.headers["Curfew-Idle-Remaining"] in ("0", "1")
    await asyncio.sleep(1.2)
    async with http.get(running.url + "/auth", headers=nginx(cookie, "/cart")) as r:
        assert (r.status, r.headers["Curfew-Reason"]) == (401, "idle")
    async with http.post(register, headers={"Cookie": cookie}) as r:
        assert r.status == 409, "an ended session is not revived by registering it again"
        assert (await r.json())["error"] == "session_expired"


async def test_a_bearer_token_is_registered_in_the_policys_header(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    doc = policy_doc(session={"header": "Authorization", "headerPrefix": "Bearer "})
    running = await start_sidecar(doc, mode="authz", authz_path_prefix="/authz")
    token = secrets.token_urlsafe(32)
    await running.register(f"Bearer {token}", header="Authorization")
    async with http.post(running.url + "/authz/api",
                         headers={"Authorization": f"Bearer {token}", **API}) as r:
        assert r.status == 200
        assert "Curfew-Idle-Remaining" in r.headers


# --- the register endpoint is the ops port's only ---------------------------------------------


async def test_the_register_path_on_the_proxys_client_port_is_the_apps(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar()
    token = secrets.token_urlsafe(32)
    async with http.post(running.url + "/sessions/register",
                         headers={"Cookie": f"session={token}", **API}) as r:
        assert r.status == 200
        assert (await r.json())["target"] == "/sessions/register", "the app answered"
    assert await running.store.client.dbsize() == 0, "nothing registered"


@pytest.mark.parametrize("prefix", ["", "/authz"])
async def test_the_register_path_on_the_authz_client_port_is_a_check(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession, prefix: str
) -> None:
    running = await start_sidecar(mode="authz", authz_path_prefix=prefix)
    token = secrets.token_urlsafe(32)
    async with http.post(running.url + "/sessions/register",
                         headers={"Cookie": f"session={token}", **API}) as r:
        if prefix:
            assert r.status == 404, "outside the checks' prefix"
        else:
            assert r.status == 200, "the check of an unknown session: allowed, unjudged"
            assert "Curfew-Idle-Remaining" not in r.headers
        assert b"registered" not in await r.read()
    assert await running.store.client.dbsize() == 0, "nothing registered"


# --- hostile register requests ----------------------------------------------------------------

HOSTILE: list[tuple[str, dict[str, Any], list[tuple[str, str]], int, str]] = [
    ("a token outside the grammar", TOKEN_HEADER, [("X-Auth-Token", "a b\tc")], 400,
     "invalid_session"),
    ("a huge token", {}, [("Cookie", "session=" + "a" * 5000)], 400, "invalid_session"),
    ("a head line past aiohttp's limit", {}, [("Cookie", "session=" + "a" * 9000)], 400, ""),
    ("two different session cookies", {}, [("Cookie", "session=a1; session=a2")], 400,
     "ambiguous_session"),
    ("a session cookie in two fields", {}, [("Cookie", "session=a1"), ("Cookie", "x=1")], 400,
     "ambiguous_session"),
    ("a session cookie spelled two ways", {}, [("Cookie", 'session="a\\141"')], 400,
     "ambiguous_session"),
    ("two different tokens", TOKEN_HEADER, [("X-Auth-Token", "a1"), ("X-Auth-Token", "a2")],
     400, "ambiguous_session"),
    ("a token with a comma", TOKEN_HEADER, [("X-Auth-Token", "a1, a2")], 400,
     "invalid_session"),
    ("no session in the cookie", {}, [("Cookie", "theme=dark")], 400, "no_session"),
    ("a bearer prefix missing", {"header": "Authorization", "headerPrefix": "Bearer "},
     [("Authorization", "Basic dTpw")], 400, "no_session"),
]


@pytest.mark.parametrize(("case", "session", "fields", "status", "error"), HOSTILE,
                         ids=[h[0] for h in HOSTILE])
async def test_a_hostile_register_request_gets_a_clear_400_and_writes_nothing(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession, case: str,
    session: dict[str, Any], fields: list[tuple[str, str]], status: int, error: str
) -> None:
    running = await start_sidecar(policy_doc(session=session) if session else None,
                                  mode="authz")
    async with http.post(running.ops_url + "/sessions/register", headers=fields) as r:
        assert r.status == status, case
        body = await r.read()
    if error:
        answer = json.loads(body)
        assert answer["error"] == error, case
        assert answer["detail"], "it says why"
    assert b"a1" not in body, "the token is never echoed"
    assert b"aaaa" not in body
    assert await running.store.client.dbsize() == 0, case


async def test_register_takes_the_token_from_the_field_never_a_body_nor_a_get(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar(mode="authz")
    register = running.ops_url + "/sessions/register"
    token = secrets.token_urlsafe(32)
    async with http.post(register, data=json.dumps({"token": token}).encode(),
                         headers={"Content-Type": "application/json"}) as r:
        assert r.status == 400
        assert (await r.json())["error"] == "body_not_read"
    async with http.post(register, data=b"x" * (4 * 1024 * 1024),
                         headers={"Cookie": f"session={token}"}) as r:
        assert r.status == 400, "a huge body is not read, and registers nothing"
        assert (await r.json())["error"] == "body_not_read"
    async with http.get(register, headers={"Cookie": f"session={token}"}) as r:
        assert (r.status, r.headers["Allow"]) == (405, "POST")
    assert await running.store.client.dbsize() == 0


def outside_address() -> str | None:
    """An address of this machine that is not loopback, if it has one: the source address of
    a route outwards (a UDP socket's connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("198.51.100.1", 9))
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if ipaddress.ip_address(address).is_loopback else address


async def test_register_from_outside_the_pod_is_forbidden(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    address = outside_address()
    if address is None:
        pytest.skip("this machine has no address but loopback")
    # Listening on every address, as the ops port does for the kubelet and Prometheus.
    running = await start_sidecar(mode="authz", ops_listen="0.0.0.0:0")
    port = running.ops_url.rsplit(":", 1)[1]
    token = secrets.token_urlsafe(32)
    async with http.post(f"http://{address}:{port}/sessions/register",
                         headers={"Cookie": f"session={token}"}) as r:
        assert r.status == 403
        assert (await r.json())["error"] == "register_forbidden"
    async with http.get(f"http://{address}:{port}/healthz") as r:
        assert r.status == 200, "the probes still answer there"
    assert await running.store.client.dbsize() == 0
    await running.register(token)  # over loopback


async def test_an_app_format_has_nothing_to_register(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar(policy_doc(store={
        "format": "connect-redis", "keyPrefix": "sess:",
        "redisSecretRef": {"name": "r", "key": "url"},
        "sessionKeySecretRef": {"name": "r", "key": "k"}}), mode="authz")
    async with http.post(running.ops_url + "/sessions/register",
                         headers={"Cookie": "session=s%3Aabc.def"}) as r:
        assert r.status == 400
        assert (await r.json())["error"] == "not_registered"
    assert await running.store.client.dbsize() == 0
