"""The browser client's endpoints on a real sidecar: served only while the policy enables the
client (a reload turns them on and off), cacheable by ETag, never forwarded to the app."""

from __future__ import annotations

import aiohttp
from sidecar_harness import StartSidecar, policy_doc, wait_for

ENABLED = policy_doc(client={"enabled": True})


async def test_a_policy_without_the_client_serves_none_of_its_files(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar()
    for path in ("/.curfew/client.js", "/.curfew/client.css", "/.curfew/client.json"):
        async with http.get(running.url + path) as r:
            assert r.status == 404, path
            assert "not enabled" in await r.text()


async def test_an_enabled_client_gets_its_script_and_stylesheet_with_safe_headers(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar(ENABLED)
    async with http.get(running.url + "/.curfew/client.js") as r:
        assert r.status == 200
        assert r.content_type == "application/javascript"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        script = await r.text()
        assert "'session'" in script
        assert "'keepalive'" in script
        assert "eval(" not in script
        assert "innerHTML" not in script
        assert ".style." not in script
        assert "setAttribute('style'" not in script
    async with http.get(running.url + "/.curfew/client.css") as r:
        assert r.status == 200
        assert r.content_type == "text/css"
        assert ".curfew-dialog" in await r.text()


async def test_an_unchanged_script_is_revalidated_with_a_304(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar(ENABLED)
    async with http.get(running.url + "/.curfew/client.js") as r:
        etag = r.headers["ETag"]
        assert r.headers["Cache-Control"] == "no-cache"
    async with http.get(running.url + "/.curfew/client.js",
                        headers={"If-None-Match": etag}) as r:
        assert r.status == 304
        assert await r.read() == b""


async def test_the_client_config_says_where_to_sign_in_again_and_is_never_cached(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar(ENABLED)
    async with http.get(running.url + "/.curfew/client.json") as r:
        assert r.status == 200
        assert r.headers["Cache-Control"] == "no-store"
        assert await r.json() == {
            "loginURL": "https://login.example.com/sso",
            "returnToParameter": "return_to",
            "loginPrefix": "https://login.example.com/sso?return_to=",
            "warningLeadSeconds": 120,
        }


async def test_a_config_reload_turns_the_client_on_and_off_without_a_restart(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar()

    async def script_status() -> int:
        async with http.get(running.url + "/.curfew/client.js") as r:
            return r.status

    assert await script_status() == 404
    running.config.write(ENABLED)

    async def served() -> bool:
        return await script_status() == 200

    await wait_for(served)
    running.config.write(policy_doc(client={"enabled": False}))

    async def gone() -> bool:
        return await script_status() == 404

    await wait_for(gone)


async def test_client_files_are_answered_by_the_sidecar_never_forwarded_to_the_app(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar(ENABLED)
    async with http.post(running.url + "/.curfew/client.js") as r:
        # The echo app would answer 200 with JSON: the sidecar keeps /.curfew/ to itself.
        assert r.status == 404
        assert r.content_type != "application/json"
