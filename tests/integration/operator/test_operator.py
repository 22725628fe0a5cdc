"""The real operator against the API emulator, driven over HTTP as kubectl would drive it."""

from __future__ import annotations

import json

import pytest

from curfew.k8s.client import (
    CONFIG_MAPS,
    CRON_JOBS,
    DEPLOYMENTS,
    JOBS,
    SESSION_POLICIES,
    STATEFUL_SETS,
)
from curfew.operator.plan import ANNOTATION_PURGE_PENDING
from tests.integration.operator.harness import (
    Cluster,
    build_policy,
    build_workload,
    condition,
    events_for,
    eventually,
    quiet,
)
from tests.integration.operator.scenarios import SUMMARY_OK, finish_purge_job

pytestmark = pytest.mark.timeout(60)


def policy_json(cluster: Cluster, name: str, namespace: str = "shop") -> dict:
    cm = cluster.api.object(CONFIG_MAPS, namespace, name)
    assert cm is not None, f"ConfigMap {name} is missing"
    return json.loads(cm["data"]["policy.json"])


async def start(cluster: Cluster, **settings: object) -> None:
    op = cluster.start_operator(**settings)
    await op.wait_ready()


async def seed(cluster: Cluster) -> None:
    """A shop namespace: two storefront Deployments, a StatefulSet, and an unrelated app."""
    c = cluster.client
    await c.create(DEPLOYMENTS, "shop", build_workload("web", labels={"team": "store"}))
    await c.create(DEPLOYMENTS, "shop", build_workload("api", labels={"team": "store"}))
    await c.create(STATEFUL_SETS, "shop", build_workload("cart", labels={"team": "store"},
                                                         kind="StatefulSet"))
    await c.create(DEPLOYMENTS, "shop", build_workload("blog", labels={"team": "blog"}))
    await c.create(DEPLOYMENTS, "other", build_workload("web", "other",
                                                        labels={"team": "store"}))


async def test_a_created_policy_gets_configmaps_for_exactly_its_workloads_a_cronjob_and_ready(
        cluster: Cluster) -> None:
    await seed(cluster)
    await start(cluster)
    await cluster.client.create(SESSION_POLICIES, "shop",
                                build_policy("store", selector={"team": "store"}))
    policy = await eventually(lambda: condition(
        cluster.api.object(SESSION_POLICIES, "shop", "store"), "Ready")["status"] == "True"
        and cluster.api.object(SESSION_POLICIES, "shop", "store"))
    names = sorted(cm["metadata"]["name"] for cm in cluster.api.list_objects(CONFIG_MAPS))
    assert names == ["curfew-deployment-api", "curfew-deployment-web", "curfew-purge-store",
                     "curfew-statefulset-cart"]
    assert policy_json(cluster, "curfew-deployment-web")["timeouts"]["idleSeconds"] == 900
    assert cluster.api.object(CRON_JOBS, "shop", "curfew-purge-store") is not None
    status = policy["status"]
    assert status["observedGeneration"] == 1
    assert status["selectedWorkloads"] == 3
    assert {w["name"] for w in status["workloads"]} == {"web", "api", "cart"}
    assert condition(policy, "Ready")["reason"] == "Reconciled"
    assert condition(policy, "Overlapping")["status"] == "False"
    assert condition(policy, "PurgeHealthy")["status"] == "Unknown"
    web = cluster.api.object(CONFIG_MAPS, "shop", "curfew-deployment-web")
    owner = web["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"]) == ("Deployment", "web")
    await quiet(cluster.api)
    reasons = sorted(r for r, _ in events_for(cluster.api, "store"))
    assert reasons == ["ConfigMapCreated", "CronJobCreated", "PurgeConfigCreated"]
    assert ("ConfigMapCreated", "3 ConfigMaps, for Deployment/api, Deployment/web, "
            "StatefulSet/cart") in events_for(cluster.api, "store")


async def test_an_edited_policy_patches_its_configmaps_and_emits_one_event_for_the_change(
        cluster: Cluster) -> None:
    await seed(cluster)
    await start(cluster)
    await cluster.client.create(SESSION_POLICIES, "shop",
                                build_policy("store", selector={"team": "store"}))
    await eventually(lambda: cluster.api.object(SESSION_POLICIES, "shop", "store")
                     ["status"]["observedGeneration"] == 1)
    await quiet(cluster.api)
    before_events = len(events_for(cluster.api, "store"))
    await cluster.client.patch(SESSION_POLICIES, "shop", "store",
                               {"spec": {"activity": {"excludePaths": ["/healthz"]}}})
    policy = await eventually(lambda: cluster.api.object(SESSION_POLICIES, "shop", "store")
                              ["status"]["observedGeneration"] == 2
                              and cluster.api.object(SESSION_POLICIES, "shop", "store"))
    await quiet(cluster.api)
    for name in ("curfew-deployment-web", "curfew-deployment-api", "curfew-statefulset-cart"):
        assert policy_json(cluster, name)["activity"]["excludePaths"] == ["/healthz"]
    new_events = [r for r, _ in events_for(cluster.api, "store")[before_events:]]
    assert new_events == ["ConfigMapUpdated"]
    ready = condition(policy, "Ready")
    assert (ready["status"], ready["observedGeneration"]) == ("True", 2)


async def test_a_workload_relabelled_into_and_out_of_the_selector_gains_and_loses_its_configmap(
        cluster: Cluster) -> None:
    await seed(cluster)
    await start(cluster)
    await cluster.client.create(SESSION_POLICIES, "shop",
                                build_policy("store", selector={"team": "store"}))
    await eventually(lambda: cluster.api.object(CONFIG_MAPS, "shop", "curfew-deployment-web"))
    relabel = {"spec": {"template": {"metadata": {"labels": {"team": "store"}}}}}
    await cluster.client.patch(DEPLOYMENTS, "shop", "blog", relabel)
    await eventually(lambda: cluster.api.object(CONFIG_MAPS, "shop", "curfew-deployment-blog"))
    await eventually(lambda: cluster.api.object(SESSION_POLICIES, "shop", "store")
                     ["status"]["selectedWorkloads"] == 4)
    relabel["spec"]["template"]["metadata"]["labels"]["team"] = "blog"
    await cluster.client.patch(DEPLOYMENTS, "shop", "blog", relabel)
    await eventually(lambda: cluster.api.object(CONFIG_MAPS, "shop", "curfew-deployment-blog")
                     is None)
    await eventually(lambda: cluster.api.object(SESSION_POLICIES, "shop", "store")
                     ["status"]["selectedWorkloads"] == 3)
    # The pass posts its Events after it writes the status: wait for the Event itself.
    await eventually(lambda: ("ConfigMapDeleted", "ConfigMap curfew-deployment-blog: "
                              "Deployment/blog is no longer selected")
                     in events_for(cluster.api, "store"))


async def test_a_relabelled_workload_no_policy_selects_causes_no_pass(cluster: Cluster) -> None:
    await seed(cluster)
    await start(cluster)
    await cluster.client.create(SESSION_POLICIES, "shop",
                                build_policy("store", selector={"team": "store"}))
    await eventually(lambda: cluster.api.object(CONFIG_MAPS, "shop", "curfew-deployment-web"))
    mark = await quiet(cluster.api)
    await cluster.client.patch(DEPLOYMENTS, "shop", "blog", {
        "spec": {"template": {"metadata": {"labels": {"team": "blog2"}}}}})
    await quiet(cluster.api)
    assert [c for c in cluster.api.operator_calls(mark) if c.resource == "configmaps"] == []


async def test_two_overlapping_policies_merge_to_the_shortest_timeouts_and_both_say_so(
        cluster: Cluster) -> None:
    await seed(cluster)
    await start(cluster)
    await cluster.client.create(SESSION_POLICIES, "shop", build_policy(
        "store", selector={"team": "store"}, idle="30m", absolute="2h"))
    await cluster.client.create(SESSION_POLICIES, "shop", build_policy(
        "pci", selector={"app": "web"}, idle="15m", absolute="8h", priority=10))
    await eventually(lambda: condition(cluster.api.object(SESSION_POLICIES, "shop", "pci"),
                                       "Overlapping")["status"] == "True")
    store = await eventually(lambda: condition(
        cluster.api.object(SESSION_POLICIES, "shop", "store"), "Overlapping")["status"] == "True"
        and cluster.api.object(SESSION_POLICIES, "shop", "store"))
    assert "shop/pci" in condition(store, "Overlapping")["message"]
    pci = cluster.api.object(SESSION_POLICIES, "shop", "pci")
    assert "shop/store" in condition(pci, "Overlapping")["message"]
    web = await eventually(lambda: policy_json(cluster, "curfew-deployment-web")["sources"]
                           == ["shop/pci", "shop/store"]
                           and policy_json(cluster, "curfew-deployment-web"))
    assert web["timeouts"]["idleSeconds"] == 900
    assert web["timeouts"]["absoluteSeconds"] == 7200
    await eventually(lambda: ("Overlapping", condition(store, "Overlapping")["message"])
                     in events_for(cluster.api, "store"))


async def test_a_deleted_policy_removes_its_objects_and_the_other_policys_effect_is_recomputed(
        cluster: Cluster) -> None:
    await seed(cluster)
    await start(cluster)
    await cluster.client.create(SESSION_POLICIES, "shop", build_policy(
        "store", selector={"team": "store"}, idle="30m"))
    await cluster.client.create(SESSION_POLICIES, "shop", build_policy(
        "pci", selector={"app": "web"}, idle="10m"))
    await eventually(lambda: policy_json(cluster, "curfew-deployment-web")["timeouts"]
                     ["idleSeconds"] == 600)
    await cluster.client.delete(SESSION_POLICIES, "shop", "pci")
    await eventually(lambda: policy_json(cluster, "curfew-deployment-web")["timeouts"]
                     ["idleSeconds"] == 1800)
    await eventually(lambda: cluster.api.object(CRON_JOBS, "shop", "curfew-purge-pci") is None)
    assert cluster.api.object(CONFIG_MAPS, "shop", "curfew-purge-pci") is None
    assert policy_json(cluster, "curfew-deployment-web")["sources"] == ["shop/store"]
    store = await eventually(lambda: condition(
        cluster.api.object(SESSION_POLICIES, "shop", "store"), "Overlapping")["status"] == "False"
        and cluster.api.object(SESSION_POLICIES, "shop", "store"))
    assert store["status"]["selectedWorkloads"] == 3
    await cluster.client.delete(SESSION_POLICIES, "shop", "store")
    await eventually(lambda: cluster.api.list_objects(CONFIG_MAPS, "shop") == []
                     and cluster.api.list_objects(CRON_JOBS, "shop") == [])


async def test_an_invalid_spec_is_ready_false_invalid_spec_naming_the_field_and_writes_nothing(
        cluster: Cluster) -> None:
    await seed(cluster)
    await start(cluster)
    bad = build_policy("store", selector={"team": "store"}, idle="2h", absolute="1h")
    await cluster.client.create(SESSION_POLICIES, "shop", bad)
    policy = await eventually(lambda: condition(
        cluster.api.object(SESSION_POLICIES, "shop", "store"), "Ready")["status"] == "False"
        and cluster.api.object(SESSION_POLICIES, "shop", "store"))
    ready = condition(policy, "Ready")
    assert ready["reason"] == "InvalidSpec"
    assert "spec.timeouts" in ready["message"]
    mark = await quiet(cluster.api)
    assert cluster.api.list_objects(CONFIG_MAPS) == []
    assert cluster.api.list_objects(CRON_JOBS) == []
    assert [r for r, _ in events_for(cluster.api, "store")] == ["InvalidSpec"]
    # No retry loop: nothing more happens while the spec stays invalid.
    await quiet(cluster.api, settle=1.5)
    assert [c for c in cluster.api.operator_calls(mark) if not c.discovery] == []


async def test_an_invalid_edit_keeps_what_the_policy_enforced_before(cluster: Cluster) -> None:
    await seed(cluster)
    await start(cluster)
    await cluster.client.create(SESSION_POLICIES, "shop",
                                build_policy("store", selector={"team": "store"}))
    await eventually(lambda: cluster.api.object(CONFIG_MAPS, "shop", "curfew-deployment-web"))
    before = policy_json(cluster, "curfew-deployment-web")
    await cluster.client.patch(SESSION_POLICIES, "shop", "store",
                               {"spec": {"timeouts": {"idle": "forever"}}})
    policy = await eventually(lambda: condition(
        cluster.api.object(SESSION_POLICIES, "shop", "store"), "Ready")["reason"] == "InvalidSpec"
        and cluster.api.object(SESSION_POLICIES, "shop", "store"))
    assert "spec.timeouts.idle" in condition(policy, "Ready")["message"]
    assert policy["status"]["observedGeneration"] == 2
    await quiet(cluster.api)
    assert policy_json(cluster, "curfew-deployment-web") == before
    assert len(cluster.api.list_objects(CONFIG_MAPS, "shop")) == 4


async def test_the_operator_converges_after_the_api_fails_with_500_and_409_for_a_while(
        cluster: Cluster) -> None:
    await seed(cluster)
    await start(cluster)
    outage = cluster.api.fail(500, lambda c: c.write and c.resource == "configmaps"
                              and not c.by_test)
    conflicts = cluster.api.fail(409, lambda c: c.write and c.resource == "cronjobs"
                                 and not c.by_test, times=3)
    await cluster.client.create(SESSION_POLICIES, "shop",
                                build_policy("store", selector={"team": "store"}))
    policy = await eventually(lambda: condition(
        cluster.api.object(SESSION_POLICIES, "shop", "store"), "Ready")["reason"] == "ApplyFailed"
        and cluster.api.object(SESSION_POLICIES, "shop", "store"))
    assert "500" in condition(policy, "Ready")["message"]
    await eventually(lambda: outage.hits >= 6)
    cluster.api.faults.remove(outage)
    policy = await eventually(lambda: condition(
        cluster.api.object(SESSION_POLICIES, "shop", "store"), "Ready")["status"] == "True"
        and cluster.api.object(SESSION_POLICIES, "shop", "store"), timeout=20)
    assert conflicts.hits == 3
    names = sorted(cm["metadata"]["name"] for cm in cluster.api.list_objects(CONFIG_MAPS))
    assert names == ["curfew-deployment-api", "curfew-deployment-web", "curfew-purge-store",
                     "curfew-statefulset-cart"]
    assert cluster.api.object(CRON_JOBS, "shop", "curfew-purge-store") is not None


async def test_a_resync_that_finds_nothing_to_change_writes_nothing(cluster: Cluster) -> None:
    await seed(cluster)
    await start(cluster, resync_seconds=0.3)
    await cluster.client.create(SESSION_POLICIES, "shop",
                                build_policy("store", selector={"team": "store"}))
    await eventually(lambda: cluster.api.object(SESSION_POLICIES, "shop", "store")
                     ["status"]["selectedWorkloads"] == 3)
    mark = await quiet(cluster.api)
    await eventually(lambda: sum(1 for c in cluster.api.operator_calls(mark)
                                 if c.verb == "list" and c.resource == "configmaps") >= 3)
    assert cluster.api.writes(mark) == []
    assert [c for c in cluster.api.operator_calls(mark) if c.resource == "events"] == []


async def test_a_resync_repairs_a_configmap_deleted_by_hand(cluster: Cluster) -> None:
    await seed(cluster)
    await start(cluster, resync_seconds=0.3)
    await cluster.client.create(SESSION_POLICIES, "shop",
                                build_policy("store", selector={"team": "store"}))
    await eventually(lambda: cluster.api.object(CONFIG_MAPS, "shop", "curfew-deployment-web"))
    await cluster.client.delete(CONFIG_MAPS, "shop", "curfew-deployment-web")
    await eventually(lambda: cluster.api.object(CONFIG_MAPS, "shop", "curfew-deployment-web"))


async def test_a_restarted_operator_resumes_without_duplicating_anything(
        cluster: Cluster) -> None:
    await seed(cluster)
    first = cluster.start_operator()
    await first.wait_ready()
    await cluster.client.create(SESSION_POLICIES, "shop",
                                build_policy("store", selector={"team": "store"}))
    await eventually(lambda: cluster.api.object(SESSION_POLICIES, "shop", "store")
                     ["status"]["selectedWorkloads"] == 3)
    await quiet(cluster.api)
    await first.stop()
    objects = sorted(o["metadata"]["name"] for o in cluster.api.list_objects(CONFIG_MAPS))
    events = events_for(cluster.api, "store")
    mark = len(cluster.api.calls)
    second = cluster.start_operator()
    await second.wait_ready()
    await eventually(lambda: any(c.verb == "list" and c.resource == "configmaps"
                                 for c in cluster.api.operator_calls(mark)))
    await quiet(cluster.api, settle=1.0)
    assert cluster.api.writes(mark, events=True) == []
    assert sorted(o["metadata"]["name"] for o in cluster.api.list_objects(CONFIG_MAPS)) == objects
    assert events_for(cluster.api, "store") == events


async def test_a_finished_purge_jobs_summary_lands_in_last_purge(cluster: Cluster) -> None:
    await seed(cluster)
    await start(cluster, purge_failure_threshold=2)
    await cluster.client.create(SESSION_POLICIES, "shop",
                                build_policy("store", selector={"team": "store"}))
    await eventually(lambda: cluster.api.object(CRON_JOBS, "shop", "curfew-purge-store"))
    await finish_purge_job(cluster, "shop", "store", "curfew-purge-store-100", SUMMARY_OK,
                           at="2026-01-01T00:05:00Z")
    policy = await eventually(lambda: cluster.api.object(SESSION_POLICIES, "shop", "store")
                              ["status"].get("lastPurge") and
                              cluster.api.object(SESSION_POLICIES, "shop", "store"))
    last = policy["status"]["lastPurge"]
    assert (last["job"], last["outcome"], last["scanned"]) == ("curfew-purge-store-100", "ok", 120)
    assert last["expired"] == {"idle": 7, "absolute": 2, "tightened": 0}
    assert condition(policy, "PurgeHealthy")["reason"] == "PurgeSucceeded"

    failed = {"outcome": "failed", "scanned": 0, "expired": {}, "message": "redis: timeout"}
    await finish_purge_job(cluster, "shop", "store", "curfew-purge-store-200", failed,
                           failed=True, at="2026-01-01T00:10:00Z")
    policy = await eventually(lambda: condition(cluster.api.object(
        SESSION_POLICIES, "shop", "store"), "PurgeHealthy")["reason"] == "PurgeRetrying"
        and cluster.api.object(SESSION_POLICIES, "shop", "store"))
    assert condition(policy, "PurgeHealthy")["status"] == "True"
    await finish_purge_job(cluster, "shop", "store", "curfew-purge-store-300", None,
                           failed=True, at="2026-01-01T00:15:00Z")
    policy = await eventually(lambda: condition(cluster.api.object(
        SESSION_POLICIES, "shop", "store"), "PurgeHealthy")["status"] == "False"
        and cluster.api.object(SESSION_POLICIES, "shop", "store"))
    assert condition(policy, "PurgeHealthy")["reason"] == "PurgeFailing"
    assert "without a summary" in condition(policy, "PurgeHealthy")["message"]
    assert policy["status"]["purgeFailures"] == 2
    await quiet(cluster.api)
    reasons = [r for r, _ in events_for(cluster.api, "store")]
    assert reasons.count("PurgeSucceeded") == 1
    assert reasons.count("PurgeFailed") == 2


async def test_an_aborted_purge_turns_purge_healthy_false_at_once(cluster: Cluster) -> None:
    await seed(cluster)
    await start(cluster)
    await cluster.client.create(SESSION_POLICIES, "shop",
                                build_policy("store", selector={"team": "store"}))
    await eventually(lambda: cluster.api.object(CRON_JOBS, "shop", "curfew-purge-store"))
    aborted = {"outcome": "aborted", "scanned": 1000, "expired": {},
               "message": "would remove 80% of sessions (cap 50%)"}
    await finish_purge_job(cluster, "shop", "store", "curfew-purge-store-1", aborted, failed=True)
    policy = await eventually(lambda: condition(cluster.api.object(
        SESSION_POLICIES, "shop", "store"), "PurgeHealthy")["status"] == "False"
        and cluster.api.object(SESSION_POLICIES, "shop", "store"))
    healthy = condition(policy, "PurgeHealthy")
    assert healthy["reason"] == "PurgeAborted"
    assert "80%" in healthy["message"]


async def start_with_a_policy_to_tighten(cluster: Cluster) -> None:
    """The operator running, with the policy "store" (idle 30m) applied and settled."""
    await seed(cluster)
    await start(cluster)
    await cluster.client.create(SESSION_POLICIES, "shop",
                                build_policy("store", selector={"team": "store"}, idle="30m"))
    await eventually(lambda: cluster.api.object(CRON_JOBS, "shop", "curfew-purge-store"))
    await quiet(cluster.api)


async def test_a_tightened_policy_starts_a_purge_job_at_once(cluster: Cluster) -> None:
    await start_with_a_policy_to_tighten(cluster)
    assert cluster.api.list_objects(JOBS) == []
    await cluster.client.patch(SESSION_POLICIES, "shop", "store",
                               {"spec": {"timeouts": {"idle": "20m"}}})
    jobs = await eventually(lambda: cluster.api.list_objects(JOBS, "shop"))
    assert len(jobs) == 1
    job = jobs[0]
    cron = cluster.api.object(CRON_JOBS, "shop", "curfew-purge-store")
    assert job["spec"] == cron["spec"]["jobTemplate"]["spec"]
    assert job["metadata"]["ownerReferences"][0]["name"] == "curfew-purge-store"
    purge = json.loads(cluster.api.object(CONFIG_MAPS, "shop", "curfew-purge-store")["data"]
                       ["purge.json"])
    assert purge["timeouts"]["idleSeconds"] == 1200
    await eventually(lambda: "PurgeStarted" in [r for r, _ in events_for(cluster.api, "store")])
    # Loosening starts nothing.
    await cluster.client.patch(SESSION_POLICIES, "shop", "store",
                               {"spec": {"timeouts": {"idle": "25m"}}})
    await eventually(lambda: json.loads(cluster.api.object(CONFIG_MAPS, "shop",
                     "curfew-purge-store")["data"]["purge.json"])["timeouts"]["idleSeconds"]
                     == 1500)
    await quiet(cluster.api)
    assert len(cluster.api.list_objects(JOBS, "shop")) == 1


async def test_a_tightening_whose_job_could_not_be_started_is_retried(cluster: Cluster) -> None:
    """The purge ConfigMap is already tightened when the Job creation fails: the pending mark
    written with it makes the next passes start the Job, then goes away."""
    await start_with_a_policy_to_tighten(cluster)
    outage = cluster.api.fail(500, lambda c: c.verb == "create" and c.resource == "jobs",
                              times=3)
    await cluster.client.patch(SESSION_POLICIES, "shop", "store",
                               {"spec": {"timeouts": {"idle": "20m"}}})

    def pending() -> str | None:
        cm = cluster.api.object(CONFIG_MAPS, "shop", "curfew-purge-store") or {}
        return (cm.get("metadata", {}).get("annotations") or {}).get(ANNOTATION_PURGE_PENDING)

    # The first attempt fails after the tightened config was written, marked pending.
    await eventually(lambda: outage.hits >= 1)
    purge = cluster.api.object(CONFIG_MAPS, "shop", "curfew-purge-store")
    assert purge is not None
    assert json.loads(purge["data"]["purge.json"])["timeouts"]["idleSeconds"] == 1200
    assert pending() == purge["metadata"]["annotations"]["curfew.dev/config-hash"]
    assert cluster.api.list_objects(JOBS, "shop") == []
    jobs = await eventually(lambda: cluster.api.list_objects(JOBS, "shop"))
    assert outage.hits == 3
    assert len(jobs) == 1
    await eventually(lambda: pending() is None)
    await quiet(cluster.api)
    # Settled: no further Job, and a resync writes nothing.
    assert len(cluster.api.list_objects(JOBS, "shop")) == 1
    await eventually(lambda: "PurgeStarted" in [r for r, _ in events_for(cluster.api, "store")])
