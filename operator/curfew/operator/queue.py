"""The per-namespace queue of passes: coalescing, backoff and resync, and nothing else.

Every trigger asks for a pass over one namespace. Passes of a namespace never overlap, and
requests that arrive while one waits are coalesced into it, so a burst of thousands of workload
events becomes a couple of passes, not thousands. A pass that raises :class:`PassFailed` is
retried with exponential backoff, whatever triggered it: this is the operator's one retry
mechanism. Every ``resync_seconds`` each namespace gets a pass, which repairs drift.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from curfew.k8s.client import ApiError
from curfew.operator.settings import OperatorSettings

log = logging.getLogger("curfew.operator")

R = TypeVar("R")


class PassFailed(Exception):
    """A pass could not apply everything for a passing reason; ``cause`` is the first transient
    API error. A retry is scheduled."""

    def __init__(self, cause: ApiError) -> None:
        super().__init__(str(cause))
        self.cause = cause


@dataclass
class _Slot(Generic[R]):
    lock: asyncio.Lock
    pending: asyncio.Future[R] | None = None
    retry: asyncio.Task[None] | None = None
    failures: int = 0


class NamespaceQueue(Generic[R]):
    """Runs ``run(namespace)`` for each request, coalesced, one at a time per namespace."""

    def __init__(self, settings: OperatorSettings, run: Callable[[str], Awaitable[R]]) -> None:
        self.settings = settings
        self._run = run
        self._slots: dict[str, _Slot[R]] = {}

    def _slot(self, namespace: str) -> _Slot[R]:
        slot = self._slots.get(namespace)
        if slot is None:
            slot = self._slots[namespace] = _Slot(asyncio.Lock())
        return slot

    async def request(self, namespace: str) -> R:
        """Run (or join) the next pass over ``namespace`` and return its result.

        Raises :class:`PassFailed` when it failed; a retry is already scheduled.
        """
        slot = self._slot(namespace)
        if slot.pending is not None:
            return await asyncio.shield(slot.pending)
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        slot.pending = future
        async with slot.lock:
            try:
                # Triggers arriving during the delay still join this pass.
                if self.settings.batch_delay_seconds:
                    await asyncio.sleep(self.settings.batch_delay_seconds)
                slot.pending = None
                result = await self._run(namespace)
            except PassFailed as exc:
                future.set_exception(exc)
                future.exception()  # retrieved: joiners re-raise it, nobody else must
                self.retry_later(namespace)
                raise
            except asyncio.CancelledError:
                if slot.pending is future:
                    slot.pending = None
                future.cancel()
                raise
            except Exception as exc:
                future.set_exception(exc)
                future.exception()
                raise
            slot.failures = 0
            future.set_result(result)
            return result

    def depth(self) -> int:
        """Namespaces waiting for a pass: requested and not started, or a retry scheduled."""
        return sum(1 for slot in self._slots.values()
                   if slot.pending is not None
                   or (slot.retry is not None and not slot.retry.done()))

    def backoff(self, namespace: str) -> float:
        """Delay before the next retry of a failing namespace (exponential, capped)."""
        failures = max(1, self._slot(namespace).failures)
        return float(min(self.settings.retry_max_seconds,
                         self.settings.retry_min_seconds * 2 ** (failures - 1)))

    def retry_later(self, namespace: str) -> None:
        """Schedule a pass over ``namespace`` after the backoff (one at a time)."""
        slot = self._slot(namespace)
        slot.failures += 1
        if slot.retry is not None and not slot.retry.done():
            return
        delay = self.backoff(namespace)

        async def retry() -> None:
            await asyncio.sleep(delay)
            slot.retry = None
            with contextlib.suppress(PassFailed):  # a failed pass schedules the next retry
                await self.request(namespace)

        slot.retry = asyncio.get_running_loop().create_task(retry())
        log.info("retrying namespace %s in %.1fs", namespace, delay,
                 extra={"namespace": namespace, "delay": delay})

    async def resync_forever(self, namespaces: Callable[[], list[str]]) -> None:
        """Every ``resync_seconds``, a pass over each of ``namespaces()``: repairs drift (an
        edited or deleted object) and writes nothing when there is none."""
        while True:
            await asyncio.sleep(self.settings.resync_seconds)
            for namespace in namespaces():
                with contextlib.suppress(PassFailed):  # logged, and retried
                    await self.request(namespace)

    def stop(self) -> None:
        """Cancel the scheduled retries (the operator is stopping)."""
        for slot in self._slots.values():
            if slot.retry is not None:
                slot.retry.cancel()
