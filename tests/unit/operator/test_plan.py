"""build_plan decides the writes of a pass: create what is missing, patch what differs, delete
what is no longer rendered, and hold what an invalid policy enforced."""

from __future__ import annotations

import copy
import json
from typing import Any

from curfew.api import parse_policy
from curfew.operator.plan import (
    ANNOTATION_APPLIED_HASH,
    ANNOTATION_PURGE_PENDING,
    build_applied_hash,
    build_merge_patch,
    build_plan,
    build_stamped,
    is_tightened,
)
from curfew.render import render


def _policy(name: str, idle: str = "15m", labels: dict[str, str] | None = None) -> Any:
    return parse_policy({
        "apiVersion": "curfew.dev/v1alpha1", "kind": "SessionPolicy",
        "metadata": {"name": name, "namespace": "shop", "uid": f"uid-{name}"},
        "spec": {"selector": {"matchLabels": labels or {"team": "store"}},
                 "timeouts": {"idle": idle, "absolute": "8h"},
                 "store": {"redisSecretRef": {"name": "redis"}}},
    })


def _workload(name: str, team: str = "store") -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "shop", "uid": f"uid-{name}"},
            "spec": {"template": {"metadata": {"labels": {"team": team}}}}}


def _plan(rendered: Any, current: list[dict[str, Any]], cron: list[dict[str, Any]],
          invalid: tuple[str, ...] = ()) -> Any:
    return build_plan("shop", config_maps=rendered.config_maps,
                      purge_config_maps=rendered.purge_config_maps,
                      cron_jobs=rendered.cron_jobs, current_config_maps=current,
                      current_cron_jobs=cron, invalid_policies=invalid)


def _applied(rendered: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The objects as the API server holds them once applied: copies, edited by the tests."""
    cms = [copy.deepcopy(build_stamped(o))
           for o in rendered.config_maps + rendered.purge_config_maps]
    return cms, [copy.deepcopy(build_stamped(o)) for o in rendered.cron_jobs]


def test_an_empty_namespace_gets_every_rendered_object_created() -> None:
    rendered = render([_policy("p")], [_workload("web"), _workload("api")])
    plan = _plan(rendered, [], [])
    assert sorted((a.verb, a.name) for a in plan.actions) == [
        ("create", "curfew-deployment-api"), ("create", "curfew-deployment-web"),
        ("create", "curfew-purge-p"), ("create", "curfew-purge-p")]
    assert all(ANNOTATION_APPLIED_HASH in a.body["metadata"]["annotations"]
               for a in plan.actions)


def test_applied_objects_with_server_defaults_added_need_no_write() -> None:
    rendered = render([_policy("p")], [_workload("web")])
    cms, crons = _applied(rendered)
    for obj in cms + crons:
        obj["metadata"].update(uid="x", resourceVersion="7", creationTimestamp="t")
    crons[0]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"] = "ClusterFirst"
    assert _plan(rendered, cms, crons).actions == []


def test_a_configmap_edited_by_hand_is_patched_back() -> None:
    rendered = render([_policy("p")], [_workload("web")])
    cms, crons = _applied(rendered)
    cms[0]["data"]["policy.json"] = "{}"
    [action] = _plan(rendered, cms, crons).actions
    assert (action.verb, action.name) == ("patch", "curfew-deployment-web")
    assert action.body["data"]["policy.json"] == rendered.config_maps[0]["data"]["policy.json"]


def test_a_workload_no_longer_selected_loses_its_configmap() -> None:
    before = render([_policy("p")], [_workload("web"), _workload("api")])
    cms, crons = _applied(before)
    after = render([_policy("p")], [_workload("web"), _workload("api", team="blog")])
    actions = _plan(after, cms, crons).actions
    assert [(a.verb, a.name, a.workload) for a in actions if a.role == "config"] == [
        ("delete", "curfew-deployment-api", "Deployment/api")]
    # The purge config lists the workloads it judges, so it changes too.
    assert {(a.verb, a.role) for a in actions if a.role != "config"} == {
        ("patch", "purge-config"), ("patch", "cron-job")}


def test_an_invalid_policy_holds_the_configmaps_and_purge_objects_it_fed() -> None:
    before = render([_policy("p"), _policy("q", labels={"team": "blog"})],
                    [_workload("web"), _workload("blog", team="blog")])
    cms, crons = _applied(before)
    after = render([_policy("q", labels={"team": "blog"})],
                   [_workload("web"), _workload("blog", team="blog")])
    plan = _plan(after, cms, crons, invalid=("shop/p",))
    assert plan.actions == []
    assert plan.held_workloads == {"Deployment/web"}


def test_a_deleted_policy_loses_its_purge_objects() -> None:
    before = render([_policy("p"), _policy("q", labels={"team": "blog"})],
                    [_workload("web")])
    cms, crons = _applied(before)
    after = render([_policy("p")], [_workload("web")])
    actions = sorted((a.verb, a.role, a.name) for a in _plan(after, cms, crons).actions)
    assert actions == [("delete", "cron-job", "curfew-purge-q"),
                       ("delete", "purge-config", "curfew-purge-q")]


def test_objects_not_labelled_as_curfews_are_never_touched() -> None:
    rendered = render([_policy("p")], [])
    foreign = {"metadata": {"name": "curfew-deployment-x", "labels": {"app": "x"}}, "data": {}}
    assert all(a.verb == "create" for a in _plan(rendered, [foreign], []).actions)


def test_a_shorter_idle_timeout_is_tightening_and_a_longer_one_is_not() -> None:
    old = render([_policy("p", idle="30m")], [_workload("web")]).purge_config_maps[0]
    short = render([_policy("p", idle="20m")], [_workload("web")]).purge_config_maps[0]
    long = render([_policy("p", idle="40m")], [_workload("web")]).purge_config_maps[0]
    assert is_tightened(old, short)
    assert not is_tightened(old, long)
    assert not is_tightened(old, old)
    rendered = render([_policy("p", idle="20m")], [_workload("web")])
    before = render([_policy("p", idle="30m")], [_workload("web")])
    cms, crons = _applied(before)
    plan = _plan(rendered, cms, crons)
    assert plan.tightened == {"shop/p": "curfew-purge-p"}
    # The tightened config is written with the pending mark, in the same patch.
    (patch,) = [a.body for a in plan.actions if a.role == "purge-config"]
    assert patch is not None
    pending = patch["metadata"]["annotations"][ANNOTATION_PURGE_PENDING]
    assert pending == rendered.purge_configs["shop/p"].hash


def test_a_pending_purge_is_kept_until_cleared_and_never_makes_a_write_by_itself() -> None:
    rendered = render([_policy("p", idle="20m")], [_workload("web")])
    cms, crons = _applied(rendered)
    purge_cm = next(cm for cm in cms if cm["metadata"]["name"] == "curfew-purge-p")
    purge_cm["metadata"]["annotations"][ANNOTATION_PURGE_PENDING] = "sha256:abc"
    plan = _plan(rendered, cms, crons)
    assert plan.tightened == {"shop/p": "curfew-purge-p"}
    assert plan.actions == []
    # A later change to the config keeps the mark instead of removing it as a stale key.
    changed = render([_policy("p", idle="25m")], [_workload("web")])
    plan = _plan(changed, cms, crons)
    (patch,) = [a.body for a in plan.actions if a.role == "purge-config"]
    assert patch is not None
    assert ANNOTATION_PURGE_PENDING not in patch["metadata"].get("annotations", {})
    assert plan.tightened == {"shop/p": "curfew-purge-p"}


def test_the_merge_patch_removes_stale_curfew_keys_and_keeps_foreign_ones() -> None:
    current = {"metadata": {"labels": {"a": "1", "curfew.dev/old": "x", "team": "t"},
                            "annotations": {"kubectl.io/note": "keep"}},
               "data": {"policy.json": "{}", "extra": "1"}}
    desired = {"metadata": {"labels": {"a": "2"}, "annotations": {}},
               "data": {"policy.json": json.dumps({"x": 1})}}
    patch = build_merge_patch(current, copy.deepcopy(desired))
    assert patch == {"metadata": {"labels": {"a": "2", "curfew.dev/old": None}},
                     "data": {"policy.json": '{"x": 1}', "extra": None}}


def test_stamping_copies_the_metadata_and_leaves_the_rendered_object_as_it_was() -> None:
    rendered = render([_policy("p")], [_workload("web")])
    for obj in rendered.config_maps + rendered.purge_config_maps + rendered.cron_jobs:
        before = copy.deepcopy(obj)
        stamped = build_stamped(obj)
        stamped["metadata"]["annotations"][ANNOTATION_PURGE_PENDING] = "sha256:x"
        stamped["metadata"]["labels"] = {}
        assert obj == before
        assert stamped["metadata"]["annotations"][ANNOTATION_APPLIED_HASH] == \
            build_applied_hash(obj)
