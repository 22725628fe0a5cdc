"""What one purge run judges by, built from a ``purge.json`` or a ``policy.json`` (pure)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from curfew.api.config import PurgeConfig, UnifiedConfig
from curfew.api.policy import APP_TTL_FORMATS, DEFAULT_APP_TTL_SECONDS
from curfew.sessions.codec import DEFAULT_ID_PATTERNS
from curfew.sessions.lifetime import Limits


class ConfigFileError(ValueError):
    """The config file is missing, unreadable or invalid; the message names the file and field."""


@dataclass(frozen=True)
class PurgeTarget:
    """The store one run purges, and the limits it holds sessions to."""

    policy: str
    """``namespace/name`` of the policy (or the policies a ``policy.json`` came from)."""
    enforcement: str
    format: str
    key_prefix: str
    limits: Limits
    """The policy's own limits: for app sessions that have no Curfew record to name a workload."""
    workloads: dict[str, Limits] = field(default_factory=dict)
    """Current limits by workload (``Kind/namespace/name``), the ids records carry."""
    max_purge_fraction: float = 0.5
    app_ttl_ms: int | None = None
    """The lifetime the app gives its session key (``store.appTTL``), when the policy states it
    (php-redis: else PHP's default); None for the formats that have no TTL clock."""
    id_pattern: str | None = None
    """The app's id grammar (``store.idPattern``, else the format's): phpredis keeps its lock
    keys under the sessions' prefix, so a walk takes only ids of the grammar."""
    app_walk: bool = True
    """``purge.appWalk``: walk the app's keyspace by SCAN (``Scan``), or read only the due
    index (``IndexOnly``: sessions without a joined Curfew record are left to the app's expiry)."""

    @property
    def audit_only(self) -> bool:
        return self.enforcement == "Audit"

    def current_limits(self, workload: str) -> Limits | None:
        return self.workloads.get(workload)

    @property
    def min_idle_ms(self) -> int | None:
        return min((w.idle_ms for w in self.workloads.values()), default=None)

    @property
    def min_absolute_ms(self) -> int | None:
        return min((w.absolute_ms for w in self.workloads.values()), default=None)


def build_target(doc: PurgeConfig | UnifiedConfig) -> PurgeTarget:
    limits = Limits(doc.timeouts.idle_seconds, doc.timeouts.absolute_seconds)
    if isinstance(doc, PurgeConfig):
        workloads = {
            f"{w.kind}/{doc.namespace}/{w.name}": Limits(w.idle_seconds, w.absolute_seconds)
            for w in doc.workloads
        }
        policy = f"{doc.namespace}/{doc.policy}"
    else:
        workloads = {str(doc.workload): limits}
        policy = ",".join(doc.sources)
    return PurgeTarget(
        policy=policy,
        enforcement=doc.enforcement,
        format=doc.store.format,
        key_prefix=doc.store.key_prefix,
        limits=limits,
        workloads=workloads,
        max_purge_fraction=doc.purge.max_purge_fraction,
        id_pattern=doc.store.id_pattern or DEFAULT_ID_PATTERNS.get(doc.store.format),
        app_ttl_ms=_app_ttl_ms(doc.store.format, doc.store.app_ttl_seconds),
        app_walk=doc.purge.app_walk != "IndexOnly",
    )


def _app_ttl_ms(format: str, seconds: float | None) -> int | None:
    if format not in APP_TTL_FORMATS:
        return None
    if seconds is None:
        seconds = DEFAULT_APP_TTL_SECONDS.get(format)
    return round(seconds * 1000) if seconds is not None else None


def _field_path(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(document)"
    return f"{where}: {first['msg']}"


def load_target(path: Path) -> PurgeTarget:
    """Read ``path`` (a ``purge.json`` or a ``policy.json``) or raise ConfigFileError."""
    try:
        text = path.read_text("utf-8")
    except OSError as error:
        raise ConfigFileError(f"{path}: cannot read the config file ({error.strerror})") from error
    try:
        raw = json.loads(text)
    except ValueError as error:
        raise ConfigFileError(f"{path}: not JSON ({error})") from error
    if not isinstance(raw, dict):
        raise ConfigFileError(f"{path}: expected a JSON object")
    model: type[PurgeConfig] | type[UnifiedConfig] = (
        PurgeConfig if raw.get("kind") == "PurgeConfig" else UnifiedConfig
    )
    try:
        return build_target(model.model_validate(raw))
    except ValidationError as error:
        raise ConfigFileError(f"{path}: {_field_path(error)}") from error
