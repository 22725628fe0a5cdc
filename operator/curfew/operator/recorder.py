"""The Events of one namespace pass: collected while the pass runs, posted by that pass into its
own namespace at its end.

One recorder per pass, never shared: passes over different namespaces run at once, and an outbox
shared by all of them let one pass post (or drop, if it failed) another pass's Events.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, Protocol

from curfew.k8s.events import EVENTS, build_event

log = logging.getLogger("curfew.operator")


class EventApi(Protocol):
    """What the recorder needs of an API client (``curfew.k8s.KubeClient``)."""

    async def create(self, resource: Any, namespace: str | None,
                     body: Mapping[str, Any]) -> dict[str, Any]: ...


class PassRecorder:
    """Events about the objects of ``namespace``, emitted during one pass."""

    def __init__(self, api: EventApi, namespace: str) -> None:
        self.api = api
        self.namespace = namespace
        self._events: list[dict[str, Any]] = []

    def emit(self, body: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        """Record an Event about ``body``, which must live in the pass's namespace."""
        where = body.get("metadata", {}).get("namespace") or "default"
        if where != self.namespace:
            raise ValueError(f"an Event about an object in {where} recorded by the pass over "
                             f"{self.namespace}")
        self._events.append(build_event(body, type_, reason, message))

    async def post(self) -> int:
        """Post the recorded Events; how many were posted. A lost Event is logged, never worth
        failing a pass for."""
        events, self._events = self._events, []
        outcomes = await asyncio.gather(
            *(self.api.create(EVENTS, self.namespace, e) for e in events),
            return_exceptions=True)
        posted = 0
        for event, outcome in zip(events, outcomes, strict=True):
            if isinstance(outcome, Exception):
                log.warning("could not post Event %s in %s: %s", event["reason"],
                            self.namespace, outcome)
            else:
                posted += 1
        return posted
