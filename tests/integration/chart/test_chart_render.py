"""``helm template`` in every supported mode: each rendered object is valid and hardened.

Built-in kinds are validated by ``kubernetes-validate`` in strict mode (unknown fields rejected)
against the oldest Kubernetes the chart supports and the newest the validator ships. Custom
resources (ServiceMonitor, PodMonitor, PrometheusRule, kopf peerings) are outside its schemas:
their shape is checked against their CRD's schema (test_chart_observability.py for the
Prometheus Operator's).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from chart_helpers import CHART, CI_VALUES, NAMESPACE, RELEASE, by_kind, one, template

OLDEST_SUPPORTED = "1.25"
CUSTOM_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule", "ClusterKopfPeering",
                "KopfPeering"}
MODES: list[Path | None] = [None, *CI_VALUES]


def _render(values: Path | None) -> list[dict[str, Any]]:
    return template(values=[values] if values else [])


def _mode_id(values: Path | None) -> str:
    return "defaults" if values is None else values.stem


def _pod_spec(objects: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = one(objects, "Deployment")["spec"]["template"]["spec"]
    return spec


def _operator_env(objects: list[dict[str, Any]]) -> dict[str, str]:
    """The operator container's environment: its settings (CURFEW_OPERATOR_*)."""
    env = _pod_spec(objects)["containers"][0]["env"]
    return {item["name"]: item["value"] for item in env}


@pytest.mark.parametrize("values", MODES, ids=_mode_id)
@pytest.mark.parametrize("version", [OLDEST_SUPPORTED, kubernetes_validate.latest_version()])
def test_every_built_in_object_the_chart_renders_is_valid_kubernetes_in_strict_mode(
    values: Path | None, version: str
) -> None:
    objects = _render(values)
    assert objects
    for obj in objects:
        if obj["kind"] in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize("values", MODES, ids=_mode_id)
def test_every_namespaced_object_lands_in_the_release_namespace_or_a_watched_one(
    values: Path | None,
) -> None:
    objects = _render(values)
    watched = yaml.safe_load(values.read_text()).get("watchNamespaces", []) if values else []
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding", "ClusterKopfPeering",
                      "MutatingWebhookConfiguration"}
    for obj in objects:
        namespace = obj["metadata"].get("namespace")
        if obj["kind"] in cluster_scoped:
            assert namespace is None, obj["metadata"]["name"]
        elif obj["kind"] in {"Role", "RoleBinding"} \
                and obj["metadata"]["name"].endswith("-injection"):
            assert namespace == NAMESPACE  # the injection webhook's TLS Secret
        elif obj["kind"] in {"Role", "RoleBinding", "KopfPeering"}:
            assert namespace in watched
        else:
            assert namespace == NAMESPACE, f"{obj['kind']} {obj['metadata']['name']}"


@pytest.mark.parametrize("values", MODES, ids=_mode_id)
def test_the_operator_pod_is_non_root_read_only_without_capabilities_and_probed(
    values: Path | None,
) -> None:
    objects = _render(values)
    pod = _pod_spec(objects)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]["memory"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz"
        assert container[probe]["httpGet"]["port"] == "health"
    assert container["args"] == ["operator"]
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["CURFEW_OPERATOR_LIVENESS_PORT"] == str(ports["health"])


def test_by_default_one_standalone_replica_watches_every_namespace() -> None:
    objects = _render(None)
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    env = _operator_env(objects)
    assert env["CURFEW_OPERATOR_STANDALONE"] == "true"
    assert json.loads(env["CURFEW_OPERATOR_NAMESPACES"]) == []
    # kopf discovers the chart's CRDs once: no cluster-wide CRD or namespace watching.
    assert env["CURFEW_OPERATOR_SCAN_CLUSTER"] == "false"
    assert not by_kind(objects, "ClusterKopfPeering")
    assert not by_kind(objects, "PodDisruptionBudget")
    assert len(by_kind(objects, "ClusterRole")) == 1
    assert not by_kind(objects, "Role")


def test_more_than_one_replica_turns_on_kopf_peering_with_a_cluster_peering_object() -> None:
    objects = _render(CHART / "ci" / "ha-values.yaml")
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    env = _operator_env(objects)
    assert env["CURFEW_OPERATOR_STANDALONE"] == "false"
    assert env["CURFEW_OPERATOR_PEERING_NAME"] == "curfew"
    peering = one(objects, "ClusterKopfPeering")
    assert peering["metadata"]["name"] == "curfew"
    _assert_matches_peering_crd(peering)
    budget = one(objects, "PodDisruptionBudget")["spec"]
    assert budget == {"maxUnavailable": 1, "selector": deployment["spec"]["selector"]}
    anti = _pod_spec(objects)["affinity"]["podAntiAffinity"]
    term = anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    assert term["labelSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]


def test_watching_a_list_of_namespaces_uses_a_role_per_namespace_and_no_cluster_role() -> None:
    objects = _render(CHART / "ci" / "namespaced-values.yaml")
    assert not by_kind(objects, "ClusterRole")
    assert not by_kind(objects, "ClusterRoleBinding")
    roles = {role["metadata"]["namespace"] for role in by_kind(objects, "Role")}
    bindings = by_kind(objects, "RoleBinding")
    assert roles == {"shop", "admin"}
    assert {binding["metadata"]["namespace"] for binding in bindings} == roles
    account = one(objects, "ServiceAccount")["metadata"]
    for binding in bindings:
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": account["name"], "namespace": NAMESPACE}
        ]
    env = _operator_env(objects)
    assert json.loads(env["CURFEW_OPERATOR_NAMESPACES"]) == ["shop", "admin"]
    # Roles only: kopf must not list namespaces or watch CRDs, which are cluster-scoped.
    assert env["CURFEW_OPERATOR_SCAN_CLUSTER"] == "false"


def test_ha_in_namespaced_mode_puts_a_peering_object_in_each_watched_namespace() -> None:
    objects = _render(CHART / "ci" / "ha-namespaced-values.yaml")
    peerings = by_kind(objects, "KopfPeering")
    assert [p["metadata"]["namespace"] for p in peerings] == ["shop"]
    for peering in peerings:
        _assert_matches_peering_crd(peering)
    (role,) = by_kind(objects, "Role")
    assert {"kopfpeerings"} in [set(rule["resources"]) for rule in role["rules"]]


def test_metrics_are_exposed_through_a_service_a_service_monitor_scrapes() -> None:
    objects = _render(CHART / "ci" / "metrics-values.yaml")
    service = one(objects, "Service")
    monitor = one(objects, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint == {"port": "metrics", "path": "/metrics", "interval": "15s",
                        "scrapeTimeout": "5s", "honorLabels": True}
    (port,) = service["spec"]["ports"]
    assert port["name"] == "metrics"
    assert port["port"] == 9102
    container = _pod_spec(objects)["containers"][0]
    assert {"name": "metrics", "containerPort": 9102, "protocol": "TCP"} in container["ports"]
    pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert _operator_env(objects)["CURFEW_OPERATOR_METRICS_PORT"] == "9102"


def test_without_metrics_there_is_no_service_no_monitor_and_no_metrics_port() -> None:
    objects = template(sets=["metrics.enabled=false", "metrics.serviceMonitor.enabled=true"])
    assert not by_kind(objects, "Service")
    assert not by_kind(objects, "ServiceMonitor")
    container = _pod_spec(objects)["containers"][0]
    assert [port["name"] for port in container["ports"]] == ["health"]
    assert _operator_env(objects)["CURFEW_OPERATOR_METRICS_PORT"] == "0"


def test_a_custom_image_pinned_by_digest_is_used_by_the_operator_and_its_purge_jobs() -> None:
    objects = _render(CHART / "ci" / "custom-image-values.yaml")
    pod = _pod_spec(objects)
    container = pod["containers"][0]
    assert container["image"] == (
        "registry.example.com/platform/curfew@sha256:"
        "4f3c2b1a09f8e7d6c5b4a3928170f6e5d4c3b2a1908f7e6d5c4b3a2918070f6e"
    )
    assert container["imagePullPolicy"] == "Always"
    assert pod["imagePullSecrets"] == [{"name": "registry-credentials"}]
    assert pod["serviceAccountName"] == "session-operator"
    env = _operator_env(objects)
    assert env["CURFEW_OPERATOR_PURGE_IMAGE"] == "registry.example.com/platform/curfew-purge:0.1.0"
    assert env["CURFEW_OPERATOR_LOG_LEVEL"] == "DEBUG"
    assert env["TZ"] == "UTC"


def test_the_image_tag_defaults_to_the_app_version_and_purge_jobs_reuse_it() -> None:
    objects = template(sets=["image.repository=ghcr.io/acme/curfew"])
    container = _pod_spec(objects)["containers"][0]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert container["image"] == f"ghcr.io/acme/curfew:{chart['appVersion']}"
    assert _operator_env(objects)["CURFEW_OPERATOR_PURGE_IMAGE"] == container["image"]


def test_an_existing_service_account_can_be_used_instead_of_creating_one() -> None:
    objects = template(sets=["serviceAccount.create=false", "serviceAccount.name=platform-ops"])
    assert not by_kind(objects, "ServiceAccount")
    assert _pod_spec(objects)["serviceAccountName"] == "platform-ops"
    (binding,) = by_kind(objects, "ClusterRoleBinding")
    assert binding["subjects"][0]["name"] == "platform-ops"


def test_objects_are_named_after_the_release_and_labelled_for_helm() -> None:
    objects = _render(None)
    for obj in objects:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
    assert one(objects, "Deployment")["metadata"]["name"] == RELEASE


def _assert_matches_peering_crd(obj: dict[str, Any]) -> None:
    crds = yaml.safe_load_all((CHART / "crds" / "kopf-peering.yaml").read_text())
    (crd,) = [c for c in crds if c["spec"]["names"]["kind"] == obj["kind"]]
    group, version = obj["apiVersion"].split("/")
    assert crd["spec"]["group"] == group
    (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    jsonschema.validate(obj, served["schema"]["openAPIV3Schema"])
    assert ("namespace" in obj["metadata"]) == (crd["spec"]["scope"] == "Namespaced")
