"""The sidecar's own ``/.curfew/`` paths, as an attacker spells them: a target that only decodes
or normalises to (or through) ``/.curfew/`` is an app request whose session is checked, in
authz mode (nginx's and Envoy's check shapes) and in proxy mode (fast lane and hand-off); and a
keepalive is honoured only from the page's own origin.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sidecar_harness import RunningSidecar, StartSidecar, sid_of
from test_sidecar_nginx import Nginx
from yarl import URL

from curfew.sidecar.reserved import is_reserved_target
from fixtures.redis_servers import free_port
from fixtures.sessions import plant

MIN = 60_000
BYPASSES = [
    "/.curfew/../admin",
    "/%2Ecurfew/../admin",
    "/.curfew/%2E%2E/admin",
    "/.curfew/%2e%2e%2fadmin",
    "/.curfew/..%5cadmin",
    "/.curfew/..;/admin",
    "/.curfew//../admin",
]


async def _expired(running: RunningSidecar, raw: str) -> None:
    await plant(running.store, sid_of(raw), created_ago_ms=20 * MIN, last_ago_ms=16 * MIN)


def _raw(base: str, target: str) -> URL:
    """The URL with its target sent exactly as written (no client-side normalisation)."""
    return URL(base + target, encoded=True)


@pytest.mark.parametrize("target", BYPASSES)
async def test_nginx_checks_of_targets_that_normalise_out_of_the_prefix_check_the_session(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession, target: str
) -> None:
    running = await start_sidecar(mode="authz")
    await _expired(running, "raw-np")
    async with http.get(running.url + "/auth", headers={
        "X-Original-URI": target, "X-Original-Method": "GET", "Cookie": "session=raw-np",
        "Accept": "application/json",
    }) as r:
        assert r.status == 401, "the expired session was not checked"
        assert r.headers["Curfew-Reason"] == "idle"
    assert (await running.record("raw-np"))["x"] == "idle", "the session was ended, not skipped"


@pytest.mark.parametrize("target", BYPASSES)
async def test_envoy_checks_of_targets_that_normalise_out_of_the_prefix_check_the_session(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession, target: str
) -> None:
    running = await start_sidecar(mode="authz", authz_path_prefix="/authz")
    await _expired(running, "raw-ep")
    async with http.post(_raw(running.url, "/authz" + target), headers={
        "Cookie": "session=raw-ep", "Content-Length": "0", "x-forwarded-proto": "https",
    }) as r:
        assert r.status == 401, "the expired session was not checked"
        assert await r.json() == {"error": "session_expired", "reason": "idle"}


async def test_checks_of_the_sidecars_own_canonical_paths_still_pass(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar(mode="authz", authz_path_prefix="/authz")
    await _expired(running, "raw-cp")
    # The endpoint itself judges the session when the request reaches it.
    async with http.get(running.url + "/authz/.curfew/session",
                        headers={"Cookie": "session=raw-cp"}) as r:
        assert r.status == 200
    async with http.get(running.url + "/auth", headers={
        "X-Original-URI": "/.curfew/session?x=1", "Cookie": "session=raw-cp"}) as r:
        assert r.status == 200


@pytest.mark.parametrize("target", BYPASSES)
@pytest.mark.parametrize("handed_off", [False, True], ids=["fast lane", "hand-off"])
async def test_proxied_targets_that_normalise_out_of_the_prefix_are_judged_as_app_requests(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession, target: str, handed_off: bool
) -> None:
    running = await start_sidecar()
    await _expired(running, "raw-pp")
    await running.issue("raw-pp2")

    async def chunks() -> AsyncIterator[bytes]:
        yield b"{}"

    # A chunked body is not the fast lane's: aiohttp serves the request.
    async with http.post(_raw(running.url, target), data=chunks() if handed_off else b"{}",
                         headers={"Cookie": "session=raw-pp", "Accept": "application/json"}) as r:
        assert r.status == 401
        assert await r.json() == {"error": "session_expired", "reason": "idle"}
    # A live session reaches the app with the target as the client sent it.
    async with http.get(_raw(running.url, target), headers={"Cookie": "session=raw-pp2"}) as r:
        assert r.status == 200
        assert (await r.json())["target"] == target
        assert r.headers["Curfew-Idle-Remaining"] in ("899", "900")


# --- keepalive ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["proxy", "authz"])
async def test_a_cross_site_keepalive_is_refused_and_extends_nothing(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession, mode: str
) -> None:
    running = await start_sidecar(mode=mode)
    await plant(running.store, sid_of("raw-k1"), created_ago_ms=14 * MIN, last_ago_ms=14 * MIN)
    before = await running.record("raw-k1")
    forged = [
        # What a form or a no-cors fetch on another site sends: a simple request.
        {"Content-Type": "text/plain", "Origin": "https://evil.example",
         "Sec-Fetch-Site": "cross-site"},
        {"Content-Type": "text/plain"},
        # The header alone, from another origin (a browser would have needed a preflight).
        {"Curfew-Keepalive": "1", "Origin": "https://evil.example"},
        {"Curfew-Keepalive": "1", "Sec-Fetch-Site": "cross-site"},
        {"Curfew-Keepalive": "1", "Sec-Fetch-Site": "same-site"},
        {"Curfew-Keepalive": "1", "Origin": "null"},
    ]
    for headers in forged:
        async with http.post(running.url + "/.curfew/keepalive", data=b"x", headers={
            "Cookie": "session=raw-k1", **headers}) as r:
            assert r.status == 403, headers
            assert await r.json() == {"error": "keepalive_forbidden"}
    assert await running.record("raw-k1") == before


async def test_a_same_origin_keepalive_with_the_header_extends_the_session(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar()
    await plant(running.store, sid_of("raw-k2"), created_ago_ms=14 * MIN, last_ago_ms=14 * MIN)
    before = await running.record("raw-k2")
    host = URL(running.url).raw_authority
    async with http.post(running.url + "/.curfew/keepalive", headers={
        "Cookie": "session=raw-k2", "Curfew-Keepalive": "1", "Origin": f"http://{host}",
        "Sec-Fetch-Site": "same-origin",
    }) as r:
        assert r.status == 200
        assert (await r.json())["idleRemainingSeconds"] >= 899
    assert (await running.record("raw-k2"))["l"] != before["l"]


# --- against what a real nginx serves -------------------------------------------------------


@pytest.fixture(scope="module")
def nginx_uri() -> Iterator[Callable[[str], str | None]]:
    """``nginx_uri(target)``: the normalised path (``$uri``) a real nginx takes a target for,
    or None when nginx refuses it."""
    if shutil.which("nginx") is None:
        pytest.skip("nginx is not installed (make system-deps)")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="curfew-nginx-") as tmp:
        nginx = Nginx(Path(tmp), f"""
server {{
    listen 127.0.0.1:{port};
    location / {{ return 200 "$uri"; }}
}}""")

        def ask(target: str) -> str | None:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                          .encode("latin-1"))
                answer = b""
                while chunk := s.recv(65536):
                    answer += chunk
            head, _, body = answer.partition(b"\r\n\r\n")
            return body.decode("latin-1") if head.startswith(b"HTTP/1.1 200") else None

        deadline = time.monotonic() + 10
        while True:
            try:
                ask("/")
                break
            except OSError:
                assert time.monotonic() < deadline, "nginx never came up"
                time.sleep(0.05)
        yield ask
        nginx.stop()


_PLAIN = ["session", "admin", "a.b", ".a", "a..", "~x", "@", "x=1", ".curfew"]
_TRICKY = [
    "", ".", "..", "...", "%2e", "%2E%2E", ".%2e", "a%2fb", "%2F", "%252e%252e", "%25", "a%5cb",
    "a\\b", "..\\", "a;x=1", "..;", "se%73sion", "a?q=/../",
]
# Weighted so that about half of the targets are reserved: those are what the test checks.
_NGINX_TARGETS = st.builds(
    lambda prefix, segments: prefix + "/".join(segments),
    st.sampled_from(["/.curfew/"] * 4 + ["/", "/%2Ecurfew/"]),
    st.lists(st.sampled_from(_PLAIN * 6 + _TRICKY), max_size=5),
)


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_NGINX_TARGETS)
@example("/.curfew/../admin")
@example("/%2Ecurfew/../admin")
@example("/.curfew/%2E%2E/admin")
@example("/.curfew/session")
def test_a_reserved_target_is_exactly_the_path_a_real_nginx_serves_for_it(
    nginx_uri: Callable[[str], str | None], target: str
) -> None:
    if is_reserved_target(target):
        assert nginx_uri(target) == target.partition("?")[0]
