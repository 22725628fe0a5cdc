"""`curfew purge` over django and flask-session sessions written as django-redis and
Flask-Session write them, on one redis-server and on a 3-master Cluster: a Curfew record decides
where there is one, a session renewed after it was judged stays, a cached_db session is emptied,
and the cache prefix never takes a cached_db key for one of its sessions."""

from __future__ import annotations

import json
import pickle
import secrets
from pathlib import Path

from curfew.api.config import PurgeConfig
from curfew.sessions.apps import AppSessions
from curfew.sessions.formats_python import load_plain_pickle
from curfew.sessions.identity import session_hash
from curfew.sessions.store import RedisSessionStore
from fixtures.purge import SESSION_KEY, WEB, curfew_purge, purge_config, write_config
from fixtures.sessions import MIN, plant

CACHE = ":1:django.contrib.sessions.cache"
CACHED_DB = ":1:django.contrib.sessions.cached_db"
LIFETIME_MS = 60 * MIN


def config(fmt: str, prefix: str, *, app_ttl_ms: int | None = LIFETIME_MS) -> PurgeConfig:
    doc = purge_config(format=fmt, key_prefix=prefix, max_fraction=1.0)
    ttl = app_ttl_ms / 1000 if app_ttl_ms is not None else None
    store = doc.store.model_copy(update={"app_ttl_seconds": ttl})
    return doc.model_copy(update={"store": store, "hash": ""}).sealed()


def django_id() -> str:
    return "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(32))


def flask_id() -> str:
    return secrets.token_urlsafe(32)


def user(name: str) -> bytes:
    return pickle.dumps({"_auth_user_id": name}, pickle.HIGHEST_PROTOCOL)


async def test_django_sessions_are_judged_by_their_ttl_unless_a_record_decides(
    store_url: str, tmp_path: Path
) -> None:
    store = RedisSessionStore.from_url(store_url, key_prefix=CACHE, format="django",
                                       socket_timeout=5)
    try:
        client = store.client
        now = await store.server_time_ms()
        saved = {name: django_id() for name in ("fresh", "idle", "record-live", "record-idle",
                                                "own-expiry", "fixed-end", "json-idle")}
        # TTL = lifetime - time since the last save.
        await client.set(CACHE + saved["fresh"], user("a"), px=LIFETIME_MS - MIN)
        await client.set(CACHE + saved["idle"], user("b"), px=LIFETIME_MS - 20 * MIN)
        # Saved 20 minutes ago, but the sidecar saw the user a minute ago: the record decides.
        await client.set(CACHE + saved["record-live"], user("c"), px=LIFETIME_MS - 20 * MIN)
        await plant(store, session_hash(SESSION_KEY.encode(), saved["record-live"]),
                    created_ago_ms=30 * MIN, last_ago_ms=MIN, now_ms=now, workload=WEB)
        # Saved a minute ago straight to the app, idle for 20 minutes through the sidecar.
        await client.set(CACHE + saved["record-idle"], user("d"), px=LIFETIME_MS - MIN)
        await plant(store, session_hash(SESSION_KEY.encode(), saved["record-idle"]),
                    created_ago_ms=30 * MIN, last_ago_ms=20 * MIN, now_ms=now, workload=WEB)
        # set_expiry(600): a 10-minute session saved 5 minutes ago is not idle (policy: 15m).
        await client.set(CACHE + saved["own-expiry"],
                         pickle.dumps({"_session_expiry": 600, "u": "e"}, 5), px=5 * MIN)
        # set_expiry(datetime): no idle clock, its TTL ends it.
        await client.set(CACHE + saved["fixed-end"],
                         pickle.dumps({"_session_expiry": "2099-01-01T00:00:00+00:00"}, 5),
                         px=MIN)
        await client.set(CACHE + saved["json-idle"], json.dumps({"u": "f"}),
                         px=LIFETIME_MS - 16 * MIN)
        # A cached_db session under the same head: not one of the cache backend's sessions.
        await client.set(CACHED_DB + django_id(), user("g"), px=MIN)
        # An empty (anonymous) session: nothing to end.
        await client.set(CACHE + django_id(), pickle.dumps({}, 5), px=MIN)

        run = curfew_purge(write_config(tmp_path, config("django", CACHE)), store_url)
        assert run.code == 0, run.stderr
        assert run.summary["scanned"] == 7, run.summary
        assert run.summary["expired"] == {"idle": 3, "absolute": 0, "tightened": 0}, run.summary
        gone = {n for n, i in saved.items() if not await client.exists(CACHE + i)}
        assert gone == {"idle", "record-idle", "json-idle"}
        assert len([k async for k in client.scan_iter(match=CACHED_DB + "*")]) == 1
    finally:
        await store.aclose()


async def test_a_session_the_app_saved_again_after_it_was_judged_stays(store_url: str) -> None:
    store = RedisSessionStore.from_url(store_url, key_prefix="session:", format="flask-session",
                                       socket_timeout=5)
    try:
        await store.load_scripts()
        client = store.client
        value = b"\x82\xaa_permanent\xc3\xa4user\xa3ada"  # Flask-Session's msgpack, as it SETs
        renewed, left = flask_id(), flask_id()
        for sid in (renewed, left):
            await client.set("session:" + sid, value, px=LIFETIME_MS - 20 * MIN)
        apps = AppSessions(client, format="flask-session", prefix="session:",
                           app_ttl_ms=LIFETIME_MS)
        found = [s async for batch in apps.walk() for s in batch.sessions]
        assert {s.raw_id for s in found} == {renewed, left}
        # The user comes back between judging and removal: the same bytes, a fresh TTL.
        await client.set("session:" + renewed, value, px=LIFETIME_MS)
        outcome = dict(zip([s.raw_id for s in found], await apps.remove(found), strict=True))
        assert outcome == {renewed: False, left: True}
        assert await client.exists("session:" + renewed) == 1
        assert await client.exists("session:" + left) == 0
    finally:
        await store.aclose()


async def test_a_cached_db_session_is_emptied_keeping_its_ttl_and_not_judged_again(
    store_url: str, tmp_path: Path
) -> None:
    store = RedisSessionStore.from_url(store_url, key_prefix=CACHED_DB, format="django",
                                       socket_timeout=5)
    try:
        client = store.client
        pickled, as_json, fresh = django_id(), django_id(), django_id()
        await client.set(CACHED_DB + pickled, user("a"), px=LIFETIME_MS - 20 * MIN)
        await client.set(CACHED_DB + as_json, json.dumps({"u": "b"}), px=LIFETIME_MS - 20 * MIN)
        await client.set(CACHED_DB + fresh, user("c"), px=LIFETIME_MS - MIN)
        path = write_config(tmp_path, config("django", CACHED_DB))
        run = curfew_purge(path, store_url)
        assert run.code == 0, run.stderr
        assert run.summary["expired"]["idle"] == 2, run.summary
        assert load_plain_pickle(await client.get(CACHED_DB + pickled)) == {}
        assert await client.get(CACHED_DB + as_json) == b"{}"
        assert 0 < await client.pttl(CACHED_DB + pickled) <= (LIFETIME_MS - 20 * MIN)
        assert await client.get(CACHED_DB + fresh) == user("c")
        again = curfew_purge(path, store_url)
        assert again.summary["scanned"] == 1, "emptied sessions are anonymous: not scanned"
        assert again.summary["expired"]["idle"] == 0
    finally:
        await store.aclose()
