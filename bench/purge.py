"""Purge benchmark: the cost of `curfew purge` against a baseline measured in the same run.

Starts its own redis-server on a free loopback port, then measures:

1. the baseline: raw pipelined DEL throughput (`redis-benchmark -P 64`, keys made by
   `redis-benchmark -t set` first);
2. `curfew purge` over N Curfew sessions of which 10% are idle-expired (expired per second),
   written as check_and_touch writes them (owner field, due index member and score), and over N
   of which none expired (seconds: must not grow with N);
3. for each app format (spring-session, connect-redis, django, flask-session, php-redis,
   generic; `--formats` picks some), written as its library writes it:
   - the SCAN walk (`purge.appWalk: Scan`) over N of its sessions without Curfew records, then
     with a record joined to each (a tenth idle): sessions walked per second, a cost that grows
     with the store;
   - the due index path (`purge.appWalk: IndexOnly`) over stores of two sizes (default N/10 and
     N), every session joined by a record with its sealed app id, the same number expired in
     both (default N/100): sessions removed whole per second, and the run's seconds, which must
     not grow with the store;

and the slowest command Redis logged during the purges (SLOWLOG). Every measurement goes
through one function (`Bench.measure`): an empty store, the sessions written, the machine's load
average printed before and after (every figure here is wall-clock time on a shared machine),
one `curfew purge`, its slow log. It ends with one line of every figure, e.g.

    RESULT expired_per_s=… ratio_to_raw_del=… none_expired_seconds=… spring_session_walk_per_s=…
    spring_session_walk_with_records_per_s=… spring_session_index_removed_per_s_at_100000=…
    spring_session_index_seconds_at_100000=… … max_slowlog_ms=…

Usage: python bench/purge.py [--sessions N] [--formats F,F] [--expired E] [--index-sizes A,B]
(N defaults to 1,000,000)
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from curfew.api.config import (
    ConfigPurge,
    ConfigSecretRef,
    ConfigStore,
    ConfigTimeouts,
    PurgeConfig,
    PurgeWorkload,
)
from curfew.api.policy import AppWalk
from curfew.sessions import keys
from curfew.sessions.identity import AppIdSeal, SessionHasher

SESSION_KEY = "bench-session-key-0123456789abcdef"
OWNER = keys.owner_id("bench/policy", "Deployment/bench/web")
RETAIN_MS = round(keys.RETAIN_SECONDS * 1000)
MIN = 60_000
DAY_MS = 86_400_000
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


# The string formats' layout (django-redis, Flask-Session, phpredis, generic): one string per
# session, its TTL set by the library; ids of each format's grammar (ARGV[5]: 'sha1' for 32 hex
# characters of SHA-1, else a format for the session's number).
STRING_SESSIONS = """
local prefix, first, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local form, value, ttl = ARGV[5], ARGV[6], ARGV[7]
for i = first, first + n - 1 do
  local id
  if form == 'sha1' then
    id = string.sub(redis.sha1hex(tostring(i)), 1, 32)
  else
    id = string.format(form, i)
  end
  redis.call('SET', prefix .. id, value, 'PX', ttl)
end
return n
"""

# Curfew's records of app sessions, as the sidecar leaves them: check_and_touch's record (owner
# field, due index member and score, limit class) with the app's id sealed in field 's'. ARGV
# from 5 on: session hash, sealed id, ms since its last activity, for each session.
SEALED_RECORDS = """
local ns, now, owner, retain = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local function s(v) return string.format('%d', v) end
local created, idle, abs = now - 3600000, 900000, 28800000
for j = 5, #ARGV, 3 do
  local sid, last = ARGV[j], now - tonumber(ARGV[j + 2])
  local tag = string.format('{%02x}', tonumber(string.sub(sid, 1, 4), 16) % 64)
  local rec = ns .. tag .. ':r:' .. sid
  redis.call('HSET', rec, 'c', s(created), 'l', s(last), 'i', s(idle), 'a', s(abs),
    'u', s(created), 'p', 'bench/policy', 'w', 'Deployment/bench/web', 'k', '1', 'o', owner,
    's', ARGV[j + 1])
  local di, da = last + idle, created + abs
  redis.call('ZADD', ns .. tag .. ':due', s(math.min(di, da)), owner .. sid)
  redis.call('ZADD', ns .. tag .. ':limits', 'GT', s(da), s(idle) .. ':' .. s(abs))
  redis.call('PEXPIREAT', rec, s(math.min(di, da) + retain))
end
return (#ARGV - 4) / 3
"""


def sha_id(i: int) -> str:
    """The id STRING_SESSIONS ('sha1') and CONNECT_SESSIONS give session ``i``."""
    return hashlib.sha1(str(i).encode(), usedforsecurity=False).hexdigest()[:32]


@dataclass(frozen=True)
class AppFormat:
    """One app format as the bench writes it: its key prefix, the id of session ``i``, how to
    write ``n`` of its sessions (a tenth idle by the app's own clock where it has one), and the
    ``store.appTTL`` its purge config states."""

    prefix: str
    id_of: Callable[[int], str]
    write: Callable[[redis.Redis, int], None]
    app_ttl: float | None = None


def _strings(prefix: str, form: str, value: bytes | str, ttl_ms: int) -> Callable[
        [redis.Redis, int], None]:
    return lambda client, n: populate(client, STRING_SESSIONS, n, prefix, form, value, ttl_ms)


APP_FORMATS: dict[str, AppFormat] = {
    # Spring Session (JDK-serialized; every 10th idle by lastAccessedTime): removed whole.
    "spring-session": AppFormat(
        "spring:session:", spring_id,
        lambda client, n: populate(client, SPRING_SESSIONS, n, "spring:session:", JDK_LONG_HEAD,
                                   JDK_INTEGER_HEAD, 10)),
    # express-session JSON, each key's TTL read with it; every 10th idle by the TTL.
    "connect-redis": AppFormat(
        "sess:", sha_id,
        lambda client, n: populate(client, OS_DATE + CONNECT_SESSIONS, n, "sess:")),
    # django-redis's PickleSerializer, saved a minute ago with a day's TTL.
    "django": AppFormat(
        ":1:django.contrib.sessions.cache", lambda i: f"{i:032x}",
        _strings(":1:django.contrib.sessions.cache", "%032x",
                 pickle.dumps({"user": "ada", "cart": 3}, 5), DAY_MS - MIN), DAY_MS / 1000),
    # Flask-Session 0.8's msgspec msgpack, saved a minute ago with a day's TTL.
    "flask-session": AppFormat(
        "session:", lambda i: f"{i:043x}",
        _strings("session:", "%043x", b"\x82\xaa_permanent\xc3\xa4user\xa3ada",
                 DAY_MS - MIN), DAY_MS / 1000),
    # phpredis: every 10th idle by its TTL (300 s left of gc_maxlifetime 1440 s).
    "php-redis": AppFormat(
        "PHPREDIS_SESSION:", sha_id,
        lambda client, n: populate(client, PHP_SESSIONS, n, "PHPREDIS_SESSION:"),
        PHP_LIFETIME),
    # generic: opaque strings; only a Curfew record can judge them.
    "generic": AppFormat("app:", sha_id, _strings("app:", "sha1", "opaque", DAY_MS)),
}


def joined_records(
    client: redis.Redis, fmt: str, total: int, idle: Callable[[int], bool]
) -> None:
    """A Curfew record for each of the ``total`` sessions of ``fmt`` the bench wrote, with the
    app's id sealed in it (the keyed hash and the seal computed here, as the sidecar does); the
    sessions ``idle`` names last active 20 minutes ago (past the policy's 15), the others a
    minute ago."""
    app = APP_FORMATS[fmt]
    sha = client.script_load(SEALED_RECORDS)
    hasher = SessionHasher(SESSION_KEY.encode())
    seal = AppIdSeal(SESSION_KEY.encode())
    now_s, now_us = client.time()
    now = now_s * 1000 + now_us // 1000
    namespace = keys.curfew_namespace(fmt, app.prefix)
    step = CHUNK // 4
    for first in range(0, total, step):
        args: list[str | int] = []
        for i in range(first, min(first + step, total)):
            raw = app.id_of(i)
            sid = hasher(raw)
            args += [sid, seal.seal(sid, raw), 20 * MIN if idle(i) else MIN]
        client.evalsha(sha, 0, namespace, now, OWNER, RETAIN_MS, *args)


class Bench:
    """One redis-server and what the runs on it found: the slowest command of any run."""

    def __init__(self, client: redis.Redis, port: int, workdir: Path) -> None:
        self.client = client
        self.port = port
        self.workdir = workdir
        self.slowest_ms = 0.0

    def measure(self, label: str, config: Path, fill: Callable[[], None]) -> dict[str, Any]:
        """The repeated block: an empty store, ``fill``, then one ``curfew purge`` timed with
        the machine's load around it and Redis's slow log after it; the store emptied again."""
        client = self.client
        client.flushall()
        fill()
        client.slowlog_reset()
        client.config_resetstat()
        machine_load(f"before {label}")
        run: dict[str, Any] = run_purge(config, self.port)
        machine_load("after it")
        self.slowest_ms = max(self.slowest_ms, slowest_ms(client, label))
        print(f"purge, {label}: {run}", flush=True)
        return run

    def config(self, fmt: str, *, app_walk: AppWalk | None = None) -> Path:
        app = APP_FORMATS[fmt]
        name = f"{fmt}-{app_walk or 'scan'}.json"
        return purge_config(self.workdir / name, fmt, app.prefix, app_ttl=app.app_ttl,
                            app_walk=app_walk)


def walked_per_s(run: dict[str, Any]) -> float:
    return float(run["scanned"]) / float(run["durationSeconds"])


def removed_per_s(run: dict[str, Any]) -> float:
    return sum(run["expired"].values()) / float(run["durationSeconds"])


def app_format_figures(bench: Bench, fmt: str, n: int, expired: int,
                       index_sizes: list[int]) -> dict[str, float]:
    """For one app format: the SCAN walk's rate over ``n`` sessions, without Curfew records and
    with a (sealed) record joined to each (a tenth of them idle), then the index path
    (``purge.appWalk: IndexOnly``) over each of ``index_sizes`` sessions, all joined, of which
    the same ``expired`` are idle: removed per second, and the run's seconds, which must not
    grow with the size."""
    app = APP_FORMATS[fmt]
    key = fmt.replace("-", "_")
    figures: dict[str, float] = {}
    walk = bench.config(fmt)
    run = bench.measure(f"{n:,} {fmt} sessions, SCAN walk, no Curfew records", walk,
                        lambda: app.write(bench.client, n))
    figures[f"{key}_walk_per_s"] = walked_per_s(run)

    def joined_walk() -> None:
        app.write(bench.client, n)
        joined_records(bench.client, fmt, n, lambda i: i % 10 == 0)

    run = bench.measure(f"{n:,} {fmt} sessions, SCAN walk, a Curfew record joined to each",
                        walk, joined_walk)
    figures[f"{key}_walk_with_records_per_s"] = walked_per_s(run)
    index = bench.config(fmt, app_walk="IndexOnly")
    for size in index_sizes:
        def joined_index(size: int = size) -> None:
            app.write(bench.client, size)
            joined_records(bench.client, fmt, size, lambda i: i < expired)

        run = bench.measure(f"{size:,} {fmt} sessions each joined to its sealed record, "
                            f"{expired:,} expired, appWalk IndexOnly", index, joined_index)
        if sum(run["expired"].values()) != expired:
            raise SystemExit(f"{fmt} index path removed {run['expired']}, not {expired}")
        figures[f"{key}_index_removed_per_s_at_{size}"] = removed_per_s(run)
        figures[f"{key}_index_seconds_at_{size}"] = float(run["durationSeconds"])
    bench.client.flushall()
    return figures


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


def purge_config(
    path: Path, fmt: str, prefix: str, app_ttl: float | None = None,
    app_walk: AppWalk | None = None,
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
        purge=ConfigPurge(max_purge_fraction=0.5, app_walk=app_walk),
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
    parser.add_argument("--sessions", type=int, default=1_000_000,
                        help="sessions per run (default 1,000,000)")
    parser.add_argument("--formats", default=",".join(APP_FORMATS),
                        help="app formats to measure, comma-separated (default: all); "
                        "'none' for Curfew's own format only")
    parser.add_argument("--expired", type=int, default=None,
                        help="expired sessions in each index-path run (default N/100)")
    parser.add_argument("--index-sizes", default=None,
                        help="store sizes of the index-path runs, comma-separated "
                        "(default N/10,N)")
    args = parser.parse_args()
    n = args.sessions
    formats = [] if args.formats == "none" else args.formats.split(",")
    unknown = set(formats) - set(APP_FORMATS)
    if unknown:
        raise SystemExit(f"unknown formats: {', '.join(sorted(unknown))}")
    expired = args.expired or max(1, n // 100)
    sizes = ([int(v) for v in args.index_sizes.split(",")] if args.index_sizes
             else [max(2 * expired, n // 10), n])
    if shutil.which("redis-server") is None or shutil.which("redis-benchmark") is None:
        raise SystemExit("needs redis-server and redis-benchmark (make system-deps)")
    workdir = Path(tempfile.mkdtemp(prefix="curfew-bench-"))
    proc, port = start_redis(workdir)
    # The generators' scripts can run for seconds on a busy machine: redis-py 8's default 5 s
    # socket timeout would retry one while it still runs (and meet BUSY).
    client = redis.Redis(port=port, socket_timeout=600)
    bench = Bench(client, port, workdir)
    figures: dict[str, float] = {}
    try:
        machine_load("before the baseline")
        raw = raw_del_per_s(port, n)
        machine_load("after the baseline")
        print(f"baseline: redis-benchmark pipelined DEL: {raw:,.0f}/s", flush=True)

        curfew = purge_config(workdir / "curfew.json", "curfew", "curfew:")
        expired_run = bench.measure(
            f"{n:,} Curfew sessions, 10% expired", curfew,
            lambda: populate(client, CURFEW_SESSIONS, n, "curfew:", 10, OWNER, RETAIN_MS))
        removed = sum(expired_run["expired"].values())
        redis_us = server_usec(client, "evalsha") / removed
        run_us = float(expired_run["durationSeconds"]) * 1e6 / removed
        print(f"  per removed session: {run_us:.2f} us of the run, {redis_us:.2f} us of it Redis "
              "time in purge_shard", flush=True)
        figures["expired_per_s"] = removed_per_s(expired_run)
        figures["ratio_to_raw_del"] = figures["expired_per_s"] / raw
        none_run = bench.measure(
            f"{n:,} Curfew sessions, none expired", curfew,
            lambda: populate(client, CURFEW_SESSIONS, n, "curfew:", 0, OWNER, RETAIN_MS))
        figures["none_expired_seconds"] = float(none_run["durationSeconds"])
        client.flushall()
        for fmt in formats:
            figures.update(app_format_figures(bench, fmt, n, expired, sizes))
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)
    figures["max_slowlog_ms"] = bench.slowest_ms
    print("RESULT " + " ".join(
        f"{name}={value:.3f}" if value < 100 else f"{name}={value:.0f}"
        for name, value in figures.items()))


if __name__ == "__main__":
    main()
