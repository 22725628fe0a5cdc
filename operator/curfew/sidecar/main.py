"""Run a sidecar until SIGTERM or SIGINT, then shut it down gracefully."""

from __future__ import annotations

import asyncio
import logging
import signal

from curfew.sessions.errors import StoreError, StoreUnavailable
from curfew.sessions.store import RedisSessionStore
from curfew.sidecar.policy import SidecarPolicy
from curfew.sidecar.server import Sidecar
from curfew.sidecar.settings import SidecarSettings

_log = logging.getLogger(__name__)


def open_store(settings: SidecarSettings, policy: SidecarPolicy) -> RedisSessionStore:
    """The session store of the policy, with the sidecar's tight timeouts."""
    assert settings.redis_url is not None
    return RedisSessionStore.from_url(
        settings.redis_url.get_secret_value(),
        key_prefix=policy.key_prefix,
        format=policy.store_format,
        socket_timeout=settings.redis_timeout_seconds,
        connect_timeout=settings.redis_timeout_seconds,
        retries=settings.redis_retries,
        lean=True,
    )


async def _report_store(store: RedisSessionStore, policy: SidecarPolicy) -> None:
    """Say at start, in the words every process uses, when the store does not answer: a wrong
    ``REDIS_URL`` shows in the first lines of the log, not only in the first request's 503."""
    try:
        await store.ping()
    except StoreUnavailable as err:
        _log.warning("%s; sessions cannot be checked until it answers (failurePolicy %s)",
                     err, policy.config.failure_policy)


async def run_sidecar(
    settings: SidecarSettings, policy: SidecarPolicy, store: RedisSessionStore
) -> None:
    """Serve until a termination signal arrives."""
    sidecar = Sidecar(settings, policy, store)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await sidecar.start()
        await _report_store(store, policy)
        await stop.wait()
        _log.info("shutting down: no new connections, finishing requests in flight")
    finally:
        await sidecar.stop()
    _log.info("stopped")


def serve(settings: SidecarSettings, policy: SidecarPolicy, store: RedisSessionStore) -> int:
    """Run the sidecar on uvloop where available; the process exit code."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        runner = asyncio.run
    else:
        runner = uvloop.run
    try:
        runner(run_sidecar(settings, policy, store))
    except StoreError as err:
        _log.error("session store: %s", err)
        return 1
    except OSError as err:
        _log.error("cannot listen: %s", err)
        return 1
    return 0
