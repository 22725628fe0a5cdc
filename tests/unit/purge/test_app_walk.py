"""``purge.appWalk``: from the policy to the config documents to what a purge run does."""

import json

import pytest
from pydantic import ValidationError

from curfew.api import parse_policy
from curfew.api.config import ConfigPurge, PurgeConfig
from curfew.api.policy import Purge
from curfew.purge.target import build_target
from curfew.render.resolve import build_config_purge
from fixtures.purge import purge_config

POLICY = {
    "apiVersion": "curfew.dev/v1alpha1",
    "kind": "SessionPolicy",
    "metadata": {"name": "storefront", "namespace": "shop"},
    "spec": {
        "selector": {},
        "timeouts": {"idle": "15m", "absolute": "8h"},
        "store": {"redisSecretRef": {"name": "r"}, "format": "connect-redis",
                  "keyPrefix": "sess:"},
    },
}


def test_the_walk_is_on_unless_the_policy_turns_it_off() -> None:
    assert parse_policy(POLICY).spec.purge.app_walk == "Scan"
    doc = {**POLICY, "spec": {**POLICY["spec"], "purge": {"appWalk": "IndexOnly"}}}
    assert parse_policy(doc).spec.purge.app_walk == "IndexOnly"


@pytest.mark.parametrize("value", ["Off", "off", "indexonly", False, ""])
def test_an_app_walk_outside_the_enum_is_refused(value: object) -> None:
    with pytest.raises(ValidationError):
        Purge(app_walk=value)  # type: ignore[arg-type]


def test_the_default_leaves_the_config_documents_and_their_hashes_as_they_were() -> None:
    default = build_config_purge(Purge())
    assert default == ConfigPurge(max_purge_fraction=0.5)
    assert "appWalk" not in default.model_dump(by_alias=True, exclude_none=False)
    assert build_config_purge(Purge(app_walk="IndexOnly")).model_dump(by_alias=True) == {
        "maxPurgeFraction": 0.5, "appWalk": "IndexOnly"}


def test_a_purge_json_with_index_only_turns_the_walk_off_and_survives_a_round_trip() -> None:
    doc = purge_config(format="connect-redis", key_prefix="sess:", app_walk="IndexOnly")
    again = PurgeConfig.model_validate(json.loads(doc.to_json()))
    assert again.hash == doc.hash
    assert build_target(again).app_walk is False
    assert build_target(purge_config(format="connect-redis", key_prefix="sess:")).app_walk
