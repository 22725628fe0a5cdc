"""render: the ConfigMap contract, the purge CronJob, ownership, hashing and determinism."""

import json
import random

import pytest
import yaml
from render_samples import policy, workload

from curfew.api import InvalidPolicy, InvalidWorkload, PurgeConfig, UnifiedConfig, WorkloadId
from curfew.render import RenderSettings, render

WEB = WorkloadId(kind="Deployment", namespace="shop", name="web")


def _serialise(objects: list[dict]) -> str:
    return yaml.safe_dump_all(objects, sort_keys=False)


def test_the_same_inputs_in_any_order_give_byte_identical_output() -> None:
    policies = [
        policy("a", created="2024-01-01T00:00:00Z"),
        policy("b", selector={}, idle="5m", created="2024-01-01T00:00:00Z"),
        policy("c", namespace="admin", selector={}, idle="2m", absolute="1h"),
    ]
    workloads = [
        workload("web", uid="1"), workload("api", labels={"app": "api"}, uid="2"),
        workload("db", kind="StatefulSet", uid="3"), workload("tool", namespace="admin"),
    ]
    expected = _serialise(render(policies, workloads).objects)
    rng = random.Random(7)
    for _ in range(20):
        rng.shuffle(policies)
        rng.shuffle(workloads)
        assert _serialise(render(policies, workloads).objects) == expected


def test_the_config_map_follows_the_unified_config_contract() -> None:
    rendered = render([policy(uid="p-1")], [workload(uid="w-1")])
    [cm] = rendered.config_maps
    meta = cm["metadata"]
    assert meta["labels"] == {
        "app.kubernetes.io/managed-by": "curfew",
        "curfew.dev/workload-kind": "Deployment",
        "curfew.dev/workload-name": "web",
    }
    doc = json.loads(cm["data"]["policy.json"])
    assert doc["schemaVersion"] == 1
    assert doc["workload"] == {"kind": "Deployment", "namespace": "shop", "name": "web"}
    assert doc["sources"] == ["shop/storefront"]
    assert doc["timeouts"]["idleSeconds"] == 900
    assert doc["store"]["redisSecretRef"] == {"name": "sessions-redis", "key": "url"}
    assert meta["annotations"]["curfew.dev/config-hash"] == doc["hash"]
    assert UnifiedConfig.model_validate(doc) == rendered.configs[WEB]


def test_the_config_map_is_owned_by_its_workload_when_the_workload_has_a_uid() -> None:
    [cm] = render([policy()], [workload(uid="w-1")]).config_maps
    assert cm["metadata"]["ownerReferences"] == [{
        "apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "w-1",
        "controller": False, "blockOwnerDeletion": False,
    }]
    [unowned] = render([policy()], [workload()]).config_maps
    assert "ownerReferences" not in unowned["metadata"]


def test_a_long_workload_name_is_kept_whole_in_an_annotation() -> None:
    name = "w" * 100
    [cm] = render([policy()], [workload(name)]).config_maps
    assert len(cm["metadata"]["labels"]["curfew.dev/workload-name"]) <= 63
    assert cm["metadata"]["annotations"]["curfew.dev/workload-name"] == name


def test_the_hash_covers_the_document_so_equal_configs_hash_equal_and_changes_show() -> None:
    first = render([policy()], [workload()]).configs[WEB]
    again = render([policy()], [workload()]).configs[WEB]
    changed = render([policy(idle="14m")], [workload()]).configs[WEB]
    assert first.hash == again.hash == first.compute_hash()
    assert first.hash.startswith("sha256:")
    assert changed.hash != first.hash


def test_the_redis_url_never_appears_in_any_object_only_the_secret_reference() -> None:
    text = _serialise(render([policy()], [workload()]).objects)
    assert "redis://" not in text
    assert "sessions-redis" in text


def test_each_policy_gets_one_purge_cron_job_running_curfew_purge_with_its_config() -> None:
    rendered = render([policy(uid="p-1"), policy("other", selector={})], [workload()])
    assert [c["metadata"]["name"] for c in rendered.cron_jobs] == [
        "curfew-purge-other", "curfew-purge-storefront",
    ]
    job = rendered.cron_jobs[1]
    assert job["metadata"]["ownerReferences"][0]["uid"] == "p-1"
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["restartPolicy"] == "Never"
    [container] = pod["containers"]
    assert container["args"] == ["purge", "--config", "/etc/curfew/purge.json"]
    assert container["volumeMounts"] == [
        {"name": "config", "mountPath": "/etc/curfew", "readOnly": True}
    ]
    assert pod["volumes"] == [{"name": "config", "configMap": {"name": "curfew-purge-storefront"}}]
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert env == {
        "REDIS_URL": {"name": "sessions-redis", "key": "url"},
        "CURFEW_SESSION_KEY": {"name": "sessions-redis", "key": "session-key"},
    }
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_the_purge_schedule_suspend_and_image_come_from_the_policy_and_settings() -> None:
    p = policy(purge={"schedule": "@hourly", "suspend": True, "maxPurgePercent": 20})
    rendered = render([p], [], settings=RenderSettings(image="registry.local/curfew:dev"))
    [job] = rendered.cron_jobs
    assert job["spec"]["schedule"] == "@hourly"
    assert job["spec"]["suspend"] is True
    container = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.local/curfew:dev"
    assert rendered.purge_configs["shop/storefront"].purge.max_purge_fraction == 0.2


def test_audit_enforcement_reaches_the_purge_config() -> None:
    rendered = render([policy(enforcement="Audit")], [workload()])
    [cm] = rendered.purge_config_maps
    doc = PurgeConfig.model_validate_json(cm["data"]["purge.json"])
    assert doc.enforcement == "Audit"
    assert cm["metadata"]["annotations"]["curfew.dev/config-hash"] == doc.hash


def test_a_policy_given_twice_is_rejected() -> None:
    with pytest.raises(InvalidPolicy, match="shop/storefront is given twice"):
        render([policy(), policy()], [])


def test_a_workload_given_twice_is_rejected() -> None:
    with pytest.raises(InvalidWorkload, match="Deployment/shop/web is given twice"):
        render([policy()], [workload(), workload()])


def test_an_object_that_is_not_a_workload_is_rejected_naming_its_kind() -> None:
    with pytest.raises(InvalidWorkload, match="'ReplicaSet' is not one of"):
        render([], [workload(kind="ReplicaSet")])


def test_workloads_under_the_same_policies_get_each_the_config_built_for_it_alone() -> None:
    # render builds one config per set of policies and copies it per workload: each copy must
    # be exactly the config build_unified_config makes for that workload, hash included.
    from curfew.render import build_unified_config, workload_id

    policies = [policy("a"), policy("b", selector={}, idle="5m")]
    workloads = [workload(f"w{i}", uid=str(i)) for i in range(5)]
    workloads += [workload("x", labels={"app": "other"}, uid="x")]
    rendered = render(policies, workloads)
    parsed = {p.key: p for p in policies}
    for obj in workloads:
        wid = workload_id(obj)
        config = rendered.configs[wid]
        alone = build_unified_config(wid, [parsed[k] for k in config.sources])
        assert config == alone
        assert config.hash == alone.compute_hash()
    assert len({c.hash for c in rendered.configs.values()}) == len(workloads)
