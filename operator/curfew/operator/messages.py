"""Every user-visible string of the operator in one place: condition types and reasons, Event
reasons and messages, grouped by audience (``kubectl describe`` readers first)."""

from __future__ import annotations

from typing import Final

# --- condition types (adjectives, as the Kubernetes API conventions ask) -----------------------
READY: Final = "Ready"
OVERLAPPING: Final = "Overlapping"
COMPLIANT: Final = "Compliant"
PURGE_HEALTHY: Final = "PurgeHealthy"
CONDITION_TYPES: Final = (READY, OVERLAPPING, COMPLIANT, PURGE_HEALTHY)

# --- condition reasons (one CamelCase word) -----------------------------------------------------
RECONCILED: Final = "Reconciled"
INVALID_SPEC: Final = "InvalidSpec"
APPLY_FAILED: Final = "ApplyFailed"
APPLY_REJECTED: Final = "ApplyRejected"
POLICIES_OVERLAP: Final = "PoliciesOverlap"
NO_OVERLAP: Final = "NoOverlap"
MEETS_PROFILES: Final = "MeetsProfiles"
NO_PROFILES: Final = "NoProfiles"
PROFILE_VIOLATED: Final = "ProfileViolated"
NO_PURGE_YET: Final = "NoPurgeYet"
PURGE_SUCCEEDED: Final = "PurgeSucceeded"
PURGE_FAILING: Final = "PurgeFailing"
PURGE_ABORTED: Final = "PurgeAborted"
PURGE_SUSPENDED: Final = "PurgeSuspended"
PURGE_RETRYING: Final = "PurgeRetrying"

# --- condition messages ---------------------------------------------------------------------------
MSG_RECONCILED: Final = "{count} workload(s) selected; their configs are applied"
MSG_INVALID_SPEC: Final = "{error}; nothing is applied until the spec is fixed"
MSG_APPLY_FAILED: Final = "applying the rendered objects failed, retrying: {error}"
MSG_APPLY_REJECTED: Final = "the API server refused {request} ({status} {reason}): {message}; "\
    "nothing more is applied for this policy until its spec changes"
MSG_OVERLAP: Final = "shares workloads with {others}: each timeout is the shortest among them"
MSG_NO_OVERLAP: Final = "no other policy selects the same workloads"
MSG_MEETS_PROFILES: Final = "meets {profiles}"
MSG_NO_PROFILES: Final = "no compliance profile is requested"
MSG_NO_PURGE_YET: Final = "no purge run has finished yet"
MSG_PURGE_OK: Final = "last run scanned {scanned} and expired {expired} session(s)"
MSG_PURGE_FAILING: Final = "{failures} consecutive purge runs failed; last: {message}"
MSG_PURGE_FAILED_ONCE: Final = "last purge run failed ({failures} of {threshold} before "\
    "unhealthy): {message}"
MSG_PURGE_ABORTED: Final = "last purge run aborted and removed nothing: {message}"
MSG_PURGE_SUSPENDED: Final = "scheduled purges are suspended (spec.purge.suspend)"

# --- Event reasons ------------------------------------------------------------------------------
EV_CONFIGMAP_CREATED: Final = "ConfigMapCreated"
EV_CONFIGMAP_UPDATED: Final = "ConfigMapUpdated"
EV_CONFIGMAP_DELETED: Final = "ConfigMapDeleted"
EV_PURGE_CONFIG_CREATED: Final = "PurgeConfigCreated"
EV_PURGE_CONFIG_UPDATED: Final = "PurgeConfigUpdated"
EV_CRONJOB_CREATED: Final = "CronJobCreated"
EV_CRONJOB_UPDATED: Final = "CronJobUpdated"
EV_CRONJOB_DELETED: Final = "CronJobDeleted"
EV_PURGE_STARTED: Final = "PurgeStarted"
EV_PURGE_SUCCEEDED: Final = "PurgeSucceeded"
EV_PURGE_FAILED: Final = "PurgeFailed"
EV_INVALID_SPEC: Final = "InvalidSpec"
EV_OVERLAPPING: Final = "Overlapping"
EV_NONCOMPLIANT: Final = "NonCompliant"
EV_APPLY_FAILED: Final = "ApplyFailed"
EV_APPLY_REJECTED: Final = "ApplyRejected"

# --- Event messages -----------------------------------------------------------------------------
EVM_CONFIGMAP: Final = "ConfigMap {name} for {workload}"
EVM_CONFIGMAP_DELETED: Final = "ConfigMap {name}: {workload} is no longer selected"
EVM_MANY: Final = "{count} ConfigMaps, for {workloads}"
"""One Event for all ConfigMaps of one kind of change in one pass (a rollout touching 1000
workloads gives one Event, not 1000)."""
EVM_MANY_DELETED: Final = "{count} ConfigMaps, for workloads no longer selected: {workloads}"
EVM_MORE: Final = " and {count} more"
EVM_PURGE_CONFIG: Final = "purge ConfigMap {name}"
EVM_CRONJOB: Final = "purge CronJob {name}"
EVM_PURGE_STARTED: Final = "timeouts were tightened: started purge Job {name} now"
EVM_PURGE_RESULT: Final = "purge Job {job}: {outcome}, scanned {scanned}, expired {expired}: "\
    "{message}"
