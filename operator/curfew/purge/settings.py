"""The purge job's settings: command-line flags over environment variables over defaults."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_TERMINATION_LOG = Path("/dev/termination-log")


class PurgeSettings(BaseSettings):
    """Everything one ``curfew purge`` run is configured with."""

    model_config = SettingsConfigDict(
        env_prefix="CURFEW_PURGE_", populate_by_name=True, extra="ignore", frozen=True
    )

    config: Path = Field(
        description="The purge.json (one policy) or policy.json (one workload) to purge by."
    )
    redis_url: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("redis_url", "REDIS_URL"),
        description="URL of the session store (redis://, rediss://, redis+cluster://, "
        "redis+sentinel://), from --redis-url or REDIS_URL.",
    )
    session_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("session_key", "CURFEW_SESSION_KEY"),
        description="HMAC key of session ids (CURFEW_SESSION_KEY); needed for app formats, "
        "whose session ids the job hashes to find Curfew's records.",
    )
    dry_run: bool = Field(
        default=False, description="Report what would be removed and remove nothing."
    )
    termination_log: Path | None = Field(
        default=None,
        description="File that receives the summary line (default /dev/termination-log when "
        "it exists).",
    )
    batch_size: int = Field(
        default=1000, ge=1, le=100_000, description="Sessions read or removed per pipeline."
    )
    shard_batch: int = Field(
        default=500,
        ge=1,
        le=5000,
        description="Index entries one script call judges: bounds how long a call blocks Redis.",
    )
    pipelines: int = Field(
        default=2,
        ge=1,
        le=8,
        description="Concurrent pipelines over disjoint shards of the index, so Redis runs one "
        "while the job writes the audit lines of another.",
    )
    scan_count: int = Field(
        default=1000, ge=1000, description="COUNT of each SCAN over an app's keyspace."
    )
    socket_timeout: float = Field(
        default=5.0, gt=0, description="Seconds to wait for one Redis reply (a whole pipeline)."
    )
    progress: bool | None = Field(
        default=None, description="Show a progress line on stderr (default: when it is a TTY)."
    )

    def resolved_termination_log(self) -> Path | None:
        if self.termination_log is not None:
            return self.termination_log
        return DEFAULT_TERMINATION_LOG if DEFAULT_TERMINATION_LOG.exists() else None
