"""The sidecar's settings: one typed object, from command-line flags and the environment.

Flags win over the environment. ``REDIS_URL``, ``CURFEW_SESSION_KEY`` and ``CURFEW_APP_SECRET``
are read under those plain names (they come from the Secrets the policy references; the app's
cookie secrets have no flag, so they never show in a process list); every other setting also has
a ``CURFEW_SIDECAR_*`` variable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from curfew.sessions.codec import InvalidAppSecrets, parse_app_secrets

MIN_KEY_BYTES: Final = 16
INSECURE_DEV_KEY: Final = b"curfew-insecure-development-key-never-use-in-production"
"""The fixed key of ``--insecure-dev-key``: fixed so that dev restarts keep their sessions."""


def parse_host_port(value: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` (all interfaces) or ``[IPv6]:PORT`` -> (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not HOST:PORT (e.g. 0.0.0.0:8080 or :8080)")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


class SidecarSettings(BaseSettings):
    """Everything ``curfew sidecar`` is configured with."""

    model_config = SettingsConfigDict(
        env_prefix="CURFEW_SIDECAR_", extra="forbid", populate_by_name=True
    )

    config: Path = Field(
        description="The mounted unified config (policy.json); reloaded when it changes."
    )
    listen: str = Field(
        default="0.0.0.0:8080", description="HOST:PORT the proxy or authorization service serves."
    )
    ops_listen: str | None = Field(
        default="0.0.0.0:9469",
        description="HOST:PORT for /healthz, /readyz (with details) and /metrics, kept off the "
        "app's port so they never shadow the app's own paths (empty: no ops listener; probes "
        "then use /.curfew/healthz and /.curfew/readyz on the main port).",
    )
    mode: Literal["proxy", "authz"] = Field(
        default="proxy",
        description="proxy: reverse proxy in front of --upstream; authz: an authorization "
        "service for Envoy ext_authz and nginx auth_request.",
    )
    upstream: str | None = Field(
        default=None, description="The app's base URL in proxy mode, e.g. http://127.0.0.1:8000."
    )
    authz_path_prefix: str = Field(
        default="",
        description="In authz mode, the prefix Envoy's http_service.path_prefix puts before the "
        "original path; stripped to recover it.",
    )
    redis_url: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("redis_url", "REDIS_URL"),
        description="URL of the shared session store (redis://, rediss://; see docs/store.md).",
    )
    session_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("session_key", "CURFEW_SESSION_KEY"),
        description="Key of the keyed hash (HMAC-SHA-256) under which session ids are stored "
        "and logged; the same for every sidecar and purge job sharing a store.",
    )
    app_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("app_secret", "CURFEW_APP_SECRET"),
        description="The app's cookie secret(s) (store.appSecretRef: one a line or a JSON list "
        "of strings), which express-session cookie signatures are verified with.",
    )
    insecure_dev_key: bool = Field(
        default=False,
        description="Run without CURFEW_SESSION_KEY on a fixed, public key: development only.",
    )
    redis_timeout_seconds: float = Field(
        default=0.25, gt=0, le=10,
        description="Connect and reply timeout of each store call, so a slow or unreachable "
        "store never stalls requests for long.",
    )
    redis_retries: int = Field(
        default=1, ge=0, le=5,
        description="Retries of a failed store call (with a short backoff) before the request "
        "is answered per the failure policy.",
    )
    config_poll_seconds: float = Field(
        default=1.0, gt=0, le=300,
        description="How often the config file (and the symlink kubelet swaps) is checked.",
    )
    upstream_connect_timeout_seconds: float = Field(
        default=5.0, gt=0, description="Connect timeout to the upstream app."
    )
    upstream_read_timeout_seconds: float = Field(
        default=300.0, gt=0,
        description="Longest wait for the next bytes of an upstream response (not a total "
        "limit, so long streams keep working).",
    )
    shutdown_grace_seconds: float = Field(
        default=25.0, ge=0,
        description="On SIGTERM, how long in-flight requests may take to finish after the "
        "listener stops accepting (keep it under the pod's terminationGracePeriodSeconds).",
    )
    websocket_activity_interval_seconds: float = Field(
        default=10.0, gt=0,
        description="A websocket carrying messages counts as activity at most this often "
        "(one store call per interval, not per message).",
    )

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        parse_host_port(value)
        return value

    @field_validator("ops_listen")
    @classmethod
    def _ops_listen(cls, value: str | None) -> str | None:
        if value:
            parse_host_port(value)
        return value or None

    @field_validator("upstream")
    @classmethod
    def _upstream(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value.rstrip("/") if value else value

    @field_validator("authz_path_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if value and not value.startswith("/"):
            raise ValueError(f"{value!r} must start with /")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _consistent(self) -> SidecarSettings:
        if self.mode == "proxy" and not self.upstream:
            raise ValueError("upstream: proxy mode needs --upstream URL (the app behind it)")
        if self.redis_url is None:
            raise ValueError("redis_url: no session store: pass --redis-url or set REDIS_URL")
        if self.session_key is None and not self.insecure_dev_key:
            raise ValueError(
                "session_key: CURFEW_SESSION_KEY is not set; without it session ids cannot be "
                "hashed consistently with the other sidecars and the purge job, and a guessable "
                "key would let anyone reading the store or logs test session ids "
                "(for local development only, pass --insecure-dev-key)"
            )
        if self.session_key is not None and len(self.key_bytes) < MIN_KEY_BYTES:
            raise ValueError(f"session_key: CURFEW_SESSION_KEY must be at least "
                             f"{MIN_KEY_BYTES} bytes long")
        if self.app_secret is not None:
            try:
                parse_app_secrets(self.app_secret.get_secret_value())
            except InvalidAppSecrets as error:
                raise ValueError(f"app_secret: CURFEW_APP_SECRET {error}") from None
        return self

    @property
    def app_secrets(self) -> tuple[bytes, ...]:
        """The app's cookie secrets, none when ``CURFEW_APP_SECRET`` is unset."""
        if self.app_secret is None:
            return ()
        return parse_app_secrets(self.app_secret.get_secret_value())

    @property
    def key_bytes(self) -> bytes:
        if self.session_key is None:
            return INSECURE_DEV_KEY
        return self.session_key.get_secret_value().encode()
