"""connect-redis's clock and whole-session removal in `curfew purge`: sessions kept alive only
by express-session's touch (connect-redis's EXPIRE under ``resave: false``) stay, and the
removal script refuses a session saved again or touched since the purge read it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from curfew.sessions.apps import AppSessions
from curfew.sessions.store import DELETE_IF_UNRENEWED, RedisSessionStore
from fixtures.purge import curfew_purge, iso_ms, purge_config, write_config
from fixtures.sessions import MIN

DAY = 24 * 60 * MIN


def connect_value(*, saved_ms: int | None, max_age_ms: int | None) -> str:
    """express-session's JSON.stringify(session) as connect-redis SETs it, saved at
    ``saved_ms`` (None: a browser-session cookie, no expires)."""
    cookie: dict[str, Any] = {"originalMaxAge": max_age_ms}
    if saved_ms is not None and max_age_ms is not None:
        cookie["expires"] = iso_ms(saved_ms + max_age_ms)
    cookie.update({"httpOnly": True, "path": "/"})
    return json.dumps({"cookie": cookie, "user": "alice"}, separators=(",", ":"))


async def test_sessions_touched_by_the_app_alone_stay_and_idle_ones_go(
    store_url: str, tmp_path: Path
) -> None:
    store = RedisSessionStore.from_url(store_url, key_prefix="sess:", format="connect-redis",
                                       socket_timeout=5)
    try:
        client = store.client
        now = await store.server_time_ms()
        for i in range(4):
            # Saved an hour ago, touched a second ago: the JSON still says an hour ago.
            await client.set(f"sess:touched-{i}", connect_value(saved_ms=now - 60 * MIN,
                                                                max_age_ms=DAY), px=DAY - 1000)
        # Saved and last touched 20 minutes ago: idle under the policy's 15 minutes.
        await client.set("sess:idle", connect_value(saved_ms=now - 20 * MIN, max_age_ms=DAY),
                         px=DAY - 20 * MIN)
        # Browser-session cookies: connect-redis's own ttl (the policy states 1h).
        await client.set("sess:browser-touched", connect_value(saved_ms=None, max_age_ms=None),
                         px=60 * MIN - 1000)
        await client.set("sess:browser-idle", connect_value(saved_ms=None, max_age_ms=None),
                         px=40 * MIN)
        doc = purge_config(format="connect-redis", key_prefix="sess:")
        store_doc = doc.store.model_copy(update={"app_ttl_seconds": 3600})
        config = write_config(tmp_path, doc.model_copy(update={"store": store_doc, "hash": ""}))
        dry = curfew_purge(config, store_url, "--dry-run")
        assert dry.code == 0, dry.stderr
        assert dry.summary["expired"]["idle"] == 2
        assert await client.exists("sess:idle", "sess:browser-idle") == 2
        run = curfew_purge(config, store_url)
        assert run.code == 0, run.stderr
        assert run.summary["expired"] == {"idle": 2, "absolute": 0, "tightened": 0}
        assert await client.exists("sess:idle", "sess:browser-idle") == 0
        assert await client.exists(*[f"sess:touched-{i}" for i in range(4)]) == 4
        assert await client.exists("sess:browser-touched") == 1
    finally:
        await store.aclose()


async def test_a_session_touched_or_saved_after_it_was_read_is_not_removed(
    store_url: str,
) -> None:
    store = RedisSessionStore.from_url(store_url, key_prefix="sess:", format="connect-redis",
                                       socket_timeout=5)
    try:
        client = store.client
        await store.load_scripts()
        now = await store.server_time_ms()
        for name in ("touched", "saved", "untouched", "persisted"):
            await client.set(f"sess:{name}", connect_value(saved_ms=now - 20 * MIN,
                                                           max_age_ms=DAY), px=DAY - 20 * MIN)
        apps = AppSessions(client, format="connect-redis", prefix="sess:")
        read = {s.key: s async for batch in apps.walk() for s in batch.sessions}
        assert set(read) == {f"sess:{n}" for n in ("touched", "saved", "untouched", "persisted")}
        await client.expire("sess:touched", DAY // 1000)  # the app's touch
        await client.set("sess:saved", connect_value(saved_ms=now, max_age_ms=DAY), px=DAY)
        await client.persist("sess:persisted")
        removed = await apps.remove([read[k] for k in sorted(read)])
        assert dict(zip(sorted(read), removed, strict=True)) == {
            "sess:persisted": False, "sess:saved": False, "sess:touched": False,
            "sess:untouched": True,
        }
    finally:
        await store.aclose()


async def test_the_removal_script_takes_only_a_string_session(redis_url: str) -> None:
    store = RedisSessionStore.from_url(redis_url, key_prefix="sess:", format="connect-redis")
    try:
        client = store.client
        await client.hset("sess:a-hash", "k", "v")
        await client.set("sess:a-string", "{}")
        remove = client.register_script(DELETE_IF_UNRENEWED.source)
        assert await remove(keys=["sess:a-hash"], args=["string"]) == 0
        assert await remove(keys=["sess:missing"], args=["string"]) == 0
        assert await remove(keys=["sess:a-string"], args=["string"]) == 1
        assert await client.exists("sess:a-hash") == 1
    finally:
        await store.aclose()
