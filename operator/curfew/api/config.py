"""The unified config: the documents the operator writes into ConfigMaps, read by the
sidecar (``policy.json``, one per workload) and the purge job (``purge.json``, one per policy).

Both carry a ``hash`` over everything else in the document (canonical JSON, SHA-256), so equal
configs hash equal and a writer can skip writes that change nothing. Neither ever holds a
Redis URL or a key: only references to the Secrets that do.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Final, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)
from pydantic.alias_generators import to_camel

from curfew.api.policy import AppWalk, Enforcement, FailurePolicy, IdEncoding, StoreFormat
from curfew.sessions.codec import check_id_pattern

SCHEMA_VERSION: Final = 1
POLICY_FILE = "policy.json"
PURGE_FILE = "purge.json"


def _seconds(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


Seconds = Annotated[float, Field(gt=0), PlainSerializer(_seconds)]
"""A positive number of seconds; written as an integer when whole (``900``, not ``900.0``)."""


class _Doc(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class ConfigTimeouts(_Doc):
    idle_seconds: Seconds
    absolute_seconds: Seconds
    renewal_seconds: Seconds | None = None
    warning_lead_seconds: Seconds | None = None


class ConfigSession(_Doc):
    cookie_name: str | None = None
    header: str | None = None
    header_prefix: str | None = None
    id_encoding: IdEncoding | None = None
    """How the cookie or header carries the id; rendered explicitly, None: the format's own."""


class ConfigActivity(_Doc):
    exclude_paths: tuple[str, ...] = ()
    exclude_methods: tuple[str, ...] = ()


class ConfigReauthentication(_Doc):
    login_url: str | None = Field(default=None, alias="loginURL")
    return_to_parameter: str = "return_to"


class ConfigSecretRef(_Doc):
    name: str
    key: str


def _unset(value: object) -> bool:
    return value is None


class ConfigStore(_Doc):
    format: StoreFormat
    key_prefix: str
    redis_secret_ref: ConfigSecretRef
    session_key_secret_ref: ConfigSecretRef
    id_pattern: Annotated[str, AfterValidator(check_id_pattern)] | None = None
    """The id grammar (``curfew.sessions.codec``); rendered explicitly, None: the format's."""
    app_secret_ref: ConfigSecretRef | None = Field(default=None, exclude_if=_unset)
    """connect-redis: the app's cookie secret(s), which the sidecar verifies signatures with.
    Absent when unset (as ``appTTLSeconds``), so the documents of other formats stay as they
    were, hashes included."""
    app_ttl_seconds: Seconds | None = Field(
        default=None, alias="appTTLSeconds", exclude_if=_unset)
    """The lifetime the app gives its session key (``store.appTTL``): connect-redis's ``ttl``
    option, for sessions whose cookie has no maxAge; the TTL django and flask-session give their
    key on every save."""


class ConfigPurge(_Doc):
    max_purge_fraction: float = Field(default=0.5, gt=0, le=1)
    app_walk: AppWalk | None = Field(default=None, exclude_if=_unset)
    """``purge.appWalk``; absent for the default (``Scan``), so documents that do not set it
    stay as they were, hashes included."""


class ConfigClient(_Doc):
    enabled: bool = False


class WorkloadId(_Doc):
    kind: Literal["Deployment", "StatefulSet", "DaemonSet"]
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"


class _Hashed(_Doc):
    schema_version: Literal[1] = SCHEMA_VERSION
    hash: str = ""

    def body(self) -> dict[str, Any]:
        """The document without its hash, as written to JSON."""
        doc = self.model_dump(mode="json", by_alias=True)
        doc.pop("hash", None)
        return doc

    def compute_hash(self) -> str:
        canonical = json.dumps(self.body(), sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()

    def sealed(self) -> Self:
        """A copy whose ``hash`` covers the rest of the document."""
        return self.model_copy(update={"hash": self.compute_hash()})

    def to_json(self) -> str:
        """Stable, human-readable JSON (sorted keys) for ConfigMap data."""
        return json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True, indent=2)

    @model_validator(mode="after")
    def _hash_matches(self) -> Any:
        if self.hash and self.hash != self.compute_hash():
            raise ValueError("hash does not match the document: the config was edited by hand")
        return self


class UnifiedConfig(_Hashed):
    """``policy.json``: the effective policy of one workload (the ConfigMap contract)."""

    workload: WorkloadId
    sources: tuple[str, ...]
    enforcement: Enforcement
    failure_policy: FailurePolicy = "Fail"
    timeouts: ConfigTimeouts
    session: ConfigSession
    activity: ConfigActivity = ConfigActivity()
    reauthentication: ConfigReauthentication = ConfigReauthentication()
    store: ConfigStore
    purge: ConfigPurge = ConfigPurge()
    client: ConfigClient = ConfigClient()


class PurgeWorkload(_Doc):
    """The current limits of one workload, as the purge job judges its sessions."""

    kind: str
    name: str
    idle_seconds: Seconds
    absolute_seconds: Seconds


class PurgeConfig(_Hashed):
    """``purge.json``: what one policy's purge CronJob needs to judge the sessions of its store."""

    kind: Literal["PurgeConfig"] = "PurgeConfig"
    policy: str
    namespace: str
    enforcement: Enforcement
    store: ConfigStore
    timeouts: ConfigTimeouts
    purge: ConfigPurge = ConfigPurge()
    workloads: tuple[PurgeWorkload, ...] = ()
