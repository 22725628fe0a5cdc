"""Purge benchmark: the cost of `curfew purge` against a baseline measured in the same run.

Starts its own redis-server on a free loopback port, then measures:

1. the baseline: raw pipelined DEL throughput (`redis-benchmark -P 64`, keys made by
   `redis-benchmark -t set` first);
2. `curfew purge` over N Curfew sessions of which 10% are idle-expired (expired per second),
   written as check_and_touch writes them (owner field, due index member and score);
3. `curfew purge` over N Curfew sessions none of which expired (seconds: must not grow with N);
4. `curfew purge` walking N Spring Session sessions (JDK-serialized, with their expiry keys,
   expirations members and principal index members; a tenth idle-expired and removed whole) by
   SCAN (sessions per second), once without Curfew records and once with a record joined to
   each: an app format is always walked by SCAN, since the app keeps sessions the sidecar never
   saw;
5. `curfew purge` walking N connect-redis sessions (express-session JSON, each key's TTL read
   with it) by SCAN, 10% of them idle, without and then with a Curfew record for every session
   (sessions walked per second). This format must SCAN: sessions signed in straight at the app
   have no record, and the app's own touch (a TTL) is the clock the purge reads;
6. `curfew purge` walking N Django (django-redis, pickled) and N Flask-Session sessions by SCAN,
   each without and with a live Curfew record per session (sessions per second; none expired):
   these formats keep no index, the key's TTL is their clock, so the walk must SCAN;
7. `curfew purge` walking N php-redis sessions (phpredis's strings, 10% idle by their TTL) by
   SCAN, once without Curfew records and once with one per session (sessions per second: the
   TTL clock has no index, so this format always walks);

and the slowest command Redis logged during the three purges (SLOWLOG). It prints the machine's
load average before and after each measurement (every figure here is wall-clock time on a
shared machine), and, per removed session, the run's time and Redis's own time in
purge_shard (INFO commandstats). It ends with

    RESULT expired_per_s=… ratio_to_raw_del=… none_expired_seconds=… spring_keys_per_s=…
    spring_joined_per_s=… connect_per_s=… connect_with_records_per_s=… max_slowlog_ms=…
    django_walked_per_s=… django_records_walked_per_s=… flask_session_walked_per_s=…
    flask_session_records_walked_per_s=… php_walk_per_s=… php_walk_with_records_per_s=…

Usage: python bench/purge.py [--sessions N] [--spring N] [--connect N] [--python-apps N]
[--php N] (defaults 1000000 each)
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import pickle
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
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
from curfew.sessions.identity import SessionHasher, session_hash
from curfew.sessions.lifetime import SessionRecord

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
# hash (TTL maxInactiveInterval + 5 min) with a principal attribute (a thousand users), its
# sessions:expires:<id> key, its expirations:<minute> member and its principal index member.
# Every ARGV[6]th session is idle past the policy (20 minutes), so the walk removes a tenth whole.
SPRING_SESSIONS = """
local prefix, first, n, now = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local long_head, int_head, every = ARGV[5], ARGV[6], tonumber(ARGV[7])
local index = prefix .. 'index:org.springframework.session.FindByIndexNameSessionRepository'
  .. '.PRINCIPAL_NAME_INDEX_NAME:'
local function jdk_string(s) return '\\172\\237\\0\\5t' .. struct.pack('>H', #s) .. s end
for i = first, first + n - 1 do
  local h = redis.sha1hex(tostring(i))
  local id = string.sub(h, 1, 8) .. '-' .. string.sub(h, 9, 12) .. '-' .. string.sub(h, 13, 16)
    .. '-' .. string.sub(h, 17, 20) .. '-' .. string.sub(h, 21, 32)
  local key = prefix .. 'sessions:' .. id
  local last = now - 60000
  if every > 0 and i % every == 0 then last = now - 1200000 end
  local user = 'user' .. (i % 1000)
  redis.call('HSET', key, 'creationTime', long_head .. struct.pack('>l', now - 3600000),
    'lastAccessedTime', long_head .. struct.pack('>l', last),
    'maxInactiveInterval', int_head .. struct.pack('>i', 1800),
    'sessionAttr:org.springframework.session.FindByIndexNameSessionRepository'
      .. '.PRINCIPAL_NAME_INDEX_NAME', jdk_string(user))
  redis.call('PEXPIRE', key, 2100000)
  redis.call('SET', prefix .. 'sessions:expires:' .. id, '', 'PX', 1800000)
  local minute = math.floor((last + 1800000) / 60000 + 1) * 60000
  redis.call('SADD', prefix .. 'expirations:' .. string.format('%d', minute),
    jdk_string('expires:' .. id))
  redis.call('SADD', index .. user, jdk_string(id))
end
return n
"""


def spring_id(i: int) -> str:
    """The id the generator above gives session ``i``."""
    h = hashlib.sha1(str(i).encode(), usedforsecurity=False).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def populate_records(
    client: redis.Redis, fmt: str, prefix: str, sessions: Iterable[tuple[str, int]]
) -> None:
    """A live Curfew record per (app session id, ms since its last activity), as check_and_touch
    writes it: the record decides, so it says what the app's session says."""
    namespace = keys.curfew_namespace(fmt, prefix)
    now_s, now_us = client.time()
    now = now_s * 1000 + now_us // 1000
    pipe = client.pipeline(transaction=False)
    for count, (raw_id, last_ago) in enumerate(sessions, 1):
        rec = SessionRecord(created_ms=now - 3_600_000, last_activity_ms=now - last_ago,
                            idle_ms=900_000, absolute_ms=28_800_000,
                            authenticated_ms=now - 3_600_000, policy="bench/policy",
                            workload="Deployment/bench/web")
        sid = session_hash(SESSION_KEY.encode(), raw_id)
        record, due, _ = keys.session_keys(namespace, sid)
        pipe.hset(record, mapping=rec.to_fields())
        pipe.zadd(due, {keys.due_member(rec.owner, sid): rec.due_score})
        pipe.pexpireat(record, rec.due_ms + RETAIN_MS)
        if count % CHUNK == 0:
            pipe.execute()
    pipe.execute()

# connect-redis's layout: one JSON string per session, express-session's cookie in it, the key's
# TTL set by connect-redis. Saved an hour ago with a day's maxAge; touched (EXPIRE) a second ago,
# or every 10th left idle since 20 minutes. Ids: 32 hex characters (within uid-safe's grammar).
CONNECT_SESSIONS = """
local prefix, first, n, now = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local day = 86400000
for i = first, first + n - 1 do
  local id = string.sub(redis.sha1hex(tostring(i)), 1, 32)
  local ago = 3600000
  local ttl = day - 1000
  if i % 10 == 0 then
    ago = 1200000
    ttl = day - ago
  end
  local saved = (now - ago) / 1000
  local expires = saved + day / 1000
  local value = '{"cookie":{"originalMaxAge":86400000,"expires":"' ..
    os_date(expires) .. '","httpOnly":true,"path":"/"},"user":"u' .. i .. '"}'
  redis.call('SET', prefix .. id, value, 'PX', ttl)
end
return n
"""

# Curfew's records of those sessions, as check_and_touch writes them, by the sids the bench
# computed (the keyed hash of each id); every 10th idle like its app session.
CONNECT_RECORDS = """
local ns, now, owner, retain, first = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4]),
  tonumber(ARGV[5])
local function s(v) return string.format('%d', v) end
local created, idle, abs = now - 3600000, 900000, 28800000
for k = 6, #ARGV do
  local i, sid = first + k - 6, ARGV[k]
  local tag = string.format('{%02x}', tonumber(string.sub(sid, 1, 4), 16) % 64)
  local last = now - 1000
  if i % 10 == 0 then last = now - 1200000 end
  local rec = ns .. tag .. ':r:' .. sid
  redis.call('HSET', rec, 'c', s(created), 'l', s(last), 'i', s(idle), 'a', s(abs),
    'u', s(created), 'p', 'bench/policy', 'w', 'Deployment/bench/web', 'k', '1', 'o', owner)
  local di, da = last + idle, created + abs
  redis.call('ZADD', ns .. tag .. ':due', s(math.min(di, da)), owner .. sid)
  redis.call('ZADD', ns .. tag .. ':limits', 'GT', s(da), s(idle) .. ':' .. s(abs))
  redis.call('PEXPIREAT', rec, s(math.min(di, da) + retain))
end
return #ARGV - 5
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

# Lua in Redis has no os.date: a civil-from-days conversion (Howard Hinnant's) for the ISO 8601
# cookie.expires express-session writes, prepended to CONNECT_SESSIONS.
OS_DATE = """
local function os_date(t)
  local secs = math.floor(t)
  local ms = math.floor((t - secs) * 1000 + 0.5)
  local days = math.floor(secs / 86400)
  local rem = secs - days * 86400
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
    - math.floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp + 3
  if m > 12 then m = m - 12 end
  if m <= 2 then y = y + 1 end
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%03dZ', y, m, d, math.floor(rem / 3600),
    math.floor(rem % 3600 / 60), rem % 60, ms)
end
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


# Records for app sessions, as check_and_touch writes them for a session the app knows: one per
# session hash in ARGV[5..], last activity a minute ago.
APP_RECORDS = """
local ns, now, owner, retain = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local function s(v) return string.format('%d', v) end
local created, idle, abs = now - 3600000, 900000, 28800000
for i = 5, #ARGV do
  local sid = ARGV[i]
  local tag = string.format('{%02x}', tonumber(string.sub(sid, 1, 4), 16) % 64)
  local last = now - 60000
  local rec = ns .. tag .. ':r:' .. sid
  redis.call('HSET', rec, 'c', s(created), 'l', s(last), 'i', s(idle), 'a', s(abs),
    'u', s(created), 'p', 'bench/policy', 'w', 'Deployment/bench/web', 'k', '1', 'o', owner)
  redis.call('ZADD', ns .. tag .. ':due', s(last + idle), owner .. sid)
  redis.call('ZADD', ns .. tag .. ':limits', 'GT', s(created + abs), s(idle) .. ':' .. s(abs))
  redis.call('PEXPIREAT', rec, s(last + idle + retain))
end
return #ARGV - 4
"""

DAY_MS = 86_400_000
PYTHON_APPS: dict[str, tuple[str, bytes, Callable[[int], str]]] = {
    # format: (key prefix, value as the library writes it, id of session i)
    "django": (":1:django.contrib.sessions.cache",
               pickle.dumps({"user": "ada", "cart": 3}, 5),  # django-redis's PickleSerializer
               lambda i: f"{i:032x}"),
    "flask-session": ("session:", b"\x82\xaa_permanent\xc3\xa4user\xa3ada",  # msgspec msgpack
                      lambda i: f"{i:043x}"),
}


def populate_python_app(client: redis.Redis, fmt: str, total: int, records: bool) -> None:
    """``total`` sessions of ``fmt``, saved a minute ago with a day's TTL; with ``records``, a
    live Curfew record for each too."""
    prefix, value, id_of = PYTHON_APPS[fmt]
    sha = client.script_load(APP_RECORDS)
    hasher = SessionHasher(SESSION_KEY.encode())
    now_s, now_us = client.time()
    now = now_s * 1000 + now_us // 1000
    for first in range(0, total, CHUNK):
        ids = [id_of(i) for i in range(first, min(total, first + CHUNK))]
        pipe = client.pipeline(transaction=False)
        for raw in ids:
            pipe.set(prefix + raw, value, px=DAY_MS - MIN)
        pipe.execute()
        if records:
            client.evalsha(sha, 0, keys.curfew_namespace(fmt, prefix), now, OWNER, RETAIN_MS,
                           *(hasher(raw) for raw in ids))


def python_app_walks(client: redis.Redis, port: int, workdir: Path, n: int) -> dict[str, float]:
    """Sessions walked per second for each Python app format, without and with records."""
    rates: dict[str, float] = {}
    for fmt, (prefix, _, _) in PYTHON_APPS.items():
        for records in (False, True):
            client.flushall()
            populate_python_app(client, fmt, n, records)
            client.slowlog_reset()
            label = f"{fmt}{'_records' if records else ''}"
            machine_load(f"before the {label} walk")
            run = run_purge(purge_config(workdir / f"{fmt}.json", fmt, prefix,
                                         app_ttl=DAY_MS / 1000), port)
            machine_load("after it")
            slowest_ms(client, f"{label} walk")
            seconds = float(run["durationSeconds"])  # type: ignore[arg-type]
            rates[label] = float(run["scanned"]) / seconds  # type: ignore[arg-type]
            print(f"purge, {n:,} {fmt} sessions{' with records' if records else ''} (SCAN): "
                  f"{run}", flush=True)
    client.flushall()
    return rates


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


def purge_config(
    path: Path, fmt: str, prefix: str, app_ttl: float | None = None
) -> Path:
    doc = PurgeConfig(
        policy="policy",
        namespace="bench",
        enforcement="Enforce",
        store=ConfigStore(
            format=fmt,  # type: ignore[arg-type]
            key_prefix=prefix,
            redis_secret_ref=ConfigSecretRef(name="r", key="url"),
            session_key_secret_ref=ConfigSecretRef(name="r", key="session-key"),
            app_ttl_seconds=app_ttl,
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


def connect_records(client: redis.Redis, total: int) -> None:
    """A Curfew record for each of the ``total`` connect-redis sessions CONNECT_SESSIONS wrote."""
    sha = client.script_load(CONNECT_RECORDS)
    now_s, now_us = client.time()
    now = now_s * 1000 + now_us // 1000
    namespace = keys.curfew_namespace("connect-redis", "sess:")
    key = SESSION_KEY.encode()
    for first in range(0, total, CHUNK):
        sids = [session_hash(key, hashlib.sha1(str(i).encode(), usedforsecurity=False)
                             .hexdigest()[:32])
                for i in range(first, min(first + CHUNK, total))]
        client.evalsha(sha, 0, namespace, now, OWNER, RETAIN_MS, first, *sids)


def walk_rate(run: dict[str, object]) -> float:
    return float(run["scanned"]) / float(run["durationSeconds"])  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1_000_000, help="Curfew sessions per run")
    parser.add_argument("--spring", type=int, default=None, help="Spring sessions (default N)")
    parser.add_argument("--connect", type=int, default=None,
                        help="connect-redis sessions (default N)")
    parser.add_argument("--python-apps", type=int, default=None,
                        help="Django and Flask-Session sessions (default N)")
    parser.add_argument("--php", type=int, default=None, help="php-redis sessions (default N)")
    args = parser.parse_args()
    n, spring_n = args.sessions, args.spring or args.sessions
    connect_n = args.connect or args.sessions
    php_n = args.php or args.sessions
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

        spring_config = purge_config(workdir / "spring.json", "spring-session", "spring:session:")
        spring_per_s: dict[str, float] = {}
        for joined in (False, True):
            # The app's sessions are walked by SCAN whether or not Curfew records join them:
            # the app keeps sessions the sidecar never saw, which only the walk finds.
            populate(client, SPRING_SESSIONS, spring_n, "spring:session:", JDK_LONG_HEAD,
                     JDK_INTEGER_HEAD, 10)
            what = "each joined to its Curfew record" if joined else "no Curfew records"
            if joined:
                populate_records(client, "spring-session", "spring:session:",
                                 ((spring_id(i), 20 * MIN if i % 10 == 0 else MIN)
                                  for i in range(spring_n)))
            client.slowlog_reset()
            machine_load(f"before the spring walk ({what})")
            spring_run = run_purge(spring_config, port)
            machine_load("after it")
            slow = max(slow, slowest_ms(client, f"spring walk ({what})"))
            spring_per_s[what] = float(spring_run["scanned"]) / float(  # type: ignore[arg-type]
                spring_run["durationSeconds"]  # type: ignore[arg-type]
            )
            print(f"purge, {spring_n:,} spring-session sessions (SCAN walk, {what}, a tenth "
                  f"expired and removed whole): {spring_per_s[what]:,.0f} sessions walked/s; "
                  f"{spring_run}", flush=True)
            client.flushall()

        connect_config = purge_config(workdir / "connect.json", "connect-redis", "sess:")
        populate(client, OS_DATE + CONNECT_SESSIONS, connect_n, "sess:")
        client.slowlog_reset()
        machine_load("before the connect-redis walk")
        connect_run = run_purge(connect_config, port)
        machine_load("after it")
        slow = max(slow, slowest_ms(client, "connect-redis walk"))
        print(f"purge, {connect_n:,} connect-redis sessions, no Curfew records: {connect_run}",
              flush=True)
        client.flushall()

        populate(client, OS_DATE + CONNECT_SESSIONS, connect_n, "sess:")
        connect_records(client, connect_n)
        client.slowlog_reset()
        machine_load("before the connect-redis walk with records")
        recorded_run = run_purge(connect_config, port)
        machine_load("after it")
        slow = max(slow, slowest_ms(client, "connect-redis walk with records"))
        print(f"purge, {connect_n:,} connect-redis sessions with Curfew records: {recorded_run}",
              flush=True)
        client.flushall()

        app_rates = python_app_walks(client, port, workdir, args.python_apps or n)

        php_per_s = {}
        php_config = purge_config(workdir / "php.json", "php-redis", "PHPREDIS_SESSION:",
                                  app_ttl=PHP_LIFETIME)
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
        f"spring_keys_per_s={spring_per_s['no Curfew records']:.0f} "
        f"spring_joined_per_s={spring_per_s['each joined to its Curfew record']:.0f} "
        f"connect_per_s={walk_rate(connect_run):.0f} "
        f"connect_with_records_per_s={walk_rate(recorded_run):.0f} max_slowlog_ms={slow:.2f} "
        f"php_walk_per_s={php_per_s[False]:.0f} php_walk_with_records_per_s={php_per_s[True]:.0f} "
        + " ".join(f"{label.replace('-', '_')}_walked_per_s={rate:.0f}"
                   for label, rate in app_rates.items())
    )


if __name__ == "__main__":
    main()
