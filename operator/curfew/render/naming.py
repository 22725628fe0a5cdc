"""Names and label values of the objects render writes.

Every name stays a valid DNS-1123 name within its kind's length limit, and every label value
within 63 characters, even for 253-character workload names: a name that does not fit is cut
and given a short hash of the full name, so distinct inputs never share an output name.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from curfew.api.config import WorkloadId
from curfew.api.policy import SessionPolicy

MAX_NAME = 253
"""ConfigMap names are DNS-1123 subdomains."""

MAX_CRON_JOB_NAME = 52
"""The CronJob controller appends an 11-character suffix to its Jobs' names."""

MAX_LABEL_VALUE = 63

_HASH_CHARS = 10
_INVALID_LABEL_CHARS = re.compile(r"[^-A-Za-z0-9_.]")
_EDGES = re.compile(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$")


def short_hash(text: str) -> str:
    """Ten hex digits of SHA-256: enough to keep cut names apart."""
    return hashlib.sha256(text.encode()).hexdigest()[:_HASH_CHARS]


def _fit(name: str, limit: int, *, dots: bool = True) -> str:
    """``name`` if it fits ``limit`` (and has no dots when ``dots`` is false), else cut + hash."""
    candidate = name.lower()
    if not dots:
        candidate = candidate.replace(".", "-")
    if candidate == name and len(name) <= limit:
        return name
    head = candidate[: limit - _HASH_CHARS - 1].rstrip("-.")
    return f"{head}-{short_hash(name)}"


def build_config_map_name(workload: WorkloadId) -> str:
    """``curfew-<kind>-<name>``: the ConfigMap holding one workload's ``policy.json``."""
    return _fit(f"curfew-{workload.kind.lower()}-{workload.name}", MAX_NAME)


@dataclass(frozen=True)
class PurgeNames:
    """Names of one policy's purge objects (both in the policy's namespace)."""

    cron_job: str
    config_map: str


def build_purge_names(policy: SessionPolicy) -> PurgeNames:
    """The purge CronJob (a DNS-1123 label of at most 52 characters) and its ConfigMap."""
    name = _fit(f"curfew-purge-{policy.metadata.name}", MAX_CRON_JOB_NAME, dots=False)
    return PurgeNames(cron_job=name, config_map=name)


def build_label_value(value: str) -> str:
    """``value`` as a label value: itself when valid, else a cut, cleaned form plus a hash."""
    clean = _EDGES.sub("", _INVALID_LABEL_CHARS.sub("-", value))
    if clean == value and len(value) <= MAX_LABEL_VALUE:
        return value
    head = _EDGES.sub("", clean[: MAX_LABEL_VALUE - _HASH_CHARS - 1])
    return f"{head}-{short_hash(value)}" if head else short_hash(value)
