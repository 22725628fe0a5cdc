"""Run the demo: pick a store, write the demo policy, start the sample app and the sidecar in
front of it, print where to look, and serve until interrupted or ``--for`` seconds have passed.

Store choice (``--store auto``): the Redis of ``--redis-url`` if given; else a Redis already
listening on 127.0.0.1:6379; else a ``redis-server`` binary started on a free port for the
demo's lifetime; else the embedded in-process store (``curfew.demo.memory``). The output says
which, and never prints a password.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, TextIO
from urllib.parse import urlsplit

from aiohttp import web
from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from curfew.api.config import (
    ConfigActivity,
    ConfigClient,
    ConfigReauthentication,
    ConfigSecretRef,
    ConfigSession,
    ConfigStore,
    ConfigTimeouts,
    UnifiedConfig,
    WorkloadId,
)
from curfew.api.durations import Duration
from curfew.demo.app import COOKIE, LOGIN_PATH, RETURN_TO, build_app
from curfew.sessions.errors import StoreError
from curfew.sessions.keys import curfew_namespace
from curfew.sessions.memory import MemoryStore
from curfew.sessions.store import RedisSessionStore
from curfew.sidecar.reload import load_policy
from curfew.sidecar.server import Sidecar
from curfew.sidecar.settings import SidecarSettings

KEY_PREFIX: Final = "curfew-demo:"
"""Keeps the demo's records apart from anything else in a Redis it borrows."""
LOCAL_REDIS: Final = "redis://127.0.0.1:6379/0"
EMBEDDED_URL: Final = "embedded://in-process"
"""Stands in for a Redis URL when the embedded store is used: the sidecar never dials it."""

StoreChoice = Literal["auto", "redis", "embedded"]


class DemoError(Exception):
    """A demo that cannot start; the message is one line saying why and what to do."""


class DemoSettings(BaseSettings):
    """Everything ``curfew demo`` is configured with (flags, or ``CURFEW_DEMO_*``)."""

    model_config = SettingsConfigDict(env_prefix="CURFEW_DEMO_", extra="forbid")

    host: str = Field(default="127.0.0.1", description="Interface the demo listens on.")
    port: int = Field(
        default=8080, ge=0, le=65535, description="Port of the demo (0: any free port)."
    )
    store: StoreChoice = Field(
        default="auto",
        description="auto: --redis-url, else a Redis on 127.0.0.1:6379, else a redis-server "
        "started for the demo, else the embedded store; redis: a Redis only; embedded: the "
        "in-process store only.",
    )
    redis_url: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("redis_url", "CURFEW_DEMO_REDIS_URL"),
        description="Redis to keep the demo's sessions in (keys under curfew-demo:).",
    )
    idle: Duration = Field(
        default=Duration.parse("30s"), description="Idle timeout of the demo policy."
    )
    absolute: Duration = Field(
        default=Duration.parse("3m"), description="Absolute timeout of the demo policy."
    )
    warning_lead: Duration = Field(
        default=Duration.parse("15s"), description="How early the page warns before expiry."
    )
    run_for: float | None = Field(
        default=None, gt=0, description="Stop by itself after this many seconds (unset: never)."
    )

    @field_validator("idle", "absolute", "warning_lead", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return Duration.parse(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> DemoSettings:
        if self.idle.seconds < 1:
            raise ValueError(f"idle: must be at least 1s, got {self.idle}")
        if self.idle > self.absolute:
            raise ValueError(f"idle: {self.idle} must not exceed absolute ({self.absolute})")
        if self.warning_lead >= self.idle:
            raise ValueError(f"warning_lead: {self.warning_lead} must be shorter than idle "
                             f"({self.idle})")
        if self.store == "embedded" and self.redis_url is not None:
            raise ValueError("store: embedded contradicts --redis-url: pick one")
        return self


def build_demo_config(settings: DemoSettings) -> UnifiedConfig:
    """The demo policy, as the operator would render it for the sample app's Deployment."""
    secret = ConfigSecretRef(name="demo-sessions", key="url")
    return UnifiedConfig(
        workload=WorkloadId(kind="Deployment", namespace="demo", name="acme-notes"),
        sources=("demo/acme-notes",),
        enforcement="Enforce",
        timeouts=ConfigTimeouts(
            idle_seconds=settings.idle.seconds,
            absolute_seconds=settings.absolute.seconds,
            warning_lead_seconds=settings.warning_lead.seconds,
        ),
        session=ConfigSession(cookie_name=COOKIE),
        activity=ConfigActivity(
            exclude_paths=("/static/*",), exclude_methods=("OPTIONS", "HEAD")
        ),
        reauthentication=ConfigReauthentication(
            login_url=LOGIN_PATH, return_to_parameter=RETURN_TO
        ),
        store=ConfigStore(
            format="curfew", key_prefix=KEY_PREFIX, redis_secret_ref=secret,
            session_key_secret_ref=ConfigSecretRef(name="demo-sessions", key="session-key"),
        ),
        client=ConfigClient(enabled=True),
    ).sealed()


def _redis_where(url: str) -> str:
    """host:port of a Redis URL: enough to say which, never its password."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 6379}" if parts.hostname else "a Redis"


@dataclass
class StoreHandle:
    """The chosen store, how to describe it, and what to stop with it."""

    store: RedisSessionStore
    url: str
    description: str
    process: asyncio.subprocess.Process | None = None
    directory: Path | None = None
    _closed: bool = field(default=False, repr=False)

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await _stop_server(self.process, self.directory)


async def _stop_server(process: asyncio.subprocess.Process | None, directory: Path | None) -> None:
    if process is not None and process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 5)
        except TimeoutError:
            process.kill()
            await process.wait()
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)


async def _open_redis(url: str) -> RedisSessionStore:
    """The store at ``url``, once it answers; raises StoreError."""
    store = RedisSessionStore.from_url(url, key_prefix=KEY_PREFIX, connect_timeout=0.3,
                                       socket_timeout=0.5, retries=0)
    try:
        await store.ping()
    except StoreError:
        with contextlib.suppress(StoreError):
            await store.aclose()
        raise
    return store


async def _redis_store(url: str) -> RedisSessionStore | None:
    try:
        return await _open_redis(url)
    except StoreError:
        return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _start_redis_server(binary: str) -> StoreHandle | None:
    port = _free_port()
    directory = Path(tempfile.mkdtemp(prefix="curfew-demo-redis-"))
    process = await asyncio.create_subprocess_exec(
        binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
        "--save", "", "--appendonly", "no", "--loglevel", "warning",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    handle = None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and process.returncode is None:
        store = await _redis_store(url)
        if store is not None:
            handle = StoreHandle(store, url, f"redis-server started for the demo on port {port} "
                                 "(stopped on exit)", process, directory)
            break
        await asyncio.sleep(0.05)
    if handle is None:
        await _stop_server(process, directory)
    return handle


def _embedded() -> StoreHandle:
    store = MemoryStore(namespace=curfew_namespace("curfew", KEY_PREFIX))
    return StoreHandle(store, EMBEDDED_URL, "embedded in-process store (no server needed; "
                       "sessions are lost when the demo stops)")


async def choose_store(settings: DemoSettings) -> StoreHandle:
    """The store the demo keeps its sessions in (see the module docstring)."""
    if settings.store == "embedded":
        return _embedded()
    if settings.redis_url is not None:
        url = settings.redis_url.get_secret_value()
        try:
            store = await _open_redis(url)
        except StoreError as err:
            raise DemoError(f"--redis-url: {err}") from None
        return StoreHandle(store, url, f"Redis at {_redis_where(url)} (keys under {KEY_PREFIX})")
    local = await _redis_store(LOCAL_REDIS)
    if local is not None:
        return StoreHandle(local, LOCAL_REDIS, f"local Redis at 127.0.0.1:6379 (keys under "
                           f"{KEY_PREFIX})")
    binary = shutil.which("redis-server")
    if binary is not None:
        handle = await _start_redis_server(binary)
        if handle is not None:
            return handle
    if settings.store == "redis":
        raise DemoError("--store redis: no Redis on 127.0.0.1:6379 and no redis-server to "
                        "start (install redis-server, or pass --redis-url)")
    return _embedded()


async def _serve_app(
    settings: DemoSettings, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, int]:
    app = build_app(settings.idle.seconds, settings.absolute.seconds)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner, int(runner.addresses[0][1])


async def run_app_only(settings: DemoSettings, out: TextIO = sys.stdout) -> None:
    """Serve only the sample app, with no sidecar and no store, until SIGINT/SIGTERM or
    ``run_for`` seconds: the app a cluster runs behind its own sidecar (the demo-app chart)."""
    try:
        runner, port = await _serve_app(settings, settings.host, settings.port)
    except OSError as err:
        raise DemoError(f"--port: cannot listen on {settings.host}:{settings.port} "
                        f"({err.strerror or err}); pass another port, or 0 for any free "
                        "one") from None
    try:
        print(f"Curfew demo app (no sidecar): http://{_shown_host(settings.host)}:{port}/, "
              f"its sign-in at {LOGIN_PATH} issues the cookie {COOKIE}", file=out, flush=True)
        await _wait(settings.run_for)
    finally:
        await runner.cleanup()


def _shown_host(host: str) -> str:
    if host in ("0.0.0.0", "", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


async def run_demo(settings: DemoSettings, out: TextIO = sys.stdout) -> None:
    """Serve the demo until SIGINT/SIGTERM or ``run_for`` seconds; raises DemoError."""
    handle = await choose_store(settings)
    workdir = Path(tempfile.mkdtemp(prefix="curfew-demo-"))
    app_runner: web.AppRunner | None = None
    sidecar: Sidecar | None = None
    try:
        config_path = workdir / "policy.json"
        config_path.write_text(build_demo_config(settings).to_json())
        policy = load_policy(config_path)
        app_runner, app_port = await _serve_app(settings)
        sidecar_settings = SidecarSettings(
            config=config_path,
            listen=f"{settings.host}:{settings.port}",
            ops_listen=None,
            upstream=f"http://127.0.0.1:{app_port}",
            redis_url=SecretStr(handle.url),
            insecure_dev_key=True,
            shutdown_grace_seconds=1.0,
        )
        sidecar = Sidecar(sidecar_settings, policy, handle.store)
        try:
            bound = await sidecar.start()
        except OSError as err:
            raise DemoError(f"--port: cannot listen on {settings.host}:{settings.port} "
                            f"({err.strerror or err}); pass another port, or 0 for any free "
                            "one") from None
        host, port = bound[0]
        url = f"http://{_shown_host(host)}:{port}/"
        print(
            f"Curfew demo: a sample notes app behind the Curfew sidecar\n"
            f"  open    {url}\n"
            f"  policy  idle {settings.idle}, absolute {settings.absolute}, warning "
            f"{settings.warning_lead} before expiry, browser client enabled\n"
            f"  store   {handle.description}\n"
            f"  try     sign in with any name, open a note and type, then leave the page alone:\n"
            f"          the countdown, the warning {settings.warning_lead} before the end, the "
            f"sign-in page saying why\n"
            f"          you are there, and, once signed in again, the same note with your draft\n"
            f"  audit   the sidecar's audit events follow, one JSON line each (sessions by keyed "
            f"hash only)\n"
            f"  stop    Ctrl-C" + (f" (or it stops by itself after {settings.run_for:g}s)"
                                   if settings.run_for else ""),
            file=out, flush=True,
        )
        await _wait(settings.run_for)
        print("Curfew demo: stopping", file=out, flush=True)
    finally:
        if sidecar is not None:
            await sidecar.stop()
        else:
            with contextlib.suppress(StoreError):
                await handle.store.aclose()
        if app_runner is not None:
            await app_runner.cleanup()
        await handle.aclose()
        shutil.rmtree(workdir, ignore_errors=True)


async def _wait(run_for: float | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=run_for)
