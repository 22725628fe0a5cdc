"""Purge benchmark: the cost of `curfew purge` against a baseline measured in the same run.

Starts its own redis-server on a free loopback port, then measures:

1. the baseline: raw pipelined DEL throughput (`redis-benchmark -P 64`, keys made by
   `redis-benchmark -t set` first);
2. `curfew purge` over N Curfew sessions of which 10% are idle-expired (expired per second),
   written as check_and_touch writes them (owner field, due index member and score);
3. `curfew purge` over N Curfew sessions none of which expired (seconds: must not grow with N);
4. `curfew purge` walking N Spring Session sessions (JDK-serialized, with their expiry keys) by
   SCAN (sessions per second);
5. `curfew purge` walking N php-redis sessions (phpredis's strings, 10% idle by their TTL) by
   SCAN, once without Curfew records and once with one per session (sessions per second: the
   TTL clock has no index, so this format always walks);

and the slowest command Redis logged during the three purges (SLOWLOG). It prints the machine's
load average before and after each measurement (every figure here is wall-clock time on a
shared machine), and, per removed session, the run's time and Redis's own time in
purge_shard (INFO commandstats). It ends with

    RESULT expired_per_s=… ratio_to_raw_del=… none_expired_seconds=… spring_keys_per_s=…
    php_walk_per_s=… php_walk_with_records_per_s=… max_slowlog_ms=…

Usage: python bench/purge.py [--sessions N] [--spring N] [--php N]   (defaults 1000000 each)
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from curfew.api.config import (
    ConfigPurge,
    ConfigSecretRef,
    ConfigStore,
    ConfigTimeouts,
    PurgeConfig,
    PurgeWorkload,
)
from curfew.sessions import keys
from curfew.sessions.identity import session_hash

SESSION_KEY = "bench-session-key-0123456789abcdef"
OWNER = keys.owner_id("bench/policy", "Deployment/bench/web")
RETAIN_MS = round(keys.RETAIN_SECONDS * 1000)
MIN = 60_000
CHUNK = 20_000

# Server-side generators: records written as check_and_touch writes them (owner field, due
# index member "<owner><sid>", score = earliest deadline + 0.5 when absolute), without a million
# round trips. They name keys the script does not declare, which a single server allows.
CURFEW_SESSIONS = """
local ns, first, n, now, every = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]),
  tonumber(ARGV[4]), tonumber(ARGV[5])
local owner, retain = ARGV[6], tonumber(ARGV[7])
local function s(v) return string.format('%d', v) end
local created, idle, abs = now - 3600000, 900000, 28800000
for i = first, first + n - 1 do
  local sid = redis.sha1hex(tostring(i)) .. string.sub(redis.sha1hex(i .. 'b'), 1, 24)
  local tag = string.format('{%02x}', tonumber(string.sub(sid, 1, 4), 16) % 64)
  local last = now - 60000
  if every > 0 and i % every == 0 then last = now - 1200000 end
  local rec = ns .. tag .. ':r:' .. sid
  redis.call('HSET', rec, 'c', s(created), 'l', s(last), 'i', s(idle), 'a', s(abs),
    'u', s(created), 'p', 'bench/policy', 'w', 'Deployment/bench/web', 'k', '0', 'o', owner)
  local di, da = last + idle, created + abs
  local score = s(di)
  if da < di then score = s(da) .. '.5' end
  redis.call('ZADD', ns .. tag .. ':due', score, owner .. sid)
  redis.call('ZADD', ns .. tag .. ':limits', 'GT', s(da), s(idle) .. ':' .. s(abs))
  redis.call('PEXPIREAT', rec, s(math.min(di, da) + retain))
end
return n
"""

# Spring Session's RedisIndexedSessionRepository layout, JDK-serialized values: the session
# hash (TTL maxInactiveInterval + 5 min) and its sessions:expires:<id> key.
SPRING_SESSIONS = """
local prefix, first, n, now = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local long_head, int_head = ARGV[5], ARGV[6]
for i = first, first + n - 1 do
  local h = redis.sha1hex(tostring(i))
  local id = string.sub(h, 1, 8) .. '-' .. string.sub(h, 9, 12) .. '-' .. string.sub(h, 13, 16)
    .. '-' .. string.sub(h, 17, 20) .. '-' .. string.sub(h, 21, 32)
  local key = prefix .. 'sessions:' .. id
  redis.call('HSET', key, 'creationTime', long_head .. struct.pack('>l', now - 3600000),
    'lastAccessedTime', long_head .. struct.pack('>l', now - 60000),
    'maxInactiveInterval', int_head .. struct.pack('>i', 1800))
  redis.call('PEXPIRE', key, 2100000)
  redis.call('SET', prefix .. 'sessions:expires:' .. id, '', 'PX', 1800000)
end
return n
"""

# phpredis's layout: one string per session, SETEX <prefix><id> <gc_maxlifetime> <data> (PHP's
# `php` serializer), ids of 32 hex characters (PHP 8.2's default). With gc_maxlifetime 1440 s,
# every tenth has 300 s left, so 1140 s used: idle past the policy's 15 minutes; the others
# were renewed a minute ago.
PHP_SESSIONS = """
local prefix, first, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
for i = first, first + n - 1 do
  local ttl = 1380000
  if i % 10 == 0 then ttl = 300000 end
  redis.call('SET', prefix .. string.sub(redis.sha1hex(tostring(i)), 1, 32),
    'user|s:5:"alice";', 'PX', ttl)
end
return n
"""
PHP_LIFETIME = 1440

# Curfew's records of given session hashes, as check_and_touch writes them (idle ones alike).
PHP_RECORDS = """
local ns, now, owner, retain = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local function s(v) return string.format('%d', v) end
local created, idle, abs = now - 3600000, 900000, 28800000
for j = 5, #ARGV, 2 do
  local sid, last = ARGV[j], now - tonumber(ARGV[j + 1])
  local tag = string.format('{%02x}', tonumber(string.sub(sid, 1, 4), 16) % 64)
  local rec = ns .. tag .. ':r:' .. sid
  redis.call('HSET', rec, 'c', s(created), 'l', s(last), 'i', s(idle), 'a', s(abs),
    'u', s(created), 'p', 'bench/policy', 'w', 'Deployment/bench/web', 'k', '1', 'o', owner)
  local di, da = last + idle, created + abs
  redis.call('ZADD', ns .. tag .. ':due', s(math.min(di, da)), owner .. sid)
  redis.call('ZADD', ns .. tag .. ':limits', 'GT', s(da), s(idle) .. ':' .. s(abs))
  redis.call('PEXPIREAT', rec, s(math.min(di, da) + retain))
end
return (#ARGV - 4) / 2
"""

_NUMBER_TAIL = "787200106a6176612e6c616e672e4e756d62657286ac951d0b94e08b0200007870"
JDK_LONG_HEAD = bytes.fromhex(
    "aced00057372000e6a6176612e6c616e672e4c6f6e673b8be490cc8f23df0200014a000576616c7565"
    + _NUMBER_TAIL
)
JDK_INTEGER_HEAD = bytes.fromhex(
    "aced0005737200116a6176612e6c616e672e496e746567657212e2a0a4f781873802000149000576616c7565"
    + _NUMBER_TAIL
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
         "--save", "", "--appendonly", "no", "--loglevel", "warning",
         "--slowlog-log-slower-than", "1000", "--slowlog-max-len", "10000"],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            return proc, port
        except redis.ConnectionError:
            time.sleep(0.05)
    raise SystemExit("redis-server did not start")


def raw_del_per_s(port: int, n: int) -> float:
    """redis-benchmark's pipelined DEL throughput over keys it SET first."""
    common = ["redis-benchmark", "-p", str(port), "-n", str(n), "-r", str(n), "-P", "64"]
    subprocess.run([*common, "-t", "set", "-q"], check=True, capture_output=True)
    out = subprocess.run(
        [*common, "--csv", "DEL", "key:__rand_int__"], check=True, capture_output=True, text=True
    ).stdout
    rows = [r for r in csv.reader(io.StringIO(out)) if r and r[0] != "test"]
    return float(rows[-1][1])


def machine_load(when: str) -> None:
    """The load average, so a reader can judge how busy the machine was during a figure."""
    one, five, fifteen = os.getloadavg()
    print(f"  load average {when}: {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs",
          flush=True)


def server_usec(client: redis.Redis, command: str) -> float:
    """Microseconds Redis spent in ``command`` since the last CONFIG RESETSTAT."""
    stats = client.info("commandstats").get(f"cmdstat_{command}", {})
    return float(stats.get("usec", 0))


def populate(client: redis.Redis, script: str, total: int, *args: object) -> None:
    sha = client.script_load(script)
    now_s, now_us = client.time()
    now = now_s * 1000 + now_us // 1000
    for first in range(0, total, CHUNK):
        n = min(CHUNK, total - first)
        client.evalsha(sha, 0, args[0], first, n, now, *args[1:])


def php_records(client: redis.Redis, total: int) -> None:
    """A Curfew record for each session PHP_SESSIONS wrote (the keyed hash of its id)."""
    sha = client.script_load(PHP_RECORDS)
    now_s, now_us = client.time()
    now = now_s * 1000 + now_us // 1000
    namespace = keys.curfew_namespace("php-redis", "PHPREDIS_SESSION:")
    for first in range(0, total, CHUNK // 4):
        args: list[str | int] = []
        for i in range(first, min(first + CHUNK // 4, total)):
            raw = hashlib.sha1(str(i).encode(), usedforsecurity=False).hexdigest()[:32]
            args += [session_hash(SESSION_KEY.encode(), raw), 1_200_000 if i % 10 == 0 else 60_000]
        client.evalsha(sha, 0, namespace, now, OWNER, RETAIN_MS, *args)


def purge_config(path: Path, fmt: str, prefix: str) -> Path:
    doc = PurgeConfig(
        policy="policy",
        namespace="bench",
        enforcement="Enforce",
        store=ConfigStore(
            format=fmt,  # type: ignore[arg-type]
            key_prefix=prefix,
            redis_secret_ref=ConfigSecretRef(name="r", key="url"),
            session_key_secret_ref=ConfigSecretRef(name="r", key="session-key"),
            app_ttl_seconds=PHP_LIFETIME if fmt == "php-redis" else None,
        ),
        timeouts=ConfigTimeouts(idle_seconds=900, absolute_seconds=28800),
        purge=ConfigPurge(max_purge_fraction=0.5),
        workloads=(PurgeWorkload(kind="Deployment", name="web", idle_seconds=900,
                                 absolute_seconds=28800),),
    ).sealed()
    path.write_text(doc.to_json())
    return path


def run_purge(config: Path, port: int) -> dict[str, object]:
    env = dict(os.environ, REDIS_URL=f"redis://127.0.0.1:{port}/0",
               CURFEW_SESSION_KEY=SESSION_KEY)
    proc = subprocess.run(
        [sys.executable, "-m", "curfew", "purge", "--config", str(config)],
        capture_output=True, text=True, env=env, check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"curfew purge failed ({proc.returncode}): {proc.stderr.strip()}")
    summary: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return summary


def slowest_ms(client: redis.Redis, run: str) -> float:
    """The slowest command Redis logged (over 1 ms) since the last reset, printed with its name
    (the bench's own SLOWLOG RESET left out)."""
    entries = [e for e in client.slowlog_get(10_000) if not e["command"].startswith(b"SLOWLOG")]
    if not entries:
        return 0.0
    worst = max(entries, key=lambda e: e["duration"])
    name = b" ".join(worst["command"].split()[:2]).decode("utf-8", "replace")
    print(f"  {run}: {len(entries)} commands over 1 ms; slowest {worst['duration'] / 1000:.2f} ms "
          f"({name})", flush=True)
    return float(worst["duration"]) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1_000_000, help="Curfew sessions per run")
    parser.add_argument("--spring", type=int, default=None, help="Spring sessions (default N)")
    parser.add_argument("--php", type=int, default=None, help="php-redis sessions (default N)")
    args = parser.parse_args()
    n, spring_n, php_n = args.sessions, args.spring or args.sessions, args.php or args.sessions
    if shutil.which("redis-server") is None or shutil.which("redis-benchmark") is None:
        raise SystemExit("needs redis-server and redis-benchmark (make system-deps)")
    workdir = Path(tempfile.mkdtemp(prefix="curfew-bench-"))
    proc, port = start_redis(workdir)
    client = redis.Redis(port=port)
    try:
        machine_load("before the baseline")
        raw = raw_del_per_s(port, n)
        machine_load("after the baseline")
        print(f"baseline: redis-benchmark pipelined DEL: {raw:,.0f}/s", flush=True)
        client.flushall()

        populate(client, CURFEW_SESSIONS, n, "curfew:", 10, OWNER, RETAIN_MS)
        client.slowlog_reset()
        client.config_resetstat()
        machine_load("before the 10% expired purge")
        expired_run = run_purge(purge_config(workdir / "curfew.json", "curfew", "curfew:"), port)
        machine_load("after it")
        slow = slowest_ms(client, "10% expired")
        expired = sum(expired_run["expired"].values())  # type: ignore[attr-defined]
        expired_per_s = expired / float(expired_run["durationSeconds"])  # type: ignore[arg-type]
        print(f"purge, {n:,} sessions, {expired:,} expired: {expired_run}", flush=True)
        redis_us = server_usec(client, "evalsha") / expired
        run_us = float(expired_run["durationSeconds"]) * 1e6 / expired  # type: ignore[arg-type]
        print(f"  per removed session: {run_us:.2f} us of the run, {redis_us:.2f} us of it Redis "
              "time in purge_shard", flush=True)
        client.flushall()

        populate(client, CURFEW_SESSIONS, n, "curfew:", 0, OWNER, RETAIN_MS)
        client.slowlog_reset()
        none_run = run_purge(workdir / "curfew.json", port)
        slow = max(slow, slowest_ms(client, "none expired"))
        print(f"purge, {n:,} sessions, none expired: {none_run}", flush=True)
        client.flushall()

        populate(client, SPRING_SESSIONS, spring_n, "spring:session:", JDK_LONG_HEAD,
                 JDK_INTEGER_HEAD)
        client.slowlog_reset()
        machine_load("before the spring walk")
        spring_run = run_purge(
            purge_config(workdir / "spring.json", "spring-session", "spring:session:"), port
        )
        machine_load("after it")
        slow = max(slow, slowest_ms(client, "spring walk"))
        spring_per_s = float(spring_run["scanned"]) / float(  # type: ignore[arg-type]
            spring_run["durationSeconds"]  # type: ignore[arg-type]
        )
        print(f"purge, {spring_n:,} spring sessions: {spring_run}", flush=True)
        client.flushall()

        php_per_s = {}
        php_config = purge_config(workdir / "php.json", "php-redis", "PHPREDIS_SESSION:")
        for records in (False, True):
            populate(client, PHP_SESSIONS, php_n, "PHPREDIS_SESSION:")
            if records:
                php_records(client, php_n)
            client.slowlog_reset()
            label = "with Curfew records" if records else "no Curfew records"
            machine_load(f"before the php-redis walk, {label}")
            php_run = run_purge(php_config, port)
            machine_load("after it")
            slow = max(slow, slowest_ms(client, f"php-redis walk, {label}"))
            php_per_s[records] = float(php_run["scanned"]) / float(  # type: ignore[arg-type]
                php_run["durationSeconds"]  # type: ignore[arg-type]
            )
            print(f"purge, {php_n:,} php-redis sessions (SCAN), {label}: {php_run}", flush=True)
            client.flushall()
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)
    print(
        f"RESULT expired_per_s={expired_per_s:.0f} ratio_to_raw_del={expired_per_s / raw:.3f} "
        f"none_expired_seconds={float(none_run['durationSeconds']):.3f} "  # type: ignore[arg-type]
        f"spring_keys_per_s={spring_per_s:.0f} php_walk_per_s={php_per_s[False]:.0f} "
        f"php_walk_with_records_per_s={php_per_s[True]:.0f} max_slowlog_ms={slow:.2f}"
    )


if __name__ == "__main__":
    main()
