"""What outlives a namespace pass: the statuses this operator wrote, purge results not yet on a
status, refused specs, Jobs to read again, and which workloads are selected. One per operator
run, owned by the :class:`~curfew.operator.reconciler.Reconciler` and handed to each pass."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from curfew.api import LastPurge


@dataclass(frozen=True)
class Rejection:
    """The API server's refusal of a write made for one generation of a policy's spec."""

    uid: str | None
    generation: int | None
    message: str

    def holds(self, body: Mapping[str, Any]) -> bool:
        """Whether ``body`` is still the spec that was refused (same object, same generation)."""
        meta = body.get("metadata", {})
        return (meta.get("uid"), meta.get("generation")) == (self.uid, self.generation)


@dataclass
class PassMemory:
    """What outlives a pass, owned by the caller (one per operator run)."""

    written_status: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Status last written by this operator, by ``namespace/uid`` (the index may lag)."""
    purge_results: dict[str, LastPurge] = field(default_factory=dict)
    """Finished purge runs read but not yet on their policy's status, by policy key."""
    rejected: dict[str, Rejection] = field(default_factory=dict)
    """Policies held because a write for their current spec was refused, by key."""
    unread_jobs: dict[str, dict[str, Mapping[str, Any]]] = field(default_factory=dict)
    """Finished purge Jobs whose pods could not be listed yet, by namespace and name."""
    selected: dict[str, set[str]] = field(default_factory=dict)
    """``Kind/name`` of the workloads some policy selects (or holds), by namespace."""

    def base_status(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        """The status last written by this operator (the index may lag behind it), else the
        status the object carries."""
        return self.written_status.get(status_key(body)) or body.get("status") or {}


def status_key(body: Mapping[str, Any]) -> str:
    """Where a policy's written status is remembered: its namespace and uid (a policy deleted
    and created again under its name is another object)."""
    meta = body.get("metadata", {})
    return f"{meta.get('namespace')}/{meta.get('uid')}"
