"""Hostile app records never stop a purge nor leak a session id: unusable times are counted,
reported and skipped; a Spring side key of the wrong type costs its own command only."""

from __future__ import annotations

import json
from pathlib import Path

from test_purge_app_formats import SPRING, connect_value, store_for, write_spring

from fixtures.purge import curfew_purge, purge_config, write_config
from fixtures.sessions import MIN

MALFORMED_COOKIES = {
    "max-age-1e400": '{"cookie":{"originalMaxAge":1e400,"expires":"2026-01-01T00:00:00.000Z"}}',
    "max-age-nan": '{"cookie":{"originalMaxAge":NaN,"expires":"2026-01-01T00:00:00.000Z"}}',
    "expires-year-1": '{"cookie":{"originalMaxAge":900000,"expires":"0001-01-01T00:00:00.000Z"}}',
    "expires-east": '{"cookie":{"originalMaxAge":0,"expires":"0001-01-01T00:00:00+14:00"}}',
}


async def test_connect_redis_sessions_with_unusable_times_are_counted_and_skipped(
    store_url: str, tmp_path: Path
) -> None:
    store = await store_for(store_url, "connect-redis", "sess:")
    try:
        client = store.client
        now = await store.server_time_ms()
        day = 24 * 60 * MIN
        for i in range(6):
            await client.set(f"sess:live-{i}", connect_value(
                expires_ms=now - MIN + day, max_age_ms=day, user=f"u{i}"))
        await client.set("sess:idle", connect_value(
            expires_ms=now - 20 * MIN + day, max_age_ms=day, user="x"))
        for name, value in MALFORMED_COOKIES.items():
            await client.set(f"sess:{name}", value)
        config = write_config(tmp_path, purge_config(format="connect-redis", key_prefix="sess:"))
        for scanned in (7, 6):  # and the next run the same, the idle session gone
            run = curfew_purge(config, store_url)
            assert run.code == 0, run.stderr
            assert run.summary["outcome"] == "ok"
            assert run.summary["malformed"] == len(MALFORMED_COOKIES)
            assert run.summary["scanned"] == scanned
            assert f"skipped {len(MALFORMED_COOKIES)} malformed" in run.summary["message"]
        assert not await client.exists("sess:idle")
        for name, value in MALFORMED_COOKIES.items():
            assert await client.get(f"sess:{name}") == value.encode(), "skipped, not removed"
            assert name not in run.stdout + run.stderr
    finally:
        await store.aclose()


async def test_a_wrongly_typed_spring_expiration_store_leaks_no_session_id(
    store_url: str, tmp_path: Path
) -> None:
    store = await store_for(store_url, "spring-session", SPRING)
    raw_id = "secret-spring-id-4f9c2e7a"
    try:
        client = store.client
        now = await store.server_time_ms()
        for i in range(4):
            await write_spring(client, f"live-{i}", now=now, created_ago=60, last_ago=1)
        await write_spring(client, raw_id, now=now, created_ago=60, last_ago=40)
        # Where Spring Session 3.4+ keeps a sorted set: a string, so ZREM there fails.
        await client.set(f"{SPRING}sessions:expirations", "not a sorted set")
        run = curfew_purge(write_config(tmp_path, purge_config(
            format="spring-session", key_prefix=SPRING)), store_url)
        assert run.code == 0, run.stderr
        assert run.summary["outcome"] == "ok", run.summary
        assert run.summary["expired"]["idle"] == 1
        assert not await client.exists(f"{SPRING}sessions:{raw_id}")
        assert raw_id not in run.stdout
        assert raw_id not in run.stderr
        assert raw_id not in json.dumps(run.summary)
    finally:
        await store.aclose()
