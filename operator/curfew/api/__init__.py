"""The public API of Curfew: the ``SessionPolicy`` model, durations, compliance, unified config."""

from curfew.api.compliance import PROFILES, Profile, Violation, evaluate
from curfew.api.config import (
    POLICY_FILE,
    PURGE_FILE,
    SCHEMA_VERSION,
    PurgeConfig,
    PurgeWorkload,
    UnifiedConfig,
    WorkloadId,
)
from curfew.api.durations import Duration, DurationError
from curfew.api.policy import (
    API_VERSION,
    GROUP,
    KIND,
    PLURAL,
    VERSION,
    Condition,
    LabelSelector,
    LastPurge,
    SessionPolicy,
    SessionPolicySpec,
    SessionPolicyStatus,
    WorkloadStatus,
    describe_errors,
)

__all__ = [
    "API_VERSION", "GROUP", "KIND", "PLURAL", "POLICY_FILE", "PROFILES", "PURGE_FILE",
    "SCHEMA_VERSION", "VERSION", "Condition", "Duration", "DurationError", "LabelSelector",
    "LastPurge", "Profile", "PurgeConfig", "PurgeWorkload", "SessionPolicy", "SessionPolicySpec",
    "SessionPolicyStatus", "UnifiedConfig", "Violation", "WorkloadId", "WorkloadStatus",
    "describe_errors", "evaluate",
]
