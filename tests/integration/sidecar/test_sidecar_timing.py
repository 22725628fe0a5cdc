"""Real time, short limits (idle 2s, absolute 6s): idle sliding keeps a busy session alive, the
absolute limit still cuts it off, an idle one lapses, and the status endpoint extends nothing.

The one sleeping test of the suite: the three sessions run side by side, about 6.5 seconds.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from sidecar_harness import StartSidecar, policy_doc

API = {"Accept": "application/json"}


@pytest.mark.slow
async def test_sliding_idle_and_the_absolute_limit_in_real_time(
    start_sidecar: StartSidecar, http: aiohttp.ClientSession
) -> None:
    running = await start_sidecar(policy_doc(
        timeouts={"idleSeconds": 2, "absoluteSeconds": 6, "warningLeadSeconds": 1}))

    async def get(path: str, raw: str) -> tuple[int, dict[str, object]]:
        async with http.get(running.url + path, headers={"Cookie": f"session={raw}", **API}) as r:
            return r.status, await r.json()

    async def busy() -> tuple[float, object]:
        """A request every 0.4s: alive past many idle periods, until the absolute limit."""
        start = time.monotonic()
        await running.issue("raw-busy")  # the app signs the session in through the sidecar
        while True:
            status, body = await get("/work", "raw-busy")
            if status != 200:
                return time.monotonic() - start, body["reason"]
            await asyncio.sleep(0.4)

    async def idle() -> tuple[int, object]:
        await running.issue("raw-idle")
        await get("/work", "raw-idle")
        await asyncio.sleep(2.3)
        status, body = await get("/work", "raw-idle")
        return status, body.get("reason")

    async def watched() -> tuple[float, object, bool]:
        """Only status polls after the first request: they must not keep the session alive."""
        start = time.monotonic()
        await running.issue("raw-watch")
        await get("/work", "raw-watch")
        warned = False
        while True:
            await asyncio.sleep(0.25)
            status, body = await get("/.curfew/session", "raw-watch")
            if status != 200:
                return time.monotonic() - start, body["reason"], warned
            warned = warned or bool(body["warning"])

    (busy_cut, busy_reason), (idle_status, idle_reason), (watch_cut, watch_reason, warned) = (
        await asyncio.gather(busy(), idle(), watched())
    )
    assert busy_reason == "absolute"
    assert 5.6 <= busy_cut <= 6.9, f"busy session cut at {busy_cut:.2f}s, expected about 6s"
    assert (idle_status, idle_reason) == (401, "idle")
    assert watch_reason == "idle"
    assert 1.9 <= watch_cut <= 2.8, f"watched session expired at {watch_cut:.2f}s, expected ~2s"
    assert warned, "the status endpoint flags the last second as the warning window"
