"""`curfew purge` over the sessions of a real Django app (django-redis: cache and cached_db
backends, pickle and JSON serializers) and a real Flask app (Flask-Session's Redis interface),
each signed in over HTTP on loopback against one real redis-server: the app's own clock (the
key's TTL) keeps active sessions, idle ones go, a dry run writes nothing, and a hostile pickle
is refused as malformed without ever running."""

from __future__ import annotations

import asyncio
import http.cookiejar
import os
import pickle
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from curfew.api.config import PurgeConfig
from fixtures.apps import AppCase, RunningApp, python_app
from fixtures.purge import curfew_purge, purge_config, write_config

LIFETIME = 30  # the app's SESSION_COOKIE_AGE / PERMANENT_SESSION_LIFETIME, seconds
IDLE = 3.0


CASES = [
    AppCase("django cache, pickle", "django", {"SESSION_ENGINE": "cache"}, "sessionid",
            "django", ":1:django.contrib.sessions.cache"),
    AppCase("django cached_db, JSON", "django",
            {"SESSION_ENGINE": "cached_db", "SERIALIZER": "json"}, "sessionid",
            "django", ":1:django.contrib.sessions.cached_db"),
    AppCase("flask-session", "flask", {"USE_SIGNER": 1}, "session", "flask-session",
            "session:"),
]


@pytest.fixture(params=CASES, ids=lambda c: c.name)
def app(request: pytest.FixtureRequest, redis_url: str, tmp_path: Path) -> Iterator[
        tuple[AppCase, RunningApp]]:
    case: AppCase = request.param
    lifetime = {"SESSION_COOKIE_AGE" if case.app == "django" else "LIFETIME": LIFETIME}
    with python_app(case.app, REDIS_URL=redis_url, DB_PATH=str(tmp_path / "django.sqlite3"),
                    **lifetime, **case.env) as running:
        yield case, running


def config_for(
    case: AppCase, *, app_ttl: float | None = LIFETIME, idle: float = IDLE
) -> PurgeConfig:
    doc = purge_config(format=case.format, key_prefix=case.prefix, idle=idle, absolute=3600,
                       workloads=(("web", idle, 3600),), max_fraction=1.0)
    store = doc.store.model_copy(update={"app_ttl_seconds": app_ttl})
    return doc.model_copy(update={"store": store, "hash": ""}).sealed()


@dataclass
class Browser:
    """A browser of one user: a cookie jar, talking to the app straight (no sidecar)."""

    jar: http.cookiejar.CookieJar
    opener: urllib.request.OpenerDirector

    def status(self, url: str) -> int:
        try:
            with self.opener.open(url, timeout=10) as r:
                return int(r.status)
        except urllib.error.HTTPError as error:
            return error.code


def sign_in(case: AppCase, running: RunningApp, user: str) -> Browser:
    """A browser of ``user``, signed in straight to the app (no Curfew record)."""
    jar = http.cookiejar.CookieJar()
    browser = Browser(jar, urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar)))
    query = urllib.parse.urlencode({"user": user})
    assert browser.status(f"{running.url}/login?{query}") == 200
    assert case.cookie in {c.name for c in jar}
    return browser


def works(running: RunningApp, browser: Browser) -> bool:
    return browser.status(running.url + "/me") == 200


def snapshot(client: redis.Redis) -> dict[bytes, bytes]:
    return {k: client.dump(k) for k in client.scan_iter(count=1000)}  # type: ignore[misc]


async def test_the_purge_keeps_sessions_the_app_keeps_alive_and_removes_idle_ones(
    app: tuple[AppCase, RunningApp], redis_url: str, tmp_path: Path
) -> None:
    case, running = app
    client = redis.Redis.from_url(redis_url)
    idle = sign_in(case, running, "idle")
    active = sign_in(case, running, "active")
    for _ in range(6):  # the active user's requests reach the app alone: its own touch
        await asyncio.sleep(IDLE / 4)
        assert works(running, active)
    config = write_config(tmp_path, config_for(case))

    assert works(running, active)  # just before each run: a purge takes a second to start
    before = snapshot(client)
    dry = curfew_purge(config, redis_url, "--dry-run")
    assert dry.code == 0, dry.stderr
    assert dry.summary["expired"]["idle"] == 1, dry.summary
    assert dry.summary["scanned"] == 2
    assert snapshot(client) == before, "a dry run writes nothing"

    assert works(running, active)
    run = curfew_purge(config, redis_url)
    assert run.code == 0, run.stderr
    assert run.summary["expired"] == {"idle": 1, "absolute": 0, "tightened": 0}, run.summary
    assert works(running, active), "the session the app kept alive stays"
    assert not works(running, idle), "the idle session's cookie no longer works in the app"
    assert not list(client.scan_iter(match="curfew:*")), "the purge keeps no records"

    again = curfew_purge(config, redis_url)
    assert again.summary["expired"]["idle"] == 0, "an ended session is not ended twice"


async def test_without_the_apps_session_ttl_the_purge_removes_nothing_by_the_apps_clock(
    app: tuple[AppCase, RunningApp], redis_url: str, tmp_path: Path
) -> None:
    case, running = app
    idle = sign_in(case, running, "idle")
    await asyncio.sleep(IDLE + 0.5)
    run = curfew_purge(write_config(tmp_path, config_for(case, app_ttl=None)), redis_url)
    assert run.code == 0, run.stderr
    assert run.summary["scanned"] == 1
    assert run.summary["expired"]["idle"] == 0
    assert works(running, idle)


class _Exploit:
    def __init__(self, canary: Path) -> None:
        self.canary = canary

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.canary}",))


@pytest.mark.parametrize("backend", ["cache", "cached_db"])
async def test_a_pickled_django_session_that_would_run_code_is_malformed_and_never_run(
    backend: str, redis_url: str, tmp_path: Path
) -> None:
    case = next(c for c in CASES if c.app == "django")
    case = AppCase(case.name, "django", {"SESSION_ENGINE": backend}, "sessionid", "django",
                   f":1:django.contrib.sessions.{backend}")
    canary = tmp_path / "canary"
    client = redis.Redis.from_url(redis_url)
    with python_app("django", REDIS_URL=redis_url, DB_PATH=str(tmp_path / "db.sqlite3"),
                    SESSION_COOKIE_AGE=LIFETIME, SESSION_ENGINE=backend) as running:
        idle = sign_in(case, running, "idle")
        hostile = case.prefix + "a" * 32
        payload = {"_auth_user_id": "1", "x": _Exploit(canary)}
        client.set(hostile, pickle.dumps(payload, pickle.HIGHEST_PROTOCOL), ex=LIFETIME)
        await asyncio.sleep(IDLE + 0.5)
        config = write_config(tmp_path, config_for(case))
        for args in (("--dry-run",), ()):
            run = curfew_purge(config, redis_url, *args)
            assert run.code == 0, run.stderr
            assert run.summary["malformed"] == 1, run.summary
            assert run.summary["expired"]["idle"] == 1, run.summary
        assert not works(running, idle)
        assert client.exists(hostile) == 1, "a malformed session is skipped, never judged"
        assert not canary.exists(), "the pickled os.system never ran"
