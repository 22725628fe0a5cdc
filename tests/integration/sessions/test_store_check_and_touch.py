"""check_and_touch, expire and ping against real Redis: a single server and a 3-master Cluster."""

import asyncio
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from curfew.sessions import keys, lifetime
from curfew.sessions.codec import SessionCodec, build_codec
from curfew.sessions.errors import StoreConfigError, StoreUnavailable
from curfew.sessions.identity import session_hash
from curfew.sessions.lifetime import Decision, Limits, SessionRecord, decide
from curfew.sessions.store import SessionStore
from fixtures.redis_servers import RedisClusterServers, RedisServer, free_port
from fixtures.sessions import MIN, plant, read

KEY = b"test-session-key-0123456789"
LIMITS = Limits(idle_seconds=15 * 60, absolute_seconds=8 * 3600, renewal_seconds=3600)


def sid_of(raw: str) -> str:
    return session_hash(KEY, raw)


POLICY, WEB = "shop/storefront", "Deployment/shop/web"
OWNER = keys.owner_id(POLICY, WEB)


async def check(
    store: SessionStore,
    sid: str,
    limits: Limits = LIMITS,
    *,
    activity: bool = True,
    workload: str = WEB,
    register: bool = True,
):
    """A check of a session the app issued (``register``), unless told otherwise."""
    return await store.check_and_touch(
        sid, limits, activity=activity, policy=POLICY, workload=workload, register=register
    )


async def due_entries(store: SessionStore, sid: str) -> dict[str, float]:
    """The due index entries of ``sid``'s shard that name it, member -> score."""
    _record_key, due_key, _ = keys.session_keys(store.namespace, sid)
    entries = await store.client.zrange(due_key, 0, -1, withscores=True)
    return {m.decode(): score for m, score in entries if m.decode().endswith(sid)}


async def due_score(store: SessionStore, sid: str) -> float | None:
    """The score of ``sid``'s entry, which must be the one its creator's owner id names."""
    entries = await due_entries(store, sid)
    assert set(entries) <= {keys.due_member(OWNER, sid)}, entries
    return entries.get(keys.due_member(OWNER, sid))


async def test_a_first_sight_creates_a_record_an_index_entry_and_a_deadline_ttl(
    store: SessionStore,
) -> None:
    sid = sid_of("first")
    verdict = await check(store, sid)
    assert verdict.decision is Decision.NEW
    assert (verdict.idle_remaining, verdict.absolute_remaining) == (900, 28800)
    rec = await read(store, sid)
    assert rec is not None
    assert rec.policy == "shop/storefront"
    assert rec.workload == "Deployment/shop/web"
    assert await due_score(store, sid) == rec.created_ms + 15 * MIN
    record_key = keys.record_key(store.namespace, sid)
    assert await store.client.hget(record_key, "o") == OWNER.encode()
    expire_at = await store.client.pexpiretime(record_key)
    assert expire_at == rec.created_ms + 15 * MIN + store.retain_ms


async def test_a_session_shared_by_two_workloads_keeps_the_owner_that_created_it(
    store: SessionStore,
) -> None:
    sid = sid_of("shared")
    await plant(store, sid, created_ago_ms=60 * MIN, last_ago_ms=5 * MIN, workload=WEB)
    other = "Deployment/shop/api"
    assert (await check(store, sid, workload=other)).decision is Decision.ALLOWED
    after = await read(store, sid)
    assert after is not None
    assert after.workload == WEB
    # One entry, still under the creator's owner id, moved to the new idle deadline.
    assert await due_entries(store, sid) == {
        keys.due_member(OWNER, sid): after.last_activity_ms + 15 * MIN
    }
    assert (await store.client.hget(keys.record_key(store.namespace, sid), "o")).decode() == OWNER


async def test_the_due_score_says_when_the_absolute_deadline_comes_first(
    store: SessionStore,
) -> None:
    sid = sid_of("near-absolute")
    # 5 minutes of the 8 hours left, 15 of idle: the absolute deadline comes first.
    await plant(store, sid, created_ago_ms=475 * MIN, last_ago_ms=1 * MIN)
    await check(store, sid, activity=True)
    rec = await read(store, sid)
    assert rec is not None
    score = await due_score(store, sid)
    assert score == rec.absolute_deadline_ms + 0.5
    assert score is not None
    assert keys.due_deadline(score) == (rec.absolute_deadline_ms, True)
    ttl_at = await store.client.pexpiretime(keys.record_key(store.namespace, sid))
    assert ttl_at == rec.absolute_deadline_ms + store.retain_ms


async def test_a_second_request_is_allowed_with_the_time_left(store: SessionStore) -> None:
    sid = sid_of("second")
    await plant(store, sid, created_ago_ms=60 * MIN, last_ago_ms=5 * MIN)
    verdict = await check(store, sid)
    assert verdict.decision is Decision.ALLOWED
    assert verdict.idle_remaining == pytest.approx(900, abs=1)
    assert verdict.absolute_remaining == pytest.approx(7 * 3600, abs=1)


async def test_activity_moves_the_last_activity_the_index_and_the_ttl(store: SessionStore) -> None:
    sid = sid_of("active")
    before = await plant(store, sid, created_ago_ms=60 * MIN, last_ago_ms=5 * MIN)
    await check(store, sid, activity=True)
    after = await read(store, sid)
    assert after is not None
    assert after.last_activity_ms >= before.last_activity_ms + 5 * MIN
    assert await due_score(store, sid) == after.last_activity_ms + 15 * MIN
    ttl_at = await store.client.pexpiretime(keys.record_key(store.namespace, sid))
    assert ttl_at == after.last_activity_ms + 15 * MIN + store.retain_ms


async def test_activity_within_the_touch_granularity_writes_nothing(store: SessionStore) -> None:
    sid = sid_of("busy")
    await check(store, sid)
    first = await read(store, sid)
    assert first is not None
    record_key = keys.record_key(store.namespace, sid)
    ttl_at = await store.client.pexpiretime(record_key)
    for _ in range(5):
        verdict = await check(store, sid, activity=True)
        assert verdict.decision is Decision.ALLOWED
    # A busy session is written about once per granularity, not on every request.
    assert await read(store, sid) == first
    assert await due_score(store, sid) == first.due_ms
    assert await store.client.pexpiretime(record_key) == ttl_at
    await asyncio.sleep((lifetime.TOUCH_GRANULARITY_MS + 20) / 1000)
    await check(store, sid, activity=True)
    later = await read(store, sid)
    assert later is not None
    assert later.last_activity_ms >= first.last_activity_ms + lifetime.TOUCH_GRANULARITY_MS


async def test_a_request_that_is_not_activity_changes_nothing(store: SessionStore) -> None:
    sid = sid_of("status")
    before = await plant(store, sid, created_ago_ms=60 * MIN, last_ago_ms=5 * MIN)
    verdict = await check(store, sid, activity=False)
    assert verdict.idle_remaining == pytest.approx(600, abs=1)
    assert await read(store, sid) == before
    assert await due_score(store, sid) == before.due_ms


@pytest.mark.parametrize(
    ("created_ago", "last_ago", "expected"),
    [(60, 16, Decision.EXPIRED_IDLE), (481, 1, Decision.EXPIRED_ABSOLUTE)],
)
async def test_an_expired_session_becomes_a_tombstone_out_of_the_index(
    store: SessionStore, created_ago: int, last_ago: int, expected: Decision
) -> None:
    sid = sid_of(f"expired-{expected}")
    await plant(store, sid, created_ago_ms=created_ago * MIN, last_ago_ms=last_ago * MIN)
    verdict = await check(store, sid)
    assert verdict.decision is expected
    assert (verdict.idle_remaining, verdict.absolute_remaining) == (0, 0)
    assert await due_score(store, sid) is None
    tomb = await read(store, sid)
    assert tomb is not None
    assert tomb.expired is expected
    again = await check(store, sid)
    assert again.decision is expected, "a replayed id must not start a new session"


async def test_shorter_limits_expire_a_session_recorded_with_longer_ones(
    store: SessionStore,
) -> None:
    sid = sid_of("tightened")
    await plant(store, sid, created_ago_ms=60 * MIN, last_ago_ms=10 * MIN, idle_ms=30 * MIN)
    verdict = await check(store, sid, Limits(idle_seconds=5 * 60, absolute_seconds=8 * 3600))
    assert verdict.decision is Decision.EXPIRED_IDLE


async def test_shorter_limits_are_recorded_so_they_outlive_the_config_change(
    store: SessionStore,
) -> None:
    sid = sid_of("tightened-kept")
    await plant(store, sid, created_ago_ms=60 * MIN, last_ago_ms=1 * MIN, idle_ms=30 * MIN)
    await check(store, sid, Limits(idle_seconds=5 * 60, absolute_seconds=8 * 3600), activity=False)
    rec = await read(store, sid)
    assert rec is not None
    assert rec.idle_ms == 5 * MIN
    assert await due_score(store, sid) == rec.last_activity_ms + 5 * MIN
    verdict = await check(store, sid, LIMITS, activity=False)
    assert verdict.idle_remaining == pytest.approx(4 * 60, abs=1)


async def test_renewal_is_flagged_once_the_session_is_older_than_the_interval(
    store: SessionStore,
) -> None:
    old, young = sid_of("renew-old"), sid_of("renew-young")
    await plant(store, old, created_ago_ms=61 * MIN, last_ago_ms=1 * MIN)
    await plant(store, young, created_ago_ms=59 * MIN, last_ago_ms=1 * MIN)
    assert (await check(store, old)).renewal_due
    assert not (await check(store, young)).renewal_due


async def test_the_script_agrees_with_the_pure_rules(store: SessionStore) -> None:
    cases = [
        (created, last, idle, activity)
        for created in (10, 100, 479, 481)
        for last in (1, 10, 14, 16)
        for idle in (5, 15, 30)
        for activity in (True, False)
        if last <= created
    ]
    for n, (created, last, idle, activity) in enumerate(cases):
        sid = sid_of(f"parity-{n}")
        planted = await plant(
            store, sid, created_ago_ms=created * MIN, last_ago_ms=last * MIN, idle_ms=idle * MIN
        )
        verdict = await check(store, sid, activity=activity)
        now = await store.server_time_ms()
        expected, after = decide(planted, LIMITS, now_ms=now, activity=activity)
        case = (created, last, idle, activity)
        assert verdict.decision is expected.decision, case
        assert verdict.idle_remaining == pytest.approx(expected.idle_remaining, abs=1)
        score = await due_score(store, sid)
        if expected.expired:
            assert score is None, case
        else:
            # The same deadline (to the millisecond the two clocks were read apart) and mark.
            assert score is not None, case
            got, absolute = keys.due_deadline(score)
            want, want_absolute = keys.due_deadline(after.due_score)
            assert absolute is want_absolute, case
            assert got == pytest.approx(want, abs=5), case


async def test_expire_leaves_a_tombstone_and_deletes_the_apps_own_session(
    store: SessionStore,
) -> None:
    sid = sid_of(EXPRESS_ID)
    app_key = EXPRESS.app_key(EXPRESS_ID)
    assert app_key is not None
    await store.client.set(app_key.key, '{"cookie":{}}')
    await check(store, sid)
    await store.expire(sid, app_key=app_key)
    assert await store.client.exists(app_key.key) == 0
    assert await due_score(store, sid) is None
    assert (await check(store, sid)).decision is Decision.EXPIRED_IDLE
    await store.expire(sid, app_key=app_key)  # idempotent


# --- sessions the app does not know leave nothing behind -----------------------------------

SPRING = build_codec("spring-session", "spring:session:")
EXPRESS = build_codec("connect-redis", "sess:")
SPRING_ID = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
EXPRESS_ID = "bW9ja2VkLXVpZC1zYWZlLTI0LWJ5dGVz"


async def check_app(store: SessionStore, codec: SessionCodec, app_id: str) -> Decision:
    """A request's check as the sidecar makes it for an app format (nothing vouched)."""
    verdict = await store.check_and_touch(
        sid_of(app_id), LIMITS, activity=True, policy=POLICY, workload=WEB,
        app_key=codec.app_key(app_id),
    )
    return verdict.decision


async def test_a_curfew_session_the_app_never_issued_is_unknown_and_writes_no_key(
    store: SessionStore,
) -> None:
    before = await store.client.dbsize()
    for n in range(200):
        verdict = await check(store, sid_of(f"stranger-{n}"), register=False)
        assert verdict.decision is Decision.UNKNOWN
    assert await store.client.dbsize() == before
    assert await store.count_sessions() == 0


async def test_an_app_session_gets_a_record_only_while_its_key_holds_the_formats_type(
    store: SessionStore,
) -> None:
    app_key = SPRING.app_key(SPRING_ID)
    assert app_key is not None
    assert await check_app(store, SPRING, SPRING_ID) is Decision.UNKNOWN
    await store.client.set(app_key.key, "a string is not a Spring session")
    assert await check_app(store, SPRING, SPRING_ID) is Decision.UNKNOWN
    assert await read(store, sid_of(SPRING_ID)) is None
    await store.client.delete(app_key.key)
    await store.client.hset(app_key.key, mapping={"creationTime": "1"})
    assert await check_app(store, SPRING, SPRING_ID) is Decision.NEW
    record = await read(store, sid_of(SPRING_ID))
    assert record is not None
    assert record.app_session
    assert await check_app(store, SPRING, SPRING_ID) is Decision.ALLOWED
    # connect-redis keeps a string per session: a hash there is not one.
    express_key = EXPRESS.app_key(EXPRESS_ID)
    assert express_key is not None
    await store.client.hset(express_key.key, mapping={"cookie": "{}"})
    assert await check_app(store, EXPRESS, EXPRESS_ID) is Decision.UNKNOWN
    await store.client.delete(express_key.key)
    await store.client.set(express_key.key, '{"cookie":{}}')
    assert await check_app(store, EXPRESS, EXPRESS_ID) is Decision.NEW


async def test_expiring_a_session_deletes_no_app_key_of_another_type(store: SessionStore) -> None:
    # A sorted set where a session id would be: Spring Session's expiration store shape.
    app_key = SPRING.app_key(SPRING_ID)
    assert app_key is not None
    await store.client.zadd(app_key.key, {"member": 1})
    sid = sid_of(SPRING_ID)
    await check(store, sid)
    await store.expire(sid, app_key=app_key)
    assert await store.client.zcard(app_key.key) == 1
    assert (await check(store, sid)).decision is Decision.EXPIRED_IDLE


async def test_an_app_re_issuing_an_expired_session_does_not_revive_it(
    store: SessionStore,
) -> None:
    sid = sid_of("re-issued")
    await plant(store, sid, created_ago_ms=60 * MIN, last_ago_ms=16 * MIN)
    assert (await check(store, sid)).decision is Decision.EXPIRED_IDLE
    verdict = await store.register(sid, LIMITS, policy=POLICY, workload=WEB)
    assert verdict.decision is Decision.EXPIRED_IDLE


async def test_a_tombstone_keeps_its_first_reason_when_expired_again(store: SessionStore) -> None:
    sid = sid_of("absolute-then-expire")
    await plant(store, sid, created_ago_ms=481 * MIN, last_ago_ms=1 * MIN)
    await check(store, sid)
    await store.expire(sid)
    tomb = await read(store, sid)
    assert tomb is not None
    assert tomb.expired is Decision.EXPIRED_ABSOLUTE


async def test_the_script_is_reloaded_after_redis_lost_its_script_cache(
    store: SessionStore,
) -> None:
    await store.client.script_flush()
    verdict = await check(store, sid_of("noscript"))
    assert verdict.decision is Decision.NEW
    assert (await check(store, sid_of("noscript"))).decision is Decision.ALLOWED


async def test_the_record_and_its_indexes_live_in_one_cluster_slot(store: SessionStore) -> None:
    sid = sid_of("slot")
    slots = {await store.client.cluster_keyslot(k) if store.cluster else _slot(k)
             for k in keys.session_keys(store.namespace, sid)}
    assert len(slots) == 1


def _slot(key: str) -> int:
    from redis.crc import key_slot

    return int(key_slot(key.encode()))


async def test_ping_succeeds_on_a_reachable_store(store: SessionStore) -> None:
    await store.ping()


async def test_a_single_request_costs_exactly_one_evalsha(redis_server: RedisServer) -> None:
    redis_server.client().flushall()
    store = SessionStore.from_url(redis_server.url, key_prefix="curfew:")
    try:
        sid = sid_of("one-trip")
        await check(store, sid)  # warm the connection and the script cache
        admin = redis_server.client()
        admin.config_resetstat()
        await check(store, sid)
        stats = admin.info("commandstats")
        calls = {name: v["calls"] for name, v in stats.items() if name != "cmdstat_info"}
        assert calls.get("cmdstat_evalsha") == 1
        top_level = {k: v for k, v in calls.items() if k in ("cmdstat_evalsha", "cmdstat_eval")}
        assert sum(top_level.values()) == 1
    finally:
        await store.aclose()


async def test_a_stopped_redis_is_one_typed_error_within_a_second() -> None:
    server = RedisServer().start()
    store = SessionStore.from_url(server.url, key_prefix="curfew:")
    try:
        await check(store, sid_of("outage"))
        server.kill()
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="Redis unavailable"):
            await check(store, sid_of("outage"))
        assert time.monotonic() - started < 1.0
        with pytest.raises(StoreUnavailable):
            await store.ping()
    finally:
        await store.aclose()
        server.stop()


async def test_a_redis_that_accepts_but_never_answers_times_out_as_unavailable() -> None:
    # A listening socket that never replies: what a hung or partitioned server looks like.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        store = SessionStore.from_url(
            f"redis://127.0.0.1:{port}/0", key_prefix="curfew:", socket_timeout=0.1, retries=1
        )
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await check(store, sid_of("hung"))
        assert time.monotonic() - started < 1.0
        await store.aclose()


async def test_concurrent_first_requests_create_one_record(store: SessionStore) -> None:
    sid = sid_of("race")
    await store.ping()  # as a sidecar does before it reports ready
    verdicts = await asyncio.gather(*(check(store, sid) for _ in range(20)))
    assert [v.decision for v in verdicts].count(Decision.NEW) == 1


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("localhost:6379", "expected redis://"),
        ("memcached://localhost", "unsupported scheme"),
        ("redis+sentinel://localhost:26379", "name the master"),
        ("redis+cluster://localhost:notaport", "invalid port"),
    ],
)
def test_an_unusable_store_url_is_a_config_error_naming_the_problem(url: str, says: str) -> None:
    with pytest.raises(StoreConfigError, match=says):
        SessionStore.from_url(url, key_prefix="curfew:")


def test_a_key_prefix_with_hash_tag_braces_is_refused() -> None:
    with pytest.raises(StoreConfigError, match="keyPrefix"):
        SessionStore.from_url("redis://localhost", key_prefix="{x}")


def test_records_are_stored_exactly_as_the_pure_model_writes_them() -> None:
    rec = SessionRecord(1, 2, 3, 4, 5, "p", "w", True)
    assert set(rec.to_fields()) == {f.value for f in keys.RecordField} - {"x", "t"}


async def test_a_sentinel_url_finds_the_master_and_serves_checks(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    conf = tmp_path / "sentinel.conf"
    port = free_port()
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\n"
        f"sentinel monitor sessions 127.0.0.1 {redis_server.port} 1\n"
    )
    sentinel = subprocess.Popen(
        ["redis-server", str(conf), "--sentinel"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    store = SessionStore.from_url(
        f"redis+sentinel://127.0.0.1:{port}/sessions", key_prefix="curfew:", socket_timeout=2
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                await store.ping()
                break
            except StoreUnavailable:
                assert time.monotonic() < deadline, "Sentinel never named the master"
                await asyncio.sleep(0.1)
        assert (await check(store, sid_of("via-sentinel"))).decision is Decision.NEW
        record = keys.record_key(store.namespace, sid_of("via-sentinel"))
        assert redis_server.client().exists(record) == 1
    finally:
        await store.aclose()
        sentinel.kill()
        sentinel.wait(10)


def _tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1, made with the openssl CLI."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.crt", "-days", "1", "-subj", "/CN=curfew-test-ca")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
            "server.csr", "-subj", "/CN=127.0.0.1")
    (directory / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.crt", "-days", "1", "-extfile", "ext.cnf")
    return directory / "ca.crt", directory / "server.crt", directory / "server.key"


async def test_a_rediss_url_checks_sessions_over_verified_tls(tmp_path: Path) -> None:
    ca, cert, key = _tls_files(tmp_path)
    tls_port = free_port()
    server = RedisServer(
        "--tls-port", str(tls_port), "--tls-cert-file", str(cert), "--tls-key-file", str(key),
        "--tls-ca-cert-file", str(ca), "--tls-auth-clients", "no",
    ).start()
    store = SessionStore.from_url(
        f"rediss://127.0.0.1:{tls_port}/0?ssl_ca_certs={ca}", key_prefix="curfew:",
        socket_timeout=2,
    )
    untrusted = SessionStore.from_url(
        f"rediss://127.0.0.1:{tls_port}/0", key_prefix="curfew:", socket_timeout=2
    )
    try:
        assert (await check(store, sid_of("over-tls"))).decision is Decision.NEW
        tls_refused = r"^Redis unavailable at 127\.0\.0\.1:\d+: TLS: .*certificate"
        with pytest.raises(StoreUnavailable, match=tls_refused):
            await check(untrusted, sid_of("over-tls"))
    finally:
        await store.aclose()
        await untrusted.aclose()
        server.stop()


async def test_sessions_spread_over_every_master_of_a_cluster(
    redis_cluster_url: str, redis_cluster: RedisClusterServers
) -> None:
    store = SessionStore.from_url(redis_cluster_url, key_prefix="curfew:", socket_timeout=5)
    try:
        for i in range(600):
            await check(store, sid_of(f"spread-{i}"))
        per_master = [node.client().dbsize() for node in redis_cluster.nodes]
        # 64 shards over three masters (23, 21 and 20 of them): each holds about a third.
        assert sum(per_master) > 600
        assert all(n > sum(per_master) / 5 for n in per_master), per_master
    finally:
        await store.aclose()
