"""`curfew purge` over Curfew's own records: reasons, repairs, idempotence, dry run, Audit,
the cap, and the summary line on stdout and in the termination message file."""

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from curfew.sessions import keys
from curfew.sessions.identity import session_hash
from curfew.sessions.lifetime import Decision, Limits
from curfew.sessions.store import RedisSessionStore
from fixtures.purge import POLICY, WEB, curfew_purge, purge_config, write_config
from fixtures.redis_servers import RedisServer
from fixtures.sessions import MIN, plant, read

KEY = b"purge-test-session-key-0123456789"


def sid(raw: str) -> str:
    return session_hash(KEY, raw)


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[RedisSessionStore]:
    s = RedisSessionStore.from_url(store_url, key_prefix="curfew:", socket_timeout=5)
    yield s
    await s.aclose()


async def populate(store: RedisSessionStore) -> dict[str, list[str]]:
    """10 live sessions, 3 idle, 2 absolute, 1 expired only by the workload's shorter limit,
    and 2 index entries whose records Redis already dropped."""
    groups: dict[str, list[str]] = {k: [] for k in ("live", "idle", "absolute", "tightened")}
    for i in range(10):
        groups["live"].append(s := sid(f"live-{i}"))
        await plant(store, s, created_ago_ms=60 * MIN, last_ago_ms=2 * MIN, workload=WEB)
    for i in range(3):
        groups["idle"].append(s := sid(f"idle-{i}"))
        await plant(store, s, created_ago_ms=60 * MIN, last_ago_ms=16 * MIN, workload=WEB)
    for i in range(2):
        groups["absolute"].append(s := sid(f"absolute-{i}"))
        await plant(store, s, created_ago_ms=481 * MIN, last_ago_ms=1 * MIN, workload=WEB)
    # Recorded with a 30-minute idle limit; the workload's current limit is 15 minutes.
    groups["tightened"].append(s := sid("tightened"))
    await plant(
        store, s, created_ago_ms=60 * MIN, last_ago_ms=20 * MIN, idle_ms=30 * MIN, workload=WEB
    )
    for i in range(2):
        gone = sid(f"vanished-{i}")
        due_key = keys.due_key(store.namespace, keys.shard_of(gone))
        await store.client.zadd(due_key, {keys.due_member(keys.owner_id(POLICY, WEB), gone): 1})
    return groups


async def test_a_purge_expires_each_session_for_its_reason_and_keeps_the_live_ones(
    store: RedisSessionStore, store_url: str, tmp_path: Path
) -> None:
    groups = await populate(store)
    planted = {s: await read(store, s) for s in groups["idle"] + groups["absolute"]}
    log = tmp_path / "termination-log"
    run = curfew_purge(
        write_config(tmp_path, purge_config()), store_url, "--termination-log", str(log)
    )
    assert run.code == 0, run.stderr
    summary = run.summary
    assert summary["outcome"] == "ok"
    assert summary["expired"] == {"idle": 3, "absolute": 2, "tightened": 1}
    assert summary["repaired"] == 2
    assert summary["scanned"] == 18
    assert set(summary) == {
        "outcome", "scanned", "expired", "repaired", "malformed", "durationSeconds", "message"
    }
    assert json.loads(log.read_text()) == summary
    for s in groups["live"]:
        rec = await read(store, s)
        assert rec is not None
        assert rec.expired is None
    for s, before in planted.items():
        # Expired by its own fields: only its index entry goes; the record is its own tombstone.
        assert await read(store, s) == before
    [tightened] = groups["tightened"]
    tomb = await read(store, tightened)
    assert tomb is not None
    assert tomb.expired is Decision.EXPIRED_IDLE, "only the tightened record is marked"
    assert await store.count_sessions() == 10


async def test_a_cookie_of_a_session_purged_by_its_index_entry_alone_is_still_refused(
    store: RedisSessionStore, store_url: str, tmp_path: Path
) -> None:
    groups = await populate(store)
    assert curfew_purge(write_config(tmp_path, purge_config()), store_url).code == 0
    loosened = Limits(idle_seconds=24 * 3600, absolute_seconds=48 * 3600)
    for name, decision in (("idle", Decision.EXPIRED_IDLE), ("absolute", Decision.EXPIRED_ABSOLUTE),
                           ("tightened", Decision.EXPIRED_IDLE)):
        for s in groups[name]:
            for limits in (Limits(15 * 60, 8 * 3600), loosened):
                verdict = await store.check_and_touch(
                    s, limits, activity=True, policy=POLICY, workload=WEB
                )
                assert verdict.decision is decision, (name, limits)
            after = await read(store, s)
            assert after is not None
            assert after.expired is decision, name
    assert await store.count_sessions() == 10


async def test_each_removed_session_has_an_audit_event_with_its_keyed_hash_only(
    store: RedisSessionStore, store_url: str, tmp_path: Path
) -> None:
    groups = await populate(store)
    run = curfew_purge(write_config(tmp_path, purge_config()), store_url)
    events = run.events
    assert sorted(e["session"] for e in events) == sorted(
        groups["idle"] + groups["absolute"] + groups["tightened"]
    )
    assert {e["reason"] for e in events} == {"idle", "absolute", "tightened"}
    assert all(e["event"] == "session.expired" and e["workload"] == WEB for e in events)
    assert all(e["policy"] == "shop/storefront" and e["time"].endswith("Z") for e in events)
    assert "live-" not in run.stdout + run.stderr
    assert "idle-" not in run.stdout + run.stderr


async def test_a_second_run_finds_nothing_left_to_do(
    store: RedisSessionStore, store_url: str, tmp_path: Path
) -> None:
    await populate(store)
    config = write_config(tmp_path, purge_config())
    assert curfew_purge(config, store_url).code == 0
    again = curfew_purge(config, store_url)
    assert again.code == 0
    assert again.summary["expired"] == {"idle": 0, "absolute": 0, "tightened": 0}
    assert again.summary["repaired"] == 0
    assert again.summary["scanned"] == 10
    assert again.events == []


async def _snapshot(store: RedisSessionStore) -> dict[bytes, bytes]:
    client = store.client
    snapshot = {}
    nodes = client.get_primaries() if store.cluster else [None]
    for node in nodes:
        kwargs = {"target_nodes": node} if node is not None else {}
        for key in await client.keys("*", **kwargs):
            snapshot[key] = await client.dump(key)
    return snapshot


@pytest.mark.parametrize(
    ("how", "args", "enforcement", "says"),
    [
        ("--dry-run", ("--dry-run",), "Enforce", "dry run"),
        ("enforcement: Audit", (), "Audit", "enforcement is Audit"),
    ],
)
async def test_a_dry_run_reports_what_it_would_remove_and_removes_nothing(
    store: RedisSessionStore,
    store_url: str,
    tmp_path: Path,
    how: str,
    args: tuple[str, ...],
    enforcement: str,
    says: str,
) -> None:
    await populate(store)
    before = await _snapshot(store)
    run = curfew_purge(
        write_config(tmp_path, purge_config(enforcement=enforcement)), store_url, *args,
        env={"CURFEW_PURGE_PROGRESS": "true"},
    )
    assert run.code == 0, how
    assert run.summary["expired"] == {"idle": 3, "absolute": 2, "tightened": 1}
    assert run.summary["message"] == f"{says}: would remove 6 sessions, removed nothing"
    assert {e["event"] for e in run.events} == {"session.wouldExpire"}
    # Every word it prints (summary, audit lines, the progress line) says nothing went.
    assert "purge: judging: " in run.stderr
    said = (run.stdout + run.stderr).replace("removed nothing", "")
    assert not re.search(r"remov(ing|ed)\b|\bdeleted?\b", said), said
    assert await _snapshot(store) == before


async def test_the_cap_aborts_a_run_that_would_remove_too_many_and_removes_nothing(
    store: RedisSessionStore, store_url: str, tmp_path: Path
) -> None:
    await populate(store)
    before = await _snapshot(store)
    # A policy misconfigured to a 1-minute idle limit would log out every session.
    config = write_config(tmp_path, purge_config(workloads=(("web", 60, 28800),)))
    run = curfew_purge(config, store_url)
    assert run.code == 3
    assert run.summary["outcome"] == "aborted"
    assert "maxPurgeFraction" in run.summary["message"]
    assert "nothing was removed" in run.summary["message"]
    assert "maxPurgeFraction" in run.stderr
    assert await _snapshot(store) == before


async def test_the_cap_lets_a_run_below_the_fraction_through(
    store: RedisSessionStore, store_url: str, tmp_path: Path
) -> None:
    await populate(store)
    # 6 of 18 expire (33%): under a 40% cap, over a 30% one.
    assert curfew_purge(write_config(tmp_path, purge_config(max_fraction=0.3)), store_url).code == 3
    assert curfew_purge(write_config(tmp_path, purge_config(max_fraction=0.4)), store_url).code == 0


async def test_a_policy_json_is_accepted_as_the_config_too(
    store: RedisSessionStore, store_url: str, tmp_path: Path
) -> None:
    from curfew.api.config import (
        ConfigSecretRef,
        ConfigSession,
        ConfigStore,
        ConfigTimeouts,
        UnifiedConfig,
        WorkloadId,
    )

    groups = await populate(store)
    doc = UnifiedConfig(
        workload=WorkloadId(kind="Deployment", namespace="shop", name="web"),
        sources=("shop/storefront",),
        enforcement="Enforce",
        timeouts=ConfigTimeouts(idle_seconds=900, absolute_seconds=28800),
        session=ConfigSession(cookie_name="session"),
        store=ConfigStore(
            format="curfew",
            key_prefix="curfew:",
            redis_secret_ref=ConfigSecretRef(name="r", key="url"),
            session_key_secret_ref=ConfigSecretRef(name="r", key="session-key"),
        ),
    ).sealed()
    run = curfew_purge(write_config(tmp_path, doc, "policy.json"), store_url)
    assert run.code == 0, run.stderr
    assert run.summary["expired"] == {"idle": 3, "absolute": 2, "tightened": 1}
    assert len(groups["live"]) == await store.count_sessions()


@pytest.mark.parametrize(
    ("shard_batch", "pipelines"), [("1", "1"), ("3", "2"), ("5000", "2"), ("3", "8")]
)
async def test_sessions_of_several_workloads_across_many_batches_each_get_their_own_audit_line(
    store: RedisSessionStore, store_url: str, tmp_path: Path, shard_batch: str, pipelines: str
) -> None:
    api = "Deployment/shop/api"
    expected: dict[str, tuple[str, str]] = {}
    live = []
    for i in range(40):
        workload = WEB if i % 2 else api
        s = sid(f"many-{i}")
        if i % 4 == 0:
            live.append(s)
            await plant(store, s, created_ago_ms=60 * MIN, last_ago_ms=MIN, workload=workload)
        elif i % 4 == 1:
            expected[s] = ("idle", workload)
            await plant(store, s, created_ago_ms=60 * MIN, last_ago_ms=16 * MIN, workload=workload)
        elif i % 4 == 2:
            expected[s] = ("absolute", workload)
            await plant(store, s, created_ago_ms=481 * MIN, last_ago_ms=MIN, workload=workload)
        else:
            # Live under its recorded 30 minutes; the api workload is held to 10 now.
            if workload == api:
                expected[s] = ("tightened", workload)
            else:
                live.append(s)
            await plant(store, s, created_ago_ms=60 * MIN, last_ago_ms=12 * MIN,
                        idle_ms=30 * MIN, workload=workload)
    config = purge_config(workloads=(("web", 900, 28800), ("api", 600, 28800)), max_fraction=1)
    run = curfew_purge(
        write_config(tmp_path, config),
        store_url,
        env={"CURFEW_PURGE_SHARD_BATCH": shard_batch, "CURFEW_PURGE_PIPELINES": pipelines},
    )
    assert run.code == 0, run.stderr
    got = {e["session"]: (e["reason"], e["workload"]) for e in run.events}
    assert len(run.events) == len(got)
    assert got == expected
    for s in live:
        rec = await read(store, s)
        assert rec is not None
        assert rec.expired is None
    assert await store.count_sessions() == len(live)


def sids_in_shard(shard: int, n: int, tag: str) -> list[str]:
    """``n`` session hashes that fall in ``shard``, so their entries share one index batch."""
    found = []
    i = 0
    while len(found) < n:
        s = sid(f"{tag}-{i}")
        if keys.shard_of(s) == shard:
            found.append(s)
        i += 1
    return found


async def test_a_group_is_named_by_the_next_record_when_its_first_is_gone_and_repaired_when_all_are(
    store: RedisSessionStore, store_url: str, tmp_path: Path
) -> None:
    api = "Deployment/shop/api"
    named = sids_in_shard(7, 3, "named")
    for n, s in enumerate(named):
        await plant(store, s, created_ago_ms=60 * MIN, last_ago_ms=(20 + n) * MIN, workload=WEB)
    [lone] = sids_in_shard(9, 1, "lone")
    await plant(store, lone, created_ago_ms=60 * MIN, last_ago_ms=20 * MIN, workload=api)
    # Records deleted before their retention ran out (by hand, or evicted): the oldest entry of
    # the first group, the only entry of the second.
    await store.client.delete(keys.record_key(store.namespace, named[-1]))
    await store.client.delete(keys.record_key(store.namespace, lone))
    run = curfew_purge(write_config(tmp_path, purge_config(max_fraction=1)), store_url)
    assert run.code == 0, run.stderr
    assert sorted(e["session"] for e in run.events) == sorted(named)
    assert {(e["policy"], e["workload"]) for e in run.events} == {(POLICY, WEB)}
    assert run.summary["expired"] == {"idle": 3, "absolute": 0, "tightened": 0}
    assert run.summary["repaired"] == 1
    assert await store.count_sessions() == 0


async def test_the_common_path_writes_no_record_and_reads_one_record_per_group_and_batch(
    redis_server: RedisServer, redis_url: str, tmp_path: Path
) -> None:
    store = RedisSessionStore.from_url(redis_url, key_prefix="curfew:", socket_timeout=5)
    api = "Deployment/shop/api"
    try:
        expired = []
        for i in range(300):
            s = sid(f"common-{i}")
            workload = WEB if i % 3 else api
            if i % 2:
                expired.append((s, workload))
                await plant(store, s, created_ago_ms=60 * MIN, last_ago_ms=16 * MIN,
                            workload=workload)
            else:
                await plant(store, s, created_ago_ms=60 * MIN, last_ago_ms=MIN, workload=workload)
        for i in range(20):
            # Entries whose records lapsed long ago: repaired by their score alone.
            s = sid(f"lapsed-{i}")
            await store.client.zadd(keys.due_key(store.namespace, keys.shard_of(s)),
                                    {keys.due_member(keys.owner_id(POLICY, WEB), s): 1_000})
        before = {s: await store.client.dump(keys.record_key(store.namespace, s))
                  for s, _ in expired}
        admin = redis_server.client()
        admin.config_resetstat()
        config = purge_config(workloads=(("web", 900, 28800), ("api", 900, 28800)),
                              max_fraction=1)
        run = curfew_purge(write_config(tmp_path, config), redis_url)
        assert run.code == 0, run.stderr
        assert run.summary["expired"]["idle"] == len(expired)
        assert run.summary["repaired"] == 20
        stats = admin.info("commandstats")
        assert "cmdstat_hset" not in stats
        # Every shard fits one batch: one HMGET per (shard, owner) that has expired sessions.
        groups = {(keys.shard_of(s), w) for s, w in expired}
        assert stats["cmdstat_hmget"]["calls"] == len(groups)
        for s, _ in expired:
            assert await store.client.dump(keys.record_key(store.namespace, s)) == before[s]
        assert await store.count_sessions() == 150
    finally:
        await store.aclose()
