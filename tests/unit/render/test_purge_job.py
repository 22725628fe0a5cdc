"""The purge Job started at once when a policy's limits are tightened is built by render, from
the policy's CronJob, like every other object the operator writes."""

from __future__ import annotations

from typing import Any

from curfew.api import parse_policy
from curfew.render import RenderSettings, build_cron_job, build_purge_config, build_purge_job

POLICY = parse_policy({
    "apiVersion": "curfew.dev/v1alpha1", "kind": "SessionPolicy",
    "metadata": {"name": "storefront", "namespace": "shop", "uid": "p-uid",
                 "creationTimestamp": "2026-01-01T00:00:00Z"},
    "spec": {"selector": {"matchLabels": {"app": "web"}},
             "timeouts": {"idle": "15m", "absolute": "8h"},
             "store": {"redisSecretRef": {"name": "sessions-redis", "key": "url"}}},
})


def _cron_job() -> dict[str, Any]:
    return build_cron_job(POLICY, build_purge_config(POLICY, []), RenderSettings())


def test_the_job_runs_the_cron_jobs_template_and_is_named_after_the_tightened_config() -> None:
    cron = _cron_job()
    job = build_purge_job(cron, "sha256:0123456789abcdef", cron_job_uid="cj-uid")
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    assert job["metadata"]["name"] == f"{cron['metadata']['name']}-0123456789"
    assert job["metadata"]["namespace"] == "shop"
    assert job["spec"] == cron["spec"]["jobTemplate"]["spec"]
    assert job["metadata"]["labels"] == cron["spec"]["jobTemplate"]["metadata"]["labels"]
    assert job["metadata"]["annotations"] == {"cronjob.kubernetes.io/instantiate": "manual",
                                              "curfew.dev/policy": "shop/storefront"}
    assert job["metadata"]["ownerReferences"] == [{
        "apiVersion": "batch/v1", "kind": "CronJob", "name": cron["metadata"]["name"],
        "uid": "cj-uid", "controller": True, "blockOwnerDeletion": True}]


def test_one_tightening_is_one_job_and_another_is_another() -> None:
    cron = _cron_job()
    first = build_purge_job(cron, "sha256:aaaaaaaaaaaa")
    assert build_purge_job(cron, "sha256:aaaaaaaaaaaa") == first
    assert build_purge_job(cron, "sha256:bbbbbbbbbbbb")["metadata"]["name"] \
        != first["metadata"]["name"]


def test_without_the_cron_jobs_uid_the_job_has_no_owner_and_the_template_is_not_shared() -> None:
    cron = _cron_job()
    job = build_purge_job(cron, "sha256:aaaaaaaaaaaa")
    assert "ownerReferences" not in job["metadata"]
    job["metadata"]["labels"]["changed"] = "yes"
    assert "changed" not in cron["spec"]["jobTemplate"]["metadata"]["labels"]
