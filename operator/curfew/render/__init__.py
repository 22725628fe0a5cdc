"""The renderer: pure functions from SessionPolicies and workloads to the objects the operator
writes (per-workload ``policy.json`` ConfigMaps, each policy's purge ConfigMap and CronJob, and
the purge Job started at once when a policy's limits are tightened).

No I/O and no Kubernetes client: the operator and ``curfew render`` share this code, so what
``curfew render`` prints is what the operator would apply.
"""

from curfew.render.core import (
    DEFAULT_SETTINGS,
    WORKLOAD_KINDS,
    Rendered,
    pod_template_labels,
    render,
    workload_id,
)
from curfew.render.naming import (
    PurgeNames,
    build_config_map_name,
    build_label_value,
    build_purge_names,
)
from curfew.render.objects import (
    ANNOTATION_CONFIG_HASH,
    ANNOTATION_POLICY,
    ANNOTATION_SOURCES,
    ANNOTATION_WORKLOAD_NAME,
    LABEL_COMPONENT,
    LABEL_POLICY,
    LABEL_WORKLOAD_KIND,
    LABEL_WORKLOAD_NAME,
    MANAGED_BY,
    MANAGER,
    RenderSettings,
    Resources,
    build_config_map,
    build_cron_job,
    build_purge_config_map,
    build_purge_job,
)
from curfew.render.resolve import (
    build_effective_timeouts,
    build_purge_config,
    build_unified_config,
    winner_order,
)
from curfew.render.selectors import selects

__all__ = [
    "ANNOTATION_CONFIG_HASH", "ANNOTATION_POLICY", "ANNOTATION_SOURCES",
    "ANNOTATION_WORKLOAD_NAME", "DEFAULT_SETTINGS", "LABEL_COMPONENT", "LABEL_POLICY",
    "LABEL_WORKLOAD_KIND", "LABEL_WORKLOAD_NAME", "MANAGED_BY", "MANAGER", "WORKLOAD_KINDS",
    "PurgeNames", "RenderSettings", "Rendered", "Resources", "build_config_map",
    "build_config_map_name", "build_cron_job", "build_effective_timeouts", "build_label_value",
    "build_purge_config", "build_purge_config_map", "build_purge_job", "build_purge_names",
    "build_unified_config", "pod_template_labels", "render", "selects", "winner_order",
    "workload_id",
]
