"""The workload store tells which workload events matter to policies."""

from __future__ import annotations

from curfew.operator.runtime import WorkloadStore, build_workload_record


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
