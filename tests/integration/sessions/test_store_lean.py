"""The lean pipelined connection of check_and_touch (``RedisSessionStore.from_url(..., lean=True)``)
against real redis-server processes: same answers as redis-py, replies matched to their callers
under concurrency, one EVALSHA, the NOSCRIPT fallback, credentials and database, and every
outage as StoreUnavailable within the timeouts."""

import asyncio
import socket
import time

import pytest

from curfew.sessions import keys
from curfew.sessions.errors import StoreDataError, StoreUnavailable
from curfew.sessions.identity import session_hash
from curfew.sessions.lifetime import Decision, Limits, Verdict
from curfew.sessions.store import RedisSessionStore
from fixtures.redis_servers import RedisServer
from fixtures.sessions import MIN, plant

KEY = b"test-session-key-0123456789"
LIMITS = Limits(idle_seconds=15 * 60, absolute_seconds=8 * 3600, renewal_seconds=3600)


def sid_of(raw: str) -> str:
    return session_hash(KEY, raw)


async def check(store: RedisSessionStore, sid: str, *, activity: bool = True) -> Verdict:
    return await store.check_and_touch(
        sid, LIMITS, activity=activity, policy="shop/storefront", workload="Deployment/shop/web",
        register=True,  # sessions the app issued: a first sight creates the record
    )


def lean_store(url: str, **options: float) -> RedisSessionStore:
    store = RedisSessionStore.from_url(url, key_prefix="curfew:", lean=True, **options)  # type: ignore[arg-type]
    assert store.lean is not None, f"{url} should take the lean path"
    return store


@pytest.mark.parametrize(
    "url",
    [
        "rediss://127.0.0.1:6379/0",
        "unix:///run/redis.sock",
        "redis+cluster://127.0.0.1:7000,127.0.0.1:7001",
        "redis+sentinel://127.0.0.1:26379/sessions",
        "redis://127.0.0.1:6379/0?health_check_interval=5",
    ],
)
def test_tls_unix_cluster_sentinel_and_query_urls_stay_with_redis_py(url: str) -> None:
    assert RedisSessionStore.from_url(url, key_prefix="curfew:", lean=True).lean is None


def test_without_asking_for_it_no_store_takes_the_lean_path(redis_server: RedisServer) -> None:
    assert RedisSessionStore.from_url(redis_server.url, key_prefix="curfew:").lean is None


async def test_concurrent_checks_each_get_their_own_session_s_verdict(
    redis_server: RedisServer,
) -> None:
    redis_server.client().flushall()
    store = lean_store(redis_server.url)
    try:
        # Every third session idle-expired, every third live, the rest never seen: a reply
        # matched to the wrong caller would show up as a wrong decision.
        sids = [sid_of(f"pipelined-{i}") for i in range(300)]
        expected = {}
        for i, sid in enumerate(sids):
            if i % 3 == 0:
                await plant(store, sid, created_ago_ms=60 * MIN, last_ago_ms=20 * MIN)
                expected[sid] = Decision.EXPIRED_IDLE
            elif i % 3 == 1:
                await plant(store, sid, created_ago_ms=60 * MIN, last_ago_ms=(1 + i % 14) * MIN)
                expected[sid] = Decision.ALLOWED
            else:
                expected[sid] = Decision.NEW
        verdicts = await asyncio.gather(*(check(store, sid) for sid in sids))
        assert [v.decision for v in verdicts] == [expected[sid] for sid in sids]
        for i, verdict in enumerate(verdicts):
            if i % 3 == 1:
                assert verdict.idle_remaining == 15 * 60  # touched just now
                assert verdict.absolute_remaining == pytest.approx(7 * 3600, abs=2)
    finally:
        await store.aclose()


async def test_a_lean_check_is_exactly_one_evalsha_and_survives_a_flushed_script_cache(
    redis_server: RedisServer,
) -> None:
    redis_server.client().flushall()
    store = lean_store(redis_server.url)
    admin = redis_server.client()
    try:
        sid = sid_of("one-trip-lean")
        assert (await check(store, sid)).decision is Decision.NEW
        admin.config_resetstat()
        assert (await check(store, sid)).decision is Decision.ALLOWED
        calls = {k: v["calls"] for k, v in admin.info("commandstats").items()
                 if k in ("cmdstat_evalsha", "cmdstat_eval")}
        assert calls == {"cmdstat_evalsha": 1}
        admin.script_flush()
        assert (await check(store, sid)).decision is Decision.ALLOWED
        assert (await check(store, sid)).decision is Decision.ALLOWED
        calls = {k: v["calls"] for k, v in admin.info("commandstats").items()
                 if k in ("cmdstat_evalsha", "cmdstat_eval")}
        # NOSCRIPT once, then EVAL (which caches it), then EVALSHA again.
        assert calls == {"cmdstat_evalsha": 3, "cmdstat_eval": 1}
    finally:
        await store.aclose()


async def test_a_password_and_a_database_from_the_url_are_used() -> None:
    server = RedisServer().start()
    try:
        admin = server.client()
        admin.config_set("requirepass", "s3cret pass")
        admin.execute_command("AUTH", "s3cret pass")
        url = f"redis://:s3cret%20pass@127.0.0.1:{server.port}/3"
        store = lean_store(url)
        try:
            sid = sid_of("in-db-3")
            assert (await check(store, sid)).decision is Decision.NEW
            admin.select(3)
            assert admin.exists(keys.record_key(store.namespace, sid)) == 1
        finally:
            await store.aclose()
        wrong = lean_store(f"redis://:wrong@127.0.0.1:{server.port}/0")
        with pytest.raises(StoreUnavailable, match="Redis unavailable"):
            await check(wrong, sid_of("wrong-password"))
        await wrong.aclose()
    finally:
        server.stop()


async def test_a_killed_redis_fails_fast_and_the_next_call_after_a_restart_reconnects() -> None:
    server = RedisServer().start()
    store = lean_store(server.url)
    try:
        assert (await check(store, sid_of("outage"))).decision is Decision.NEW
        server.kill()
        started = time.monotonic()
        results = await asyncio.gather(*(check(store, sid_of(f"o{i}")) for i in range(10)),
                                       return_exceptions=True)
        assert all(isinstance(r, StoreUnavailable) for r in results)
        assert time.monotonic() - started < 1.0
        server.start()
        assert (await check(store, sid_of("after-restart"))).decision is Decision.NEW
    finally:
        await store.aclose()
        server.stop()


async def test_a_redis_that_accepts_but_never_answers_times_out_as_unavailable() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        store = lean_store(f"redis://127.0.0.1:{silent.getsockname()[1]}/0",
                           socket_timeout=0.1, retries=1)
        started = time.monotonic()
        results = await asyncio.gather(*(check(store, sid_of(f"hung{i}")) for i in range(5)),
                                       return_exceptions=True)
        elapsed = time.monotonic() - started
        assert all(isinstance(r, StoreUnavailable) for r in results), results
        assert "no reply within 0.1 s" in str(results[0])
        assert 0.1 <= elapsed < 1.0
        await store.aclose()


async def test_a_refused_command_is_a_data_error_not_an_outage(redis_server: RedisServer) -> None:
    redis_server.client().flushall()
    store = lean_store(redis_server.url)
    try:
        sid = sid_of("wrong-type")
        record = keys.record_key(store.namespace, sid)
        redis_server.client().set(record, "not a hash")
        with pytest.raises(StoreDataError, match="Redis refused a command"):
            await check(store, sid)
        # The connection stays usable for everyone else.
        assert (await check(store, sid_of("fine"))).decision is Decision.NEW
    finally:
        await store.aclose()
