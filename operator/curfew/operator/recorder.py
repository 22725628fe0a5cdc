"""What one namespace pass tells the world besides its writes: each policy's conditions, with
the Event and the metric that go with them, and Events about its writes. Collected while the
pass runs, posted by that pass into its own namespace at its end.

:meth:`PassRecorder.set_condition` is the one exit of a condition (as external-secrets'
``mark_ready`` / ``mark_failed``): it records the condition the pass set, and when it changed,
posts its Event and counts its metric, both looked up in :data:`EXITS`.

One recorder per pass, never shared: passes over different namespaces run at once, and an outbox
shared by all of them let one pass post (or drop, if it failed) another pass's Events.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from curfew.k8s.events import EVENTS, build_event
from curfew.operator import messages as m
from curfew.operator.metrics import Metrics

log = logging.getLogger("curfew.operator")


class EventApi(Protocol):
    """What the recorder needs of an API client (``curfew.k8s.KubeClient``)."""

    async def create(self, resource: Any, namespace: str | None,
                     body: Mapping[str, Any]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Exit:
    """What a condition turning to one reason is worth: an Event, and maybe an error counted."""

    event_type: str
    event_reason: str
    error_kind: str | None = None
    """The ``kind`` of ``curfew_operator_errors_total`` counted, if any."""


EXITS: Mapping[tuple[str, str], Exit] = {
    (m.READY, m.INVALID_SPEC): Exit("Warning", m.EV_INVALID_SPEC, "invalid"),
    (m.READY, m.APPLY_REJECTED): Exit("Warning", m.EV_APPLY_REJECTED, "rejected"),
    (m.READY, m.APPLY_FAILED): Exit("Warning", m.EV_APPLY_FAILED),
    (m.OVERLAPPING, m.POLICIES_OVERLAP): Exit("Normal", m.EV_OVERLAPPING),
    (m.COMPLIANT, m.PROFILE_VIOLATED): Exit("Warning", m.EV_NONCOMPLIANT),
}
"""Condition (type, reason) -> its exit. Conditions not listed change silently (Ready=True and
the purge health, whose Events come with each purge result)."""


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return all(a.get(k) == b.get(k) for k in ("status", "reason", "message"))


class PassRecorder:
    """Conditions and Events about the objects of ``namespace``, recorded during one pass."""

    def __init__(self, api: EventApi, namespace: str, metrics: Metrics | None = None) -> None:
        self.api = api
        self.namespace = namespace
        self.metrics = metrics
        self.conditions: dict[str, dict[str, Mapping[str, Any]]] = {}
        """Policy key -> condition type -> the condition this pass set."""
        self._events: list[dict[str, Any]] = []

    def set_condition(self, body: Mapping[str, Any], condition: Mapping[str, Any],
                      before: Mapping[str, Any] | None) -> None:
        """Record ``condition`` on the policy ``body``; when it differs from ``before`` (its
        condition of that type until now), post the Event and count the metric of its
        :data:`EXITS` entry."""
        meta = body.get("metadata", {})
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        self.conditions.setdefault(key, {})[str(condition["type"])] = condition
        if before is not None and _same(before, condition):
            return
        exit_ = EXITS.get((str(condition["type"]), str(condition["reason"])))
        if exit_ is None:
            return
        self.emit(body, exit_.event_type, exit_.event_reason, str(condition["message"]))
        if exit_.error_kind is not None and self.metrics is not None:
            self.metrics.errors.labels(exit_.error_kind).inc()

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
