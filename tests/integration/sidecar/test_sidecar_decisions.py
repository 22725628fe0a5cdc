"""Every decision of the sidecar, against real Redis: expired sessions turned away the right way
for API clients and browsers, Audit mode, activity exclusions, status and keepalive."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from sidecar_harness import RunningSidecar, StartSidecar, audit_events, policy_doc, sid_of

from fixtures.sessions import plant

MIN = 60_000
JSON_ACCEPT = {"Accept": "application/json"}
BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8", "Sec-Fetch-Mode": "navigate"}


async def _expired(running: RunningSidecar, raw: str, *, idle: bool = True) -> None:
    """Plant a session that is past its idle (or absolute) limit."""
    if idle:
        await plant(running.store, sid_of(raw), created_ago_ms=20 * MIN, last_ago_ms=16 * MIN)
    else:
        await plant(running.store, sid_of(raw), created_ago_ms=481 * MIN, last_ago_ms=1 * MIN)


async def test_an_expired_api_request_gets_401_json_and_its_cookie_cleared(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    running = await start_sidecar()
    await _expired(running, "raw-idle")
    async with http.get(running.url + "/api/cart",
                        headers={"Cookie": "session=raw-idle", **JSON_ACCEPT}) as r:
        assert r.status == 401
        assert await r.json() == {"error": "session_expired", "reason": "idle"}
        assert r.headers["WWW-Authenticate"].startswith("Session realm=\"curfew\"")
        assert r.headers["Set-Cookie"].startswith("session=; Path=/; Max-Age=0")
        assert r.headers["Curfew-Reason"] == "idle"
    [event] = audit_events(caplog, "session_expired")
    assert (event["session"], event["reason"], event["enforced"]) == (
        sid_of("raw-idle"), "idle", True)


@pytest.mark.parametrize(
    ("method", "headers"),
    [
        ("GET", {"X-Requested-With": "XMLHttpRequest"}),
        ("POST", {"Accept": "text/html"}),
        ("GET", {"Accept": "*/*", "Sec-Fetch-Mode": "cors"}),
    ],
)
async def test_api_clients_are_never_redirected(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession, method: str,
    headers: dict[str, str],
) -> None:
    running = await start_sidecar()
    await _expired(running, "raw-api", idle=False)
    async with http.request(method, running.url + "/api/cart", allow_redirects=False,
                            headers={"Cookie": "session=raw-api", **headers}) as r:
        assert r.status == 401
        assert (await r.json())["reason"] == "absolute"


async def test_an_expired_browser_navigation_is_sent_to_login_and_back(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    running = await start_sidecar()
    await _expired(running, "raw-nav")
    async with http.get(running.url + "/cart?item=3", allow_redirects=False,
                        headers={"Cookie": "session=raw-nav", **BROWSER}) as r:
        assert r.status == 302
        location = urlsplit(r.headers["Location"])
        assert r.headers["Set-Cookie"].startswith("session=; Path=/; Max-Age=0")
    assert (location.scheme, location.netloc, location.path) == (
        "https", "login.example.com", "/sso")
    assert parse_qs(location.query) == {"return_to": ["/cart?item=3"], "curfew_reason": ["idle"]}
    [event] = audit_events(caplog, "reauthentication_redirect")
    assert event["session"] == sid_of("raw-nav")


async def test_a_scheme_relative_target_cannot_become_an_open_redirect(
    start_sidecar: StartSidecar,
) -> None:
    running = await start_sidecar()
    await _expired(running, "raw-open")
    host, port = running.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET //evil.example/phish HTTP/1.1\r\nHost: shop\r\n"
                 b"Cookie: session=raw-open\r\nAccept: text/html\r\nConnection: close\r\n\r\n")
    await writer.drain()
    head = (await reader.read()).decode()
    writer.close()
    assert head.startswith("HTTP/1.1 302")
    location = next(line.split(": ", 1)[1] for line in head.split("\r\n")
                    if line.lower().startswith("location:"))
    assert parse_qs(urlsplit(location).query) == {"return_to": ["/"], "curfew_reason": ["idle"]}


async def test_an_expired_session_is_deleted_with_the_apps_own_session(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    doc = policy_doc(store={"format": "connect-redis", "keyPrefix": "sess:",
                            "redisSecretRef": {"name": "r", "key": "url"},
                            "sessionKeySecretRef": {"name": "r", "key": "k"}})
    running = await start_sidecar(doc)
    client = running.store.client
    # express-session's own cookie: s:<uid-safe id>.<signature>, percent-encoded.
    app_id = "bW9ja2VkLXVpZC1zYWZlLTI0LWJ5dGVz"
    cookie = {"Cookie": f"session=s%3A{app_id}.c2lnbmF0dXJl", **JSON_ACCEPT}
    await client.set(f"sess:{app_id}", json.dumps({"cookie": {}, "user": "ada"}))
    await _expired(running, app_id)
    async with http.get(running.url + "/x", headers=cookie) as r:
        assert r.status == 401
    assert await client.exists(f"sess:{app_id}") == 0
    assert (await running.record(app_id))["x"] == "idle"  # a tombstone: replays stay expired
    async with http.get(running.url + "/x", headers=cookie) as r:
        assert r.status == 401


async def test_audit_mode_lets_an_expired_session_through_and_flags_it(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    running = await start_sidecar(policy_doc(enforcement="Audit"))
    await _expired(running, "raw-audit")
    async with http.get(running.url + "/cart", headers={"Cookie": "session=raw-audit",
                                                         **BROWSER}) as r:
        assert r.status == 200
        assert r.headers["Curfew-Audit-Expired"] == "idle"
        assert "Set-Cookie" not in r.headers
        echo = await r.json()
    assert ["Curfew-Audit-Expired", "idle"] in echo["headers"]
    [event] = audit_events(caplog, "session_expired")
    assert event["enforced"] is False
    assert event["reason"] == "idle"


@pytest.mark.parametrize(
    ("method", "path", "counts"),
    [
        ("GET", "/cart", True),
        ("GET", "/healthz", False),
        ("GET", "/api/notifications/poll", False),
        ("OPTIONS", "/cart", False),
        ("HEAD", "/cart", False),
    ],
)
async def test_only_activity_moves_the_idle_timer(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession, method: str, path: str,
    counts: bool,
) -> None:
    running = await start_sidecar()
    await plant(running.store, sid_of("raw-act"), created_ago_ms=5 * MIN, last_ago_ms=2 * MIN)
    before = (await running.record("raw-act"))["l"]
    async with http.request(method, running.url + path,
                            headers={"Cookie": "session=raw-act"}) as r:
        assert r.status == 200
    after = (await running.record("raw-act"))["l"]
    assert (after != before) is counts


async def test_the_status_endpoint_reports_without_extending_the_session(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar()
    await plant(running.store, sid_of("raw-st"), created_ago_ms=14 * MIN, last_ago_ms=14 * MIN)
    before = await running.record("raw-st")
    async with http.get(running.url + "/.curfew/session",
                        headers={"Cookie": "session=raw-st"}) as r:
        assert r.status == 200
        body = await r.json()
    assert 55 <= body["idleRemainingSeconds"] <= 60
    assert body["idleRemainingMilliseconds"] // 1000 == body["idleRemainingSeconds"]
    assert body["absoluteRemainingMilliseconds"] // 1000 == body["absoluteRemainingSeconds"]
    assert body["warning"] is True
    assert body["warningReason"] == "idle"
    assert body["warningLeadSeconds"] == 120
    assert await running.record("raw-st") == before

    async with http.post(running.url + "/.curfew/keepalive",
                         headers={"Cookie": "session=raw-st", "Curfew-Keepalive": "1"}) as r:
        assert r.status == 200
        body = await r.json()
    assert body["idleRemainingSeconds"] >= 899
    assert body["warning"] is False
    assert (await running.record("raw-st"))["l"] != before["l"]


async def test_the_sidecars_own_paths_are_never_forwarded(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar()
    async with http.get(running.url + "/.curfew/session") as r:
        assert r.status == 401
        assert await r.json() == {"error": "no_session"}
    async with http.get(running.url + "/.curfew/anything-else") as r:
        assert r.status == 404
    await running.issue("raw-gone")
    async with http.get(running.url + "/.curfew/session",
                        headers={"Cookie": "session=raw-gone", **JSON_ACCEPT}) as r:
        assert r.status == 200
    await running.store.expire(sid_of("raw-gone"))
    async with http.get(running.url + "/.curfew/session",
                        headers={"Cookie": "session=raw-gone", **BROWSER}) as r:
        assert r.status == 401, "the status endpoint answers like an API, never redirects"


async def test_bearer_token_sessions_are_read_from_the_header(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar(policy_doc(
        session={"header": "Authorization", "headerPrefix": "Bearer "}))
    async with http.get(running.url + "/api", headers={"Authorization": "Bearer tok-1"}) as r:
        assert "Curfew-Idle-Remaining" not in r.headers, "a token the app never issued"
    await running.issue("tok-1", header="Curfew-Session-Issued", prefix="Bearer ")
    async with http.get(running.url + "/api", headers={"Authorization": "Bearer tok-1"}) as r:
        assert r.headers["Curfew-Idle-Remaining"] in ("899", "900")
        echo = await r.json()
    assert ["Authorization", "Bearer tok-1"] in echo["headers"]
    await running.store.expire(sid_of("tok-1"))
    async with http.get(running.url + "/api", headers={"Authorization": "Bearer tok-1"}) as r:
        assert r.status == 401
        assert r.headers["WWW-Authenticate"].startswith('Bearer realm="curfew"')
        assert "Set-Cookie" not in r.headers
    async with http.get(running.url + "/api", headers={"Authorization": "Basic dTpw"}) as r:
        assert r.status == 200
        assert "Curfew-Idle-Remaining" not in r.headers


async def test_metrics_count_decisions_and_show_the_config_hash(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar()
    await _expired(running, "raw-m")
    await running.issue("raw-new")
    for cookie in ("session=raw-new", "session=raw-new", "session=raw-m", "theme=x",
                   "session=never-issued", "session=" + "x" * 5000):
        async with http.get(running.url + "/x", headers={"Cookie": cookie, **JSON_ACCEPT}):
            pass
    async with http.get(running.ops_url + "/metrics") as r:
        text = await r.text()
    assert 'curfew_sidecar_requests_total{action="registered",decision="issued"} 1.0' in text
    assert 'curfew_sidecar_requests_total{action="forwarded",decision="allowed"} 2.0' in text
    assert 'curfew_sidecar_requests_total{action="rejected",decision="idle"} 1.0' in text
    # The sign-in carried no session; neither does a value outside the grammar.
    assert 'curfew_sidecar_requests_total{action="forwarded",decision="none"} 2.0' in text
    assert 'curfew_sidecar_requests_total{action="forwarded",decision="unknown"} 1.0' in text
    assert 'curfew_sidecar_requests_total{action="forwarded",decision="invalid"} 1.0' in text
    assert "curfew_sidecar_added_latency_seconds_count 7.0" in text
    assert f'hash="{running.sidecar.watcher.policy.hash}"' in text
    assert "curfew_sidecar_config_valid 1.0" in text


async def test_a_session_past_its_renewal_interval_is_flagged_for_the_app(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar(policy_doc(timeouts={
        "idleSeconds": 900, "absoluteSeconds": 28800, "renewalSeconds": 3600}))
    await plant(running.store, sid_of("raw-old"), created_ago_ms=61 * MIN, last_ago_ms=1 * MIN)
    async with http.get(running.url + "/x", headers={"Cookie": "session=raw-old"}) as r:
        assert r.headers["Curfew-Renewal-Due"] == "true"
        assert ["Curfew-Renewal-Due", "true"] in (await r.json())["headers"]
    async with http.get(running.url + "/x", headers={"Cookie": "session=raw-young"}) as r:
        assert "Curfew-Renewal-Due" not in r.headers
