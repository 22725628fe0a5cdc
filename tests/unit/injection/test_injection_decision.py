"""The pure injection decision: who is injected, which workload's ConfigMap is mounted, how the
sidecar takes over the app's port, and what is refused; every patched pod is a valid Pod."""

from __future__ import annotations

import contextlib
from typing import Any

import kubernetes_validate
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curfew.api import WorkloadId
from curfew.render import build_config_map_name
from curfew.render.injection import (
    ANNOTATION_INJECTED,
    InjectionOutcome,
    InjectionRefused,
    InjectionSettings,
    build_injection,
    build_pod_workload,
)
from fixtures.pods import applied, assert_valid_pod, parsed, pod, policy

SETTINGS = InjectionSettings(image="registry.example.com/curfew:0.1.0", ops_port=9469)
POLICIES = [parsed(policy())]


def _inject(obj: dict[str, Any], policies: list[Any] = POLICIES, **kw: Any) -> Any:
    return build_injection(obj, "shop", policies, SETTINGS, **kw)


def _container(obj: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [c for c in obj["spec"]["containers"] if c["name"] == name]
    return found


def test_a_labelled_deployment_pod_gets_the_sidecar_in_front_of_its_port() -> None:
    original = pod()
    decision = _inject(original)
    assert decision.outcome is InjectionOutcome.INJECTED
    assert decision.workload == WorkloadId(kind="Deployment", namespace="shop", name="web")
    result = applied(original, decision.patch)
    assert_valid_pod(result)

    sidecar = _container(result, "curfew-sidecar")
    assert sidecar["image"] == "registry.example.com/curfew:0.1.0"
    assert sidecar["ports"][0] == {"name": "http", "containerPort": 8080, "protocol": "TCP"}
    assert "--listen=0.0.0.0:8080" in sidecar["args"]
    assert "--upstream=http://127.0.0.1:8081" in sidecar["args"]
    assert "--mode=proxy" in sidecar["args"]
    assert sidecar["securityContext"]["runAsNonRoot"] is True
    assert sidecar["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    app = _container(result, "app")
    assert app["ports"] == []
    assert result["spec"]["containers"][0]["name"] == "app"  # stays kubectl's default container


def test_the_config_map_of_the_pods_workload_is_mounted_and_recorded() -> None:
    result = applied(pod(), _inject(pod()).patch)
    expected = build_config_map_name(WorkloadId(kind="Deployment", namespace="shop", name="web"))
    assert {"name": "curfew-config", "configMap": {"name": expected}} in result["spec"]["volumes"]
    assert {"name": "cache", "emptyDir": {}} in result["spec"]["volumes"]
    assert result["metadata"]["annotations"][ANNOTATION_INJECTED] == expected
    mount = _container(result, "curfew-sidecar")["volumeMounts"]
    assert mount == [{"name": "curfew-config", "mountPath": "/etc/curfew", "readOnly": True}]


def test_redis_url_and_session_key_come_from_the_policys_secrets() -> None:
    custom = parsed(policy(redisSecretRef={"name": "redis-main", "key": "uri"},
                           sessionKeySecretRef={"name": "hmac", "key": "k"}))
    result = applied(pod(), _inject(pod(), [custom]).patch)
    env = {e["name"]: e["valueFrom"]["secretKeyRef"]
           for e in _container(result, "curfew-sidecar")["env"]}
    assert env == {"REDIS_URL": {"name": "redis-main", "key": "uri"},
                   "CURFEW_SESSION_KEY": {"name": "hmac", "key": "k"}}
    assert not any("value" in e for e in _container(result, "curfew-sidecar")["env"])


def test_app_probes_on_the_taken_over_port_move_to_the_upstream_port() -> None:
    result = applied(pod(), _inject(pod()).patch)
    app = _container(result, "app")
    assert app["readinessProbe"]["httpGet"] == {"path": "/ready", "port": 8081}
    assert app["livenessProbe"]["tcpSocket"] == {"port": 8081}


def test_a_pod_without_volumes_or_probes_still_gets_a_valid_patch() -> None:
    bare = pod(volumes=False, probes=False)
    result = applied(bare, _inject(bare).patch)
    assert_valid_pod(result)
    assert [v["name"] for v in result["spec"]["volumes"]] == ["curfew-config"]


def test_a_pod_that_already_carries_the_sidecar_is_left_alone() -> None:
    once = applied(pod(), _inject(pod()).patch)
    again = _inject(once)
    assert again.outcome is InjectionOutcome.SKIPPED
    assert again.patch == []
    assert "already" in again.reason


def test_a_pod_with_a_hand_written_sidecar_from_the_library_chart_is_left_alone() -> None:
    manual = pod()
    manual["spec"]["containers"].append({"name": "curfew-sidecar", "image": "curfew:0.1.0"})
    assert _inject(manual).outcome is InjectionOutcome.SKIPPED


def test_the_opt_out_annotation_wins_over_the_pod_and_namespace_labels() -> None:
    opted_out = pod(annotations={"curfew.dev/inject": "false"})
    decision = _inject(opted_out, namespace_opted_in=True)
    assert decision.outcome is InjectionOutcome.SKIPPED
    assert "opted out" in decision.reason


def test_an_unlabelled_pod_is_injected_only_when_its_namespace_opted_in() -> None:
    unlabelled = pod(labels={"curfew.dev/inject": "no"})
    assert _inject(unlabelled).outcome is InjectionOutcome.SKIPPED
    assert _inject(unlabelled, namespace_opted_in=True).outcome is InjectionOutcome.INJECTED


def test_a_pod_of_a_workload_no_policy_selects_is_left_alone() -> None:
    other = parsed(policy(selector={"matchLabels": {"app": "api"}}))
    decision = _inject(pod(), [other])
    assert decision.outcome is InjectionOutcome.SKIPPED
    assert decision.reason == "no SessionPolicy selects Deployment/shop/web"
    assert decision.warn is True


def test_a_policy_of_another_namespace_does_not_select_the_pod() -> None:
    elsewhere = parsed(policy(namespace="admin"))
    assert _inject(pod(), [elsewhere]).outcome is InjectionOutcome.SKIPPED


def test_controller_added_labels_do_not_take_part_in_selection() -> None:
    by_hash = parsed(policy(selector={"matchExpressions": [
        {"key": "pod-template-hash", "operator": "DoesNotExist"}]}))
    assert _inject(pod(), [by_hash]).outcome is InjectionOutcome.INJECTED


@pytest.mark.parametrize(("owner", "labels", "expected"), [
    (("ReplicaSet", "web-5d8f7c9b6d"), {"pod-template-hash": "5d8f7c9b6d"},
     WorkloadId(kind="Deployment", namespace="shop", name="web")),
    (("ReplicaSet", "my-web-app-5d8f7c9b6d"), {"pod-template-hash": "5d8f7c9b6d"},
     WorkloadId(kind="Deployment", namespace="shop", name="my-web-app")),
    (("StatefulSet", "db"), {}, WorkloadId(kind="StatefulSet", namespace="shop", name="db")),
    (("DaemonSet", "agent"), {}, WorkloadId(kind="DaemonSet", namespace="shop", name="agent")),
    (("ReplicaSet", "standalone"), {"pod-template-hash": "5d8f7c9b6d"}, None),
    (("ReplicaSet", "web-5d8f7c9b6d"), {}, None),
    (("Job", "migrate"), {}, None),
    (None, {}, None),
], ids=["deployment by the pod-template-hash suffix", "deployment with dashes in its name",
        "statefulset directly", "daemonset directly", "replicaset of no deployment",
        "replicaset without the hash label", "job", "bare pod"])
def test_the_workload_is_resolved_from_the_controller_reference(
    owner: tuple[str, str] | None, labels: dict[str, str], expected: WorkloadId | None
) -> None:
    obj = pod(owner=owner)
    obj["metadata"]["labels"] = {"app": "web", **labels}
    assert build_pod_workload(obj, "shop") == expected


def test_a_non_controller_owner_is_not_the_workload() -> None:
    obj = pod()
    obj["metadata"]["ownerReferences"][0]["controller"] = False
    assert build_pod_workload(obj, "shop") is None


def test_a_bare_opted_in_pod_is_left_alone_with_the_reason() -> None:
    decision = _inject(pod(owner=None))
    assert decision.outcome is InjectionOutcome.SKIPPED
    assert "no Deployment, StatefulSet or DaemonSet" in decision.reason
    assert decision.warn is True


def test_pods_that_did_not_opt_in_or_opted_out_are_left_alone_silently() -> None:
    assert _inject(pod(labels={"curfew.dev/inject": "no"})).warn is False
    assert _inject(pod(annotations={"curfew.dev/inject": "false"})).warn is False


def test_a_statefulset_pod_mounts_the_statefulsets_config_map() -> None:
    obj = pod(owner=("StatefulSet", "db"))
    decision = _inject(obj)
    assert decision.config_map == "curfew-statefulset-db"
    assert_valid_pod(applied(obj, decision.patch))


def test_the_port_annotation_picks_which_port_the_sidecar_takes_over() -> None:
    obj = pod(annotations={"curfew.dev/port": "web"})
    obj["spec"]["containers"][0]["ports"] = [
        {"name": "metrics", "containerPort": 9090, "protocol": "TCP"},
        {"name": "web", "containerPort": 3000},
    ]
    result = applied(obj, _inject(obj).patch)
    assert_valid_pod(result)
    assert _container(result, "app")["ports"] == [
        {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}]
    assert _container(result, "curfew-sidecar")["ports"][0]["containerPort"] == 3000


def test_the_container_annotation_picks_the_app_container() -> None:
    obj = pod(annotations={"curfew.dev/container": "web"})
    obj["spec"]["containers"].insert(0, {"name": "log-shipper", "image": "example.com/ship:1"})
    obj["spec"]["containers"][1]["name"] = "web"
    result = applied(obj, _inject(obj).patch)
    assert_valid_pod(result)
    assert _container(result, "web")["ports"] == []


@pytest.mark.parametrize(("change", "message"), [
    ({"upstream": None}, "annotation curfew.dev/upstream-port: required"),
    ({"annotations": {"curfew.dev/upstream-port": "http"}}, "is not a port number"),
    ({"annotations": {"curfew.dev/upstream-port": "70000"}}, "is not between 1 and 65535"),
    ({"upstream": 8080}, "is the port the sidecar takes over"),
    ({"upstream": 9469}, "ops port 9469 is already used"),
    ({"annotations": {"curfew.dev/port": "grpc"}}, "declares no port 'grpc'"),
    ({"annotations": {"curfew.dev/container": "nginx"}}, "no container named 'nginx'"),
], ids=["no upstream port", "upstream port not a number", "upstream port out of range",
        "upstream port equal to the taken port", "upstream port on the ops port",
        "port annotation naming no port", "container annotation naming no container"])
def test_an_opted_in_pod_whose_ports_cannot_be_worked_out_is_refused_with_one_line(
    change: dict[str, Any], message: str
) -> None:
    with pytest.raises(InjectionRefused, match=message) as caught:
        _inject(pod(**change))
    assert "\n" not in str(caught.value)


def test_an_app_without_a_tcp_port_is_refused() -> None:
    obj = pod()
    obj["spec"]["containers"][0]["ports"] = [{"containerPort": 53, "protocol": "UDP"}]
    with pytest.raises(InjectionRefused, match="declares no TCP port"):
        _inject(obj)


@pytest.mark.parametrize("broken", [
    "not a pod", {"metadata": "x"}, {"metadata": {"labels": {"curfew.dev/inject": "true"}},
                                     "spec": {"containers": "x"}},
], ids=["a string", "metadata not an object", "containers not a list"])
def test_a_malformed_pod_is_refused_not_crashed_on(broken: Any) -> None:
    with pytest.raises(InjectionRefused):
        _inject(broken)


def test_the_decision_is_deterministic() -> None:
    assert _inject(pod()).patch == _inject(pod()).patch


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 70000) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=6)
PATHS = [
    ("metadata",), ("metadata", "labels"), ("metadata", "annotations"),
    ("metadata", "ownerReferences"), ("metadata", "ownerReferences", 0),
    ("metadata", "annotations", "curfew.dev/upstream-port"),
    ("metadata", "annotations", "curfew.dev/port"), ("spec",), ("spec", "containers"),
    ("spec", "containers", 0), ("spec", "containers", 0, "ports"),
    ("spec", "containers", 0, "ports", 0), ("spec", "containers", 0, "ports", 0, "containerPort"),
    ("spec", "containers", 0, "readinessProbe"), ("spec", "containers", 0, "livenessProbe"),
    ("spec", "volumes"),
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(PATHS), JSON), min_size=1, max_size=3))
def test_any_malformed_pod_gets_a_decision_or_a_one_line_refusal_never_another_error(
    changes: list[tuple[tuple[Any, ...], Any]],
) -> None:
    obj: Any = pod()
    for path, value in changes:
        target = obj
        for step in path[:-1]:
            try:
                target = target[step]
            except (KeyError, IndexError, TypeError):
                break
        else:
            with contextlib.suppress(KeyError, IndexError, TypeError):
                target[path[-1]] = value
    refusal = None
    try:
        decision = _inject(obj, namespace_opted_in=True)
    except InjectionRefused as refused:
        refusal = str(refused)
    if refusal is not None:
        assert "\n" not in refusal
    elif decision.outcome is InjectionOutcome.INJECTED and _valid(obj):
        # The API server validates the pod it was given; a valid pod stays valid once patched.
        assert_valid_pod(applied(obj, decision.patch))


def _valid(obj: Any) -> bool:
    try:
        assert_valid_pod(obj)
    except kubernetes_validate.ValidationError:
        return False
    return True
