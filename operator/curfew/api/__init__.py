"""The public API of Curfew: the ``SessionPolicy`` model, durations, compliance, unified config."""

from curfew.api.compliance import PROFILES, Profile, Violation, check_compliance, evaluate
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
from curfew.api.errors import CurfewInputError, InvalidPolicy, InvalidWorkload
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
    parse_policy,
)

__all__ = [
    "API_VERSION",
    "GROUP",
    "KIND",
    "PLURAL",
    "POLICY_FILE",
    "PROFILES",
    "PURGE_FILE",
    "SCHEMA_VERSION",
    "VERSION",
    "Condition",
    "CurfewInputError",
    "Duration",
    "DurationError",
    "InvalidPolicy",
    "InvalidWorkload",
    "LabelSelector",
    "LastPurge",
    "Profile",
    "PurgeConfig",
    "PurgeWorkload",
    "SessionPolicy",
    "SessionPolicySpec",
    "SessionPolicyStatus",
    "UnifiedConfig",
    "Violation",
    "WorkloadId",
    "WorkloadStatus",
    "check_compliance",
    "describe_errors",
    "evaluate",
    "parse_policy",
]
