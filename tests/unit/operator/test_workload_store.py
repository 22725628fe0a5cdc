"""The workload store tells which workload events matter to policies."""

from __future__ import annotations

from curfew.api import parse_policy
from curfew.operator.runtime import WorkloadStore, build_workload_record
from curfew.render import render


def _deployment(labels: dict[str, str], replicas: int = 1) -> dict:
    return {"kind": "Deployment", "metadata": {"name": "web", "namespace": "shop", "uid": "u1"},
            "spec": {"replicas": replicas, "template": {"metadata": {"labels": labels}}},
            "status": {"readyReplicas": replicas}}


def test_only_new_relabelled_or_deleted_workloads_count_as_changes() -> None:
    store = WorkloadStore()
    record = build_workload_record(_deployment({"app": "web"}), "Deployment")
    assert store.apply(record)
    assert not store.apply(build_workload_record(_deployment({"app": "web"}, 3), "Deployment"))
    assert store.apply(build_workload_record(_deployment({"app": "shop"}), "Deployment"))
    assert store.in_namespace("shop")[0]["spec"]["template"]["metadata"]["labels"] == {
        "app": "shop"}
    assert store.apply(record, deleted=True)
    assert not store.apply(record, deleted=True)
    assert store.in_namespace("shop") == []


def test_a_record_reads_as_the_workload_it_stands_for_and_selects_as_it_would() -> None:
    record = build_workload_record(_deployment({"app": "web", "tier": "front"}), "Deployment")
    assert dict(record) == {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "uid": "u1"},
        "spec": {"template": {"metadata": {"labels": {"app": "web", "tier": "front"}}}}}
    assert record.get("status") is None
    assert not hasattr(record, "__dict__")  # five slots per workload, kept for the whole run
    rendered = render([parse_policy({
        "apiVersion": "curfew.dev/v1alpha1", "kind": "SessionPolicy",
        "metadata": {"name": "p", "namespace": "shop"},
        "spec": {"selector": {"matchLabels": {"tier": "front"}},
                 "timeouts": {"idle": "15m", "absolute": "8h"},
                 "store": {"redisSecretRef": {"name": "redis"}}}})], [record])
    [config_map] = rendered.config_maps
    assert config_map["metadata"]["ownerReferences"][0]["uid"] == "u1"
