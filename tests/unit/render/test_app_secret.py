"""connect-redis's store options: the app's cookie secret reaches the sidecar (and only it) by
a Secret reference, and the store's ttl reaches the purge config."""

from __future__ import annotations

from typing import Any

import pytest
from render_samples import policy

from curfew.api import InvalidPolicy
from curfew.api.config import WorkloadId
from curfew.render import render
from curfew.render.injection import InjectionSettings, build_sidecar_container
from curfew.render.resolve import build_unified_config

EXPRESS_STORE: dict[str, Any] = {
    "redisSecretRef": {"name": "sessions-redis"},
    "format": "connect-redis",
    "appSecretRef": {"name": "shop-cookies"},
    "appTTL": "1h",
}


def _workload() -> WorkloadId:
    return WorkloadId(kind="Deployment", namespace="shop", name="web")


def test_the_sidecar_gets_the_app_secret_from_its_secret_reference() -> None:
    config = build_unified_config(_workload(), [policy(store=EXPRESS_STORE)])
    container = build_sidecar_container(
        config, {"containerPort": 3000}, 3001, InjectionSettings())
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert env["CURFEW_APP_SECRET"] == {"name": "shop-cookies", "key": "cookie-secret"}
    assert all("value" not in e for e in container["env"])
    assert config.store.app_secret_ref is not None
    assert config.store.app_ttl_seconds == 3600


def test_without_an_app_secret_reference_the_sidecar_gets_no_app_secret() -> None:
    config = build_unified_config(_workload(), [policy()])
    container = build_sidecar_container(
        config, {"containerPort": 3000}, 3001, InjectionSettings())
    assert "CURFEW_APP_SECRET" not in {e["name"] for e in container["env"]}


def test_the_purge_job_never_gets_the_app_secret_but_knows_the_store_ttl() -> None:
    rendered = render([policy(store=EXPRESS_STORE)], [])
    [job] = rendered.cron_jobs
    [container] = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert {e["name"] for e in container["env"]} == {"REDIS_URL", "CURFEW_SESSION_KEY"}
    [purge] = rendered.purge_configs.values()
    assert purge.store.app_ttl_seconds == 3600


@pytest.mark.parametrize(
    ("case", "store", "message"),
    [
        ("an app secret for another format", {"format": "spring-session",
                                               "appSecretRef": {"name": "x"}},
         "appSecretRef: only for formats connect-redis and flask-session"),
        ("a store ttl for another format", {"appTTL": "1h"},
         "appTTL: only for formats connect-redis"),
        ("a store ttl under a second", {"format": "connect-redis", "appTTL": "500ms"},
         "appTTL: must be between 1s and 8784h"),
        ("an app secret with an invalid Secret name",
         {"format": "connect-redis", "appSecretRef": {"name": "Not_A_Name"}},
         "invalid Secret name"),
    ],
)
def test_express_options_elsewhere_or_out_of_range_are_refused(
    case: str, store: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidPolicy, match=message):
        policy(store={"redisSecretRef": {"name": "sessions-redis"}, **store})
