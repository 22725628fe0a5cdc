"""Authz mode answers checks shaped exactly as Envoy's ext_authz (HTTP service) and nginx's
auth_request send them.

Neither proxy runs here, so each test sends the check request the proxy would: Envoy keeps the
original method, prefixes the path with ``path_prefix``, forwards the allowed headers (cookie,
authorization) with ``Content-Length: 0`` and its own ``x-envoy-*`` / ``x-forwarded-*`` headers;
nginx sends a bodiless subrequest to the auth location with the ``X-Original-URI`` and
``X-Original-Method`` headers its config sets.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import aiohttp
from sidecar_harness import RunningSidecar, StartSidecar, sid_of

from fixtures.sessions import plant

MIN = 60_000


def envoy_check(cookie: str | None, **extra: str) -> dict[str, str]:
    headers = {
        "Host": "shop.example.com",
        "Content-Length": "0",
        "x-forwarded-proto": "https",
        "x-forwarded-for": "198.51.100.4",
        "x-request-id": "6a1b7c52-6a1e-4c7d-9e3a-0f2c2d5a9b11",
        "x-envoy-expected-rq-timeout-ms": "250",
        "x-envoy-internal": "true",
    }
    if cookie:
        headers["cookie"] = cookie
    headers.update(extra)
    return headers


def nginx_check(cookie: str | None, uri: str, method: str = "GET", **extra: str) -> dict[str, str]:
    headers = {
        "Host": "127.0.0.1:8080",
        "X-Original-URI": uri,
        "X-Original-Method": method,
        "X-Forwarded-Proto": "https",
        "Connection": "close",
    }
    if cookie:
        headers["Cookie"] = cookie
    headers.update(extra)
    return headers


async def _expire(running: RunningSidecar, raw: str) -> None:
    await plant(running.store, sid_of(raw), created_ago_ms=20 * MIN, last_ago_ms=16 * MIN)


async def test_envoy_checks_are_allowed_with_the_remaining_time(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar(mode="authz", authz_path_prefix="/authz")
    await running.register("raw-e1")
    async with http.post(running.url + "/authz/api/orders?id=7",
                         headers=envoy_check("session=raw-e1")) as r:
        assert r.status == 200
        assert r.headers["Curfew-Idle-Remaining"] in ("899", "900"), "just registered"
        assert r.headers["Curfew-Absolute-Remaining"] in ("28799", "28800")
    assert (await running.record("raw-e1"))["w"] == "Deployment/shop/web"
    async with http.get(running.url + "/authz/", headers=envoy_check(None)) as r:
        assert r.status == 200
        assert "Curfew-Idle-Remaining" not in r.headers


async def test_envoy_relays_a_401_body_or_a_login_redirect_for_an_expired_session(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar(mode="authz", authz_path_prefix="/authz")
    await _expire(running, "raw-e2")
    async with http.post(running.url + "/authz/api/orders",
                         headers=envoy_check("session=raw-e2")) as r:
        assert r.status == 401
        assert await r.json() == {"error": "session_expired", "reason": "idle"}
        assert r.headers["Set-Cookie"].endswith("; Secure"), "the client came over https"
    await _expire(running, "raw-e3")
    async with http.get(running.url + "/authz/cart?item=3", allow_redirects=False,
                        headers=envoy_check("session=raw-e3", accept="text/html")) as r:
        assert r.status == 302
        assert parse_qs(urlsplit(r.headers["Location"]).query) == {
            "return_to": ["/cart?item=3"], "curfew_reason": ["idle"]}


async def test_excluded_paths_in_envoy_checks_do_not_count_as_activity(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar(mode="authz", authz_path_prefix="/authz")
    await plant(running.store, sid_of("raw-e4"), created_ago_ms=5 * MIN, last_ago_ms=2 * MIN)
    before = (await running.record("raw-e4"))["l"]
    async with http.get(running.url + "/authz/api/notifications/poll",
                        headers=envoy_check("session=raw-e4")) as r:
        assert r.status == 200
    assert (await running.record("raw-e4"))["l"] == before


async def test_nginx_auth_requests_are_allowed_or_denied_with_401_only(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar(mode="authz")
    await running.register("raw-n1")
    async with http.get(running.url + "/auth",
                        headers=nginx_check("session=raw-n1", "/cart?item=1")) as r:
        assert r.status == 200
        assert r.headers["Curfew-Idle-Remaining"] in ("899", "900")
    await _expire(running, "raw-n1")
    # nginx treats anything but 2xx, 401 and 403 as an error: a browser's redirect is a 401
    # that carries the target for the nginx config to redirect to.
    async with http.get(running.url + "/auth", allow_redirects=False,
                        headers=nginx_check("session=raw-n1", "/cart?item=1",
                                            Accept="text/html")) as r:
        assert r.status == 401
        assert r.headers["Curfew-Reason"] == "idle"
        redirect = urlsplit(r.headers["Curfew-Redirect"])
        assert parse_qs(redirect.query) == {"return_to": ["/cart?item=1"],
                                            "curfew_reason": ["idle"]}
        assert r.headers["Set-Cookie"].startswith("session=; Path=/; Max-Age=0")
    await _expire(running, "raw-n2")
    async with http.get(running.url + "/auth",
                        headers=nginx_check("session=raw-n2", "/api/orders", "POST")) as r:
        assert r.status == 401
        assert r.headers["Curfew-Reason"] == "idle"
        assert "Curfew-Redirect" not in r.headers
        assert r.headers["WWW-Authenticate"].startswith("Session")


async def test_nginx_checks_take_the_method_from_x_original_method(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar(mode="authz")
    await plant(running.store, sid_of("raw-n3"), created_ago_ms=5 * MIN, last_ago_ms=2 * MIN)
    before = (await running.record("raw-n3"))["l"]
    async with http.get(running.url + "/auth",
                        headers=nginx_check("session=raw-n3", "/cart", "OPTIONS")) as r:
        assert r.status == 200
    assert (await running.record("raw-n3"))["l"] == before, "OPTIONS is not activity"


async def test_authz_mode_serves_probes_and_the_session_endpoint_itself(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar(mode="authz", ops_listen=None)
    # Without an ops listener the app cannot register: the session is planted.
    await plant(running.store, sid_of("raw-n4"), created_ago_ms=MIN, last_ago_ms=0)
    async with http.get(running.url + "/healthz") as r:
        assert r.status == 200
    async with http.get(running.url + "/readyz") as r:
        assert r.status == 200
    async with http.get(running.url + "/.curfew/session",
                        headers={"Cookie": "session=raw-n4"}) as r:
        assert (await r.json())["idleRemainingSeconds"] in (899, 900)
