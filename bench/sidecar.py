"""Benchmark: what the enforcement sidecar costs in front of an app, measured in one run.

Starts a real Redis, a minimal upstream app (aiohttp low-level server on uvloop, one process)
and ``curfew sidecar`` in proxy mode in front of it, then drives both with ``wrk`` (HTTP/1.1
keep-alive), every request carrying one of ``--sessions`` session cookies:

1. throughput: ``--connections`` connections as fast as they go, direct vs through the sidecar;
2. latency: a light load (``--latency-connections``), direct and through the sidecar in
   alternating short runs (``--latency-rounds``); the added p50 / p99 are the differences of the
   medians (the direct p99 shows the upstream alone serves this load fast);
3. Redis calls per proxied request, from ``INFO commandstats`` before and after (every command
   but INFO itself);
4. the yardstick: the same load through an **nginx reverse proxy hop** in front of the same app
   (nginx from Debian, one worker, upstream keep-alive, no access log), the cheapest proxy hop
   a pod could have instead of the sidecar;
5. authz mode: the same load as checks (Envoy's shape: the original method, path and cookie)
   against a second sidecar in authz mode.

Also prints each measured process's CPU time per request and the one-core capacity it implies
(requests per CPU-second), a figure other work on the machine does not move.

Ends with one line: ``RESULT direct_rps=… proxied_rps=… rps_ratio=… added_p50_ms=…
added_p99_ms=… redis_calls_per_request=… sidecar_cpu_us=… nginx_cpu_us=…
cpu_ratio_to_nginx=… authz_cpu_us=…``: CPU time per request of the sidecar (proxied), of nginx
(its master and worker) and of the authz sidecar (per check), each measured alone on its core
the same way, and the sidecar's against nginx's.

Placement (``--pin``, the default on a machine with two cores or more): the process being
measured gets a core of its own and everything else shares the other, the same way in both
runs. Direct: the app alone on core 1; wrk on core 0. Proxied: the sidecar alone on core 1;
wrk, the app and Redis on core 0; the nginx hop and the authz sidecar are placed as the proxied
sidecar is. So ``rps_ratio`` compares the sidecar's throughput on one
core with the app's on one core, and neither run lends the measured process the other core's
idle time. ``--no-pin`` lets the kernel place everything (all processes then compete for
every core, and the proxied run crosses four processes against the direct run's two).

Usage: ``python bench/sidecar.py [--duration 8] [--connections 64] [--sessions 1000]``.
Other work on the machine shows in the figures: compare figures within one run only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent
KEY = "bench-session-key-0123456789abcdef"

WRK_SCRIPT = """
local n = {sessions}
local i = 0
local requests = {{}}
-- Formatted once: wrk shares a core with the app in the proxied run, so the load generator
-- should cost as little per request as it can.
init = function(args)
  for k = 0, n - 1 do
    requests[k] = wrk.format("GET", "/bench", {{["Cookie"] = "session=bench-" .. k}})
  end
end
request = function()
  i = (i + 1) % n
  return requests[i]
end
done = function(summary, latency, requests)
  io.write(string.format("JSON {{\\"requests\\": %d, \\"seconds\\": %f, \\"errors\\": %d, "
    .. "\\"p50_ms\\": %f, \\"p99_ms\\": %f}}\\n",
    summary.requests, summary.duration / 1e6,
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.status + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""

POLICY: dict[str, Any] = {
    "schemaVersion": 1,
    "workload": {"kind": "Deployment", "namespace": "bench", "name": "web"},
    "sources": ["bench/policy"],
    "enforcement": "Enforce",
    "timeouts": {"idleSeconds": 900, "absoluteSeconds": 28800, "warningLeadSeconds": 60},
    "session": {"cookieName": "session"},
    "activity": {"excludePaths": ["/healthz"], "excludeMethods": ["OPTIONS", "HEAD"]},
    "reauthentication": {"loginURL": "https://login.example.com/", "returnToParameter": "r"},
    "store": {"format": "curfew", "keyPrefix": "curfew:",
              "redisSecretRef": {"name": "r", "key": "url"},
              "sessionKeySecretRef": {"name": "r", "key": "session-key"}},
}


def register_sessions(url: str, count: int) -> None:
    """The bench's sessions, registered as the sidecar does when the app issues their cookies
    (``curfew`` format: a cookie the app never issued is no session, see docs/store.md)."""
    import asyncio

    from curfew.sessions.identity import session_hash
    from curfew.sessions.lifetime import Limits
    from curfew.sessions.store import RedisSessionStore

    async def register() -> None:
        store = RedisSessionStore.from_url(url, key_prefix="curfew:")
        limits = Limits(POLICY["timeouts"]["idleSeconds"], POLICY["timeouts"]["absoluteSeconds"])
        try:
            for k in range(count):
                await store.register(session_hash(KEY.encode(), f"bench-{k}"), limits,
                                     policy="bench/policy", workload="Deployment/bench/web")
        finally:
            await store.aclose()

    asyncio.run(register())


def serve_upstream(port: int) -> None:
    """The app behind the sidecar: as little work per request as aiohttp allows."""
    import asyncio

    import uvloop
    from aiohttp import web

    body = b"ok: a small response from the app\n"

    async def handler(request: web.BaseRequest) -> web.Response:
        return web.Response(body=body, content_type="text/plain")

    async def main() -> None:
        server = web.Server(handler, access_log=None)
        runner = web.ServerRunner(server)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await asyncio.Event().wait()

    uvloop.run(main())


def quiet(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """A process whose output is dropped."""
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


NGINX_CONF = """
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/client_body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  upstream app {{
    server 127.0.0.1:{app_port};
    keepalive 64;
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}
}}
"""
"""The nginx hop: a plain reverse proxy with keep-alive connections to the app."""


def process_tree(pid: int) -> list[int]:
    """A process and its descendants (nginx's master and its worker)."""
    pids = [pid]
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        pids.extend(process_tree(int(child)))
    return pids


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(port: int, path: str = "/", timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
                if s.recv(12).startswith(b"HTTP/1.1 2"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"nothing answered on port {port}")


class Placement:
    """Which cores each process may run on (see the module docstring); a no-op unpinned."""

    def __init__(self, pin: bool) -> None:
        self.pin = pin
        self.measured = {1}
        self.rest = {0}

    def __call__(self, pid: int, cores: set[int]) -> None:
        if self.pin:
            os.sched_setaffinity(pid, cores)


def wrk(
    port: int, connections: int, seconds: float, script: Path, place: Placement
) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
         "-s", str(script), f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, check=True,
        preexec_fn=lambda: place(0, place.rest),
    ).stdout
    match = re.search(r"^JSON (.*)$", out, re.M)
    if match is None:
        raise SystemExit(f"wrk printed no summary:\n{out}")
    result: dict[str, float] = json.loads(match.group(1))
    if result["errors"]:
        raise SystemExit(f"wrk saw {result['errors']} errors:\n{out}")
    result["rps"] = result["requests"] / result["seconds"]
    return result


def _script_commands() -> frozenset[str]:
    """Commands the store's Lua scripts issue: Redis counts them in commandstats too."""
    names: set[str] = set()
    for script in (ROOT / "operator/curfew/sessions/lua").glob("*.lua"):
        names.update(m.lower() for m in re.findall(r"\bcall\('(\w+)'", script.read_text()))
    return frozenset(names)


def redis_calls(client: redis.Redis) -> dict[str, int]:
    """Calls per command that reached Redis from a client (not from inside a script)."""
    inner = _script_commands()
    stats = client.info("commandstats")
    return {
        name: int(v["calls"])
        for k, v in stats.items()
        if (name := k.removeprefix("cmdstat_")) != "info" and name not in inner
    }


def _median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=8, help="seconds per measured run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--latency-connections", type=int, default=4)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--latency-rounds", type=int, default=5,
                        help="alternating direct/proxied light-load runs; medians are reported")
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction,
                        default=(os.cpu_count() or 1) >= 2,
                        help="give the measured process a core of its own (default with 2+ cores)")
    parser.add_argument("--upstream-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.upstream_server:
        serve_upstream(args.upstream_server)
        return 0
    for tool in ("wrk", "redis-server", "nginx"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (make system-deps)")

    tmp = Path(tempfile.mkdtemp(prefix="curfew-bench-"))
    script = tmp / "sessions.lua"
    script.write_text(WRK_SCRIPT.format(sessions=args.sessions))
    sys.path.insert(0, str(ROOT / "operator"))
    from curfew.api.config import UnifiedConfig

    config = tmp / "policy.json"
    config.write_text(UnifiedConfig.model_validate(POLICY).sealed().to_json())
    redis_port, app_port, sidecar_port, ops_port, nginx_port, authz_port, authz_ops = (
        free_port() for _ in range(7))
    (tmp / "nginx.conf").write_text(NGINX_CONF.format(tmp=tmp, app_port=app_port, port=nginx_port))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(quiet(
            ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(tmp)]))
        procs.append(quiet([sys.executable, __file__, "--upstream-server", str(app_port)]))
        env = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
               "CURFEW_SESSION_KEY": KEY}
        procs.append(quiet(
            [sys.executable, "-m", "curfew", "sidecar", "--config", str(config),
             "--listen", f"127.0.0.1:{sidecar_port}", "--ops-listen", f"127.0.0.1:{ops_port}",
             "--upstream", f"http://127.0.0.1:{app_port}", "--log-level", "WARNING"],
            env))
        procs.append(quiet(
            [sys.executable, "-m", "curfew", "sidecar", "--config", str(config), "--mode", "authz",
             "--listen", f"127.0.0.1:{authz_port}", "--ops-listen", f"127.0.0.1:{authz_ops}",
             "--log-level", "WARNING"],
            env))
        procs.append(quiet(["nginx", "-p", str(tmp), "-c", str(tmp / "nginx.conf")]))
        wait_http(app_port)
        wait_http(ops_port, "/readyz")
        wait_http(authz_ops, "/readyz")
        wait_http(nginx_port)
        register_sessions(env["REDIS_URL"], args.sessions)
        client = redis.Redis(port=redis_port)
        redis_proc, app_proc, sidecar_proc, authz_proc, nginx_proc = procs
        nginx_pids = process_tree(nginx_proc.pid)
        place = Placement(args.pin)
        place(redis_proc.pid, place.rest)
        for pid in (sidecar_proc.pid, authz_proc.pid, *nginx_pids):
            place(pid, place.measured)

        def direct_run(connections: int, seconds: float) -> dict[str, float]:
            place(app_proc.pid, place.measured)
            return wrk(app_port, connections, seconds, script, place)

        def proxied_run(connections: int, seconds: float) -> dict[str, float]:
            place(app_proc.pid, place.rest)
            return wrk(sidecar_port, connections, seconds, script, place)

        short = max(2.0, args.duration / 4)
        direct_run(args.connections, short)  # warm-up
        proxied_run(args.connections, short)  # warm-up: sessions created
        app_before = cpu_seconds(app_proc.pid)
        direct = direct_run(args.connections, args.duration)
        app_cpu = cpu_seconds(app_proc.pid) - app_before
        before = redis_calls(client)
        cpu_before = cpu_seconds(sidecar_proc.pid)
        proxied = proxied_run(args.connections, args.duration)
        sidecar_cpu = cpu_seconds(sidecar_proc.pid) - cpu_before
        after = redis_calls(client)
        by_command = {k: n - before.get(k, 0) for k, n in after.items() if n != before.get(k, 0)}
        calls = sum(by_command.values())
        # The same load through the nginx hop, then as authz checks: each process alone on
        # the measured core, wrk, the app and Redis on the other, as in the proxied run.
        place(app_proc.pid, place.rest)
        wrk(nginx_port, args.connections, short, script, place)  # warm-up
        nginx_before = sum(cpu_seconds(pid) for pid in nginx_pids)
        hop = wrk(nginx_port, args.connections, args.duration, script, place)
        nginx_cpu = sum(cpu_seconds(pid) for pid in nginx_pids) - nginx_before
        wrk(authz_port, args.connections, short, script, place)  # warm-up
        authz_before = cpu_seconds(authz_proc.pid)
        checks = wrk(authz_port, args.connections, args.duration, script, place)
        authz_cpu = cpu_seconds(authz_proc.pid) - authz_before
        # Alternate short runs and take medians: on a shared machine one noisy second would
        # otherwise decide a p99.
        rounds = [
            (direct_run(args.latency_connections, short),
             proxied_run(args.latency_connections, short))
            for _ in range(args.latency_rounds)
        ]
        light_direct = _median_run([d for d, _ in rounds])
        light_proxied = _median_run([p for _, p in rounds])
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)

    print("placement: " + ("measured process alone on core 1, the rest on core 0"
                           if args.pin else "unpinned"))
    print(f"throughput, {args.connections} connections: direct {direct['rps']:.0f} rps "
          f"(p50 {direct['p50_ms']:.2f} ms, p99 {direct['p99_ms']:.2f} ms), "
          f"proxied {proxied['rps']:.0f} rps (p50 {proxied['p50_ms']:.2f} ms, "
          f"p99 {proxied['p99_ms']:.2f} ms)")
    print(f"latency, {args.latency_connections} connections, median of {args.latency_rounds} "
          f"rounds: direct {light_direct['rps']:.0f} rps "
          f"p50 {light_direct['p50_ms']:.3f} ms p99 {light_direct['p99_ms']:.3f} ms; proxied "
          f"{light_proxied['rps']:.0f} rps p50 {light_proxied['p50_ms']:.3f} ms "
          f"p99 {light_proxied['p99_ms']:.3f} ms")
    app_us = app_cpu / direct["requests"] * 1e6
    sidecar_us = sidecar_cpu / proxied["requests"] * 1e6
    print(f"sidecar CPU: {sidecar_us:.0f} us per proxied request "
          f"({sidecar_cpu / proxied['seconds']:.2f} cores busy during the throughput run)")
    # What each process could serve on a core of its own, from its CPU time alone: unlike the
    # rps figures, this does not move with other work on the machine.
    print(f"app CPU: {app_us:.0f} us per direct request "
          f"({app_cpu / direct['seconds']:.2f} cores busy); one-core capacity from CPU time: "
          f"app {1e6 / app_us:.0f} rps, sidecar {1e6 / sidecar_us:.0f} rps, "
          f"ratio {app_us / sidecar_us:.3f}")
    print(f"redis: {calls} client commands {by_command} for {proxied['requests']:.0f} "
          f"proxied requests (commands run inside the Lua script are not round trips)")
    nginx_us = nginx_cpu / hop["requests"] * 1e6
    authz_us = authz_cpu / checks["requests"] * 1e6
    print(f"nginx hop: {hop['rps']:.0f} rps (p50 {hop['p50_ms']:.2f} ms, p99 "
          f"{hop['p99_ms']:.2f} ms), {nginx_us:.1f} us CPU per request; the sidecar costs "
          f"{sidecar_us / nginx_us:.2f} times that")
    print(f"authz checks: {checks['rps']:.0f} rps (p50 {checks['p50_ms']:.2f} ms), "
          f"{authz_us:.1f} us CPU per check")
    print(
        f"RESULT direct_rps={direct['rps']:.0f} proxied_rps={proxied['rps']:.0f} "
        f"rps_ratio={proxied['rps'] / direct['rps']:.3f} "
        f"added_p50_ms={light_proxied['p50_ms'] - light_direct['p50_ms']:.3f} "
        f"added_p99_ms={light_proxied['p99_ms'] - light_direct['p99_ms']:.3f} "
        f"redis_calls_per_request={calls / proxied['requests']:.3f} "
        f"sidecar_cpu_us={sidecar_us:.1f} nginx_cpu_us={nginx_us:.1f} "
        f"cpu_ratio_to_nginx={sidecar_us / nginx_us:.3f} authz_cpu_us={authz_us:.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
