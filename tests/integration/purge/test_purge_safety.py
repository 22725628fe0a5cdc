"""The purge job's safety: guarded removals, overlapping runs, a Redis restart mid-run, usage
errors in one line, and the progress line only on a terminal."""

import asyncio
import io
import json
import os
import pty
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from curfew.purge.engine import Purge
from curfew.purge.report import Audit, Progress
from curfew.purge.target import build_target
from curfew.sessions import keys
from curfew.sessions.apps import AppSessions
from curfew.sessions.identity import session_hash
from curfew.sessions.lifetime import Decision, Limits
from curfew.sessions.protocol import ShardBatch
from curfew.sessions.store import RedisSessionStore
from fixtures.purge import (
    POLICY,
    SESSION_KEY,
    WEB,
    curfew_purge,
    purge_config,
    purge_env,
    write_config,
)
from fixtures.redis_servers import RedisServer
from fixtures.sessions import MIN, plant, read

OWNER = keys.owner_id(POLICY, WEB)


def sid(raw: str) -> str:
    return session_hash(SESSION_KEY.encode(), raw)


async def plant_many(store: RedisSessionStore, prefix: str, n: int, *, last_ago_ms: int) -> None:
    """Write ``n`` records in pipelines, as check_and_touch would have written them."""
    now = await store.server_time_ms()
    for start in range(0, n, 5000):
        pipe = store.client.pipeline(transaction=False)
        for i in range(start, min(n, start + 5000)):
            s = sid(f"{prefix}-{i}")
            record, due, _ = keys.session_keys(store.namespace, s)
            last = now - last_ago_ms
            pipe.hset(record, mapping={"c": now - 60 * MIN, "l": last, "i": 15 * MIN,
                                       "a": 480 * MIN, "u": now - 60 * MIN, "p": POLICY,
                                       "w": WEB, "k": "0", "o": OWNER})
            pipe.zadd(due, {keys.due_member(OWNER, s): last + 15 * MIN})
        await pipe.execute()


async def test_a_session_touched_after_it_was_judged_is_not_removed(redis_url: str) -> None:
    store = RedisSessionStore.from_url(redis_url, key_prefix="curfew:", socket_timeout=5)
    try:
        s = sid("comes-back")
        rec = await plant(store, s, created_ago_ms=60 * MIN, last_ago_ms=20 * MIN)
        await store.load_scripts()
        # The purge judged it with this last activity; then the user came back.
        await store.client.hset(keys.record_key(store.namespace, s), "l", rec.last_activity_ms + 1)
        assert await store.purge_records([(s, rec.last_activity_ms, Decision.EXPIRED_IDLE)]) == [
            "touched"
        ]
        after = await read(store, s)
        assert after is not None
        assert after.expired is None
    finally:
        await store.aclose()


async def test_an_app_session_changed_after_it_was_read_is_not_removed(redis_url: str) -> None:
    store = RedisSessionStore.from_url(
        redis_url, key_prefix="sess:", format="connect-redis", socket_timeout=5
    )
    try:
        client = store.client
        await client.set("sess:abc", '{"cookie":{"originalMaxAge":null},"n":1}')
        apps = AppSessions(client, format="connect-redis", prefix="sess:")
        await store.load_scripts()
        [batch] = [b async for b in apps.walk()]
        await client.set("sess:abc", '{"cookie":{"originalMaxAge":null},"n":2}')
        assert await apps.remove(batch.sessions) == [False]
        assert await client.exists("sess:abc") == 1
    finally:
        await store.aclose()


async def test_two_overlapping_runs_remove_each_session_once(redis_url: str) -> None:
    store = RedisSessionStore.from_url(redis_url, key_prefix="curfew:", socket_timeout=5)
    try:
        await plant_many(store, "live", 3000, last_ago_ms=MIN)
        await plant_many(store, "idle", 2000, last_ago_ms=20 * MIN)
        target = build_target(purge_config())

        def purge() -> Purge:
            return Purge(store, target, audit=Audit(io.StringIO(), dry_run=False,
                                                    store_format="curfew"),
                         progress=Progress(False), batch_size=100)

        first, second = await asyncio.gather(purge().run(), purge().run())
        assert first.outcome == second.outcome == "ok"
        assert first.expired["idle"] + second.expired["idle"] == 2000
        assert await store.count_sessions() == 3000
    finally:
        await store.aclose()


async def test_two_overlapping_purge_processes_leave_a_consistent_store(
    redis_url: str, tmp_path: Path
) -> None:
    store = RedisSessionStore.from_url(redis_url, key_prefix="curfew:", socket_timeout=5)
    try:
        await plant_many(store, "live", 3000, last_ago_ms=MIN)
        await plant_many(store, "idle", 2000, last_ago_ms=20 * MIN)
        config = write_config(tmp_path, purge_config())
        cmd = [sys.executable, "-m", "curfew", "purge", "--config", str(config),
               "--batch-size", "50"]
        procs = [
            subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=purge_env(redis_url))
            for _ in range(2)
        ]
        outputs = [p.communicate(timeout=120) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], [o[1] for o in outputs]
        audited = [line for out, _ in outputs for line in out.splitlines()[:-1]]
        assert len(audited) == 2000, "each session is audited by exactly one run"
        assert await store.count_sessions() == 3000
    finally:
        await store.aclose()


async def test_a_redis_restart_mid_run_fails_clearly_and_the_next_run_finishes(
    tmp_path: Path,
) -> None:
    server = RedisServer(persist=True).start()
    store = RedisSessionStore.from_url(server.url, key_prefix="curfew:", socket_timeout=5)
    try:
        await plant_many(store, "live", 40_000, last_ago_ms=MIN)
        await plant_many(store, "idle", 30_000, last_ago_ms=20 * MIN)
        await store.aclose()
        config = write_config(tmp_path, purge_config())
        log = tmp_path / "termination-log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "curfew", "purge", "--config", str(config),
             "--termination-log", str(log)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            # Small script batches stretch the run so the kill lands while it removes.
            env={**purge_env(server.url), "CURFEW_PURGE_SHARD_BATCH": "2"},
        )
        assert proc.stdout is not None
        for _ in range(200):  # wait until removals are under way
            assert "session.expired" in proc.stdout.readline()
        server.kill()
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 1
        summary = out.strip().splitlines()[-1]
        assert '"outcome": "failed"' in summary
        assert "Redis unavailable" in summary
        assert "the next run continues" in summary
        assert log.read_text().strip() == summary
        assert "Traceback" not in err

        server.start()  # same port, same append-only file
        store = RedisSessionStore.from_url(server.url, key_prefix="curfew:", socket_timeout=5)
        removed_before = 30_000 - await _live_idle_count(store)
        assert 0 < removed_before < 30_000, "the kill must land mid-run"
        again = curfew_purge(config, server.url)
        assert again.code == 0, again.stderr
        assert sum(again.summary["expired"].values()) == 30_000 - removed_before
        assert await store.count_sessions() == 40_000
        assert await _live_idle_count(store) == 0
    finally:
        await store.aclose()
        server.stop()


async def _live_idle_count(store: RedisSessionStore) -> int:
    """Idle records still live (not tombstones): each is whole, never half-deleted."""
    now = await store.server_time_ms()
    live = 0
    for shard in range(keys.SHARDS):
        due = await store.client.zrangebyscore(keys.due_key(store.namespace, shard), "-inf", now)
        sids = [keys.split_due_member(m.decode())[1] for m in due]
        for record in await store.read_records(sids):
            assert record is not None
            assert record.expired is None
            live += 1
    return live


@pytest.mark.parametrize(
    ("case", "args", "url", "says"),
    [
        ("missing config file", ("--config", "/nonexistent/purge.json"), "redis://127.0.0.1:1",
         "/nonexistent/purge.json: cannot read the config file"),
        ("no store URL", None, None, "no store URL: pass --redis-url or set REDIS_URL"),
        ("a bad URL", None, "memcached://x", "unsupported scheme"),
    ],
)
def test_a_usage_error_is_one_line_and_exit_code_2(
    tmp_path: Path, case: str, args: tuple[str, ...] | None, url: str | None, says: str
) -> None:
    config = write_config(tmp_path, purge_config())
    argv = args or ("--config", str(config))
    proc = subprocess.run(
        [sys.executable, "-m", "curfew", "purge", *argv], capture_output=True, text=True,
        env=purge_env(url), timeout=60,
    )
    assert proc.returncode == 2, case
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("curfew purge: error: ")
    assert says in lines[0]
    assert '"outcome": "failed"' in proc.stdout


def test_an_invalid_config_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "purge.json"
    doc = purge_config().body()
    doc["timeouts"]["idleSeconds"] = -5
    path.write_text(json.dumps(doc))
    run = curfew_purge(path, "redis://127.0.0.1:1")
    assert run.code == 2
    assert "timeouts.idleSeconds" in run.stderr


def test_an_unreachable_store_fails_with_exit_code_1(tmp_path: Path) -> None:
    run = curfew_purge(write_config(tmp_path, purge_config()), "redis://127.0.0.1:1/0")
    assert run.code == 1
    assert run.summary["outcome"] == "failed"
    assert "Redis unavailable" in run.summary["message"]


def test_the_progress_line_shows_on_a_terminal_only(redis_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path, purge_config())
    piped = curfew_purge(config, redis_url)
    assert "purge:" not in piped.stderr
    leader, follower = pty.openpty()
    proc = subprocess.run(
        [sys.executable, "-m", "curfew", "purge", "--config", str(config)],
        stdout=subprocess.PIPE, stderr=follower, env=purge_env(redis_url), timeout=60,
    )
    os.close(follower)
    shown = b""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert proc.returncode == 0
    assert b"purge: judged: scanned 0, expired 0" in shown


def test_limits_from_the_config_are_what_the_run_judges_by() -> None:
    target = build_target(purge_config(workloads=(("web", 300, 3600), ("api", 600, 7200))))
    assert target.current_limits("Deployment/shop/web") == Limits(300, 3600)
    assert target.current_limits("Deployment/shop/other") is None
    assert target.min_idle_ms == 300_000


async def test_the_cap_counts_due_entries_when_no_limits_shrank(redis_url: str) -> None:
    store = RedisSessionStore.from_url(redis_url, key_prefix="curfew:", socket_timeout=5)
    try:
        await plant_many(store, "live", 1000, last_ago_ms=MIN)
        await plant_many(store, "idle", 2000, last_ago_ms=20 * MIN)
        summary = await Purge(
            store, build_target(purge_config()),
            audit=Audit(io.StringIO(), dry_run=False, store_format="curfew"),
            progress=Progress(False),
        ).run()
        assert summary.outcome == "aborted"
        assert "would remove 2000 of 3000 sessions (67%)" in summary.message
        assert await store.count_sessions() == 3000
    finally:
        await store.aclose()


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[RedisSessionStore]:
    s = RedisSessionStore.from_url(redis_url, key_prefix="curfew:", socket_timeout=5)
    await s.load_scripts()
    yield s
    await s.aclose()


async def remove_batch(
    store: RedisSessionStore, s: str, *, now: int, until: int, workloads: dict[str, Limits]
) -> ShardBatch:
    """One ``purge_shard`` call in remove mode on the shard of ``s``, by a run that took its
    snapshot of the clock at ``now``."""
    shard = keys.shard_of(s)
    batches = await store.purge_shards(
        {shard: 0}, now_ms=now, until_ms=until, count=10, mode="remove", workloads=workloads
    )
    return batches[shard]


async def test_a_session_touched_after_the_runs_snapshot_is_judged_by_its_new_activity(
    store: RedisSessionStore,
) -> None:
    now = await store.server_time_ms()
    # Both were recorded with a 30-minute idle limit and left 20 minutes ago: live under it,
    # expired under the workload's current 15 minutes (read from the tightening window).
    back, away = sid("back"), sid("away")
    for s in (back, away):
        await plant(store, s, created_ago_ms=60 * MIN, last_ago_ms=20 * MIN, idle_ms=30 * MIN,
                    now_ms=now)
    # After the run took its snapshot, the user of one comes back (a sidecar still on the
    # 30-minute config touches it); the touch moves its index entry in the same step.
    verdict = await store.check_and_touch(back, Limits(30 * 60, 8 * 3600), activity=True,
                                          policy=POLICY, workload=WEB)
    assert verdict.decision is Decision.ALLOWED
    removed = {}
    for s in (back, away):
        batch = await remove_batch(store, s, now=now, until=now + 15 * MIN,
                                   workloads={WEB: Limits(15 * 60, 8 * 3600)})
        removed[s] = sum(g.count for g in batch.groups)
    assert removed == {back: 0, away: 1}
    kept, gone = await read(store, back), await read(store, away)
    assert kept is not None
    assert kept.expired is None
    assert gone is not None
    assert gone.expired is Decision.EXPIRED_IDLE


async def test_a_session_the_sidecar_expired_first_is_not_removed_or_audited_again(
    store: RedisSessionStore,
) -> None:
    now = await store.server_time_ms()
    s = sid("expired-by-the-sidecar")
    await plant(store, s, created_ago_ms=60 * MIN, last_ago_ms=20 * MIN, now_ms=now)
    verdict = await store.check_and_touch(s, Limits(15 * 60, 8 * 3600), activity=True,
                                          policy=POLICY, workload=WEB)
    assert verdict.decision is Decision.EXPIRED_IDLE
    batch = await remove_batch(store, s, now=now, until=now, workloads={})
    assert batch.examined == 0
    assert batch.groups == []
