"""The php-redis codec: which PHPSESSID values are PHP's session ids, the key each names, and
how a policy's php-redis store reaches the sidecar and the purge (``store.appTTL``)."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from curfew.api import InvalidPolicy, SessionPolicy, parse_policy
from curfew.api.config import ConfigStore
from curfew.purge.target import build_target
from curfew.render.resolve import build_config_store
from curfew.sessions.codec import PHP_ID_PATTERN, build_codec
from fixtures.purge import purge_config

PHP = build_codec("php-redis", "PHPREDIS_SESSION:")


def policy(*, store: dict[str, object]) -> SessionPolicy:
    return parse_policy({
        "apiVersion": "curfew.dev/v1alpha1", "kind": "SessionPolicy",
        "metadata": {"name": "storefront", "namespace": "shop"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "timeouts": {"idle": "15m", "absolute": "8h"}, "store": store},
    })


@pytest.mark.parametrize(
    ("case", "value", "app_id"),
    [
        ("PHP 8.2's built-in default: 32 of 0-9a-f",
         "4a7f5395384e64bc8be87e0bdff2de13", "4a7f5395384e64bc8be87e0bdff2de13"),
        ("Debian's php.ini: 26 of 0-9a-v", "bc3s1er1oe2gtaa0pmril1hj4o",
         "bc3s1er1oe2gtaa0pmril1hj4o"),
        ("six bits per character bring capitals, comma and hyphen",
         "64u8Z8ZnlaU4,qCN-OZSMntmkRlmQ2dQf42Vyc7c", "64u8Z8ZnlaU4,qCN-OZSMntmkRlmQ2dQf42Vyc7c"),
        ("the shortest sid_length PHP allows, 22", "a" * 22, "a" * 22),
        ("the longest, 256", "a" * 256, "a" * 256),
        ("21 characters is shorter than PHP makes", "a" * 21, None),
        ("257 characters is longer than PHP makes", "a" * 257, None),
        ("phpredis's lock key is no session", "bc3s1er1oe2gtaa0pmril1hj4o_LOCK", None),
        ("a colon would reach another key of the app", "bc3s1er1oe2gtaa0pmril1hj4o:x", None),
        ("a dot is no id character", "bc3s1er1oe2gtaa0pmril1hj4o.x", None),
        ("a space is no id character", "bc3s1er1oe2gtaa0 pmril1hj4o", None),
        ("a glob star is no id character", "*" * 26, None),
        ("an empty value is no session", "", None),
    ],
)
def test_a_phpsessid_value_is_a_php_id_only_if_php_could_have_made_it(
    case: str, value: str, app_id: str | None
) -> None:
    assert PHP.app_id(value, cookie=True) == app_id, case
    assert PHP.app_id(value, cookie=False) == app_id, case


def test_a_php_id_names_phpredis_key_removed_by_the_php_script() -> None:
    key = PHP.app_key("bc3s1er1oe2gtaa0pmril1hj4o")
    assert key is not None
    assert key.key == "PHPREDIS_SESSION:bc3s1er1oe2gtaa0pmril1hj4o"
    assert key.types == ("string",)
    assert key.remover == "delete_php_session"
    assert build_codec("php-redis", "app:sess:").app_key("a" * 22).key == "app:sess:" + "a" * 22


def test_each_format_names_its_own_removal_script() -> None:
    for fmt, remover in (("spring-session", "delete_spring_session"),
                         ("connect-redis", "delete_if_unrenewed"),
                         ("django", "delete_if_unrenewed"),
                         ("flask-session", "delete_if_unrenewed"),
                         ("generic", "delete_app_session")):
        key = build_codec(fmt, "p:").app_key("0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9")
        assert key is not None
        assert key.remover == remover, fmt


def test_an_id_pattern_narrows_php_ids_to_the_apps_settings() -> None:
    codec = build_codec("php-redis", "PHPREDIS_SESSION:", r"[0-9a-v]{26}")
    assert codec.app_id("bc3s1er1oe2gtaa0pmril1hj4o", cookie=True) is not None
    assert codec.app_id("4a7f5395384e64bc8be87e0bdff2de13", cookie=True) is None


@given(st.text(alphabet="0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ,-",
               min_size=22, max_size=256))
def test_every_id_php_can_generate_is_a_session(value: str) -> None:
    assert PHP.app_id(value, cookie=True) == value


@given(st.text(min_size=1, max_size=300))
def test_no_php_id_holds_a_character_php_never_writes(value: str) -> None:
    found = PHP.app_id(value, cookie=True)
    assert found is None or re.fullmatch(r"[0-9A-Za-z,-]{22,256}", found)
    assert PHP_ID_PATTERN == r"[0-9A-Za-z,-]{22,256}"


def test_a_php_redis_store_renders_phps_lifetime_and_grammar() -> None:
    store = build_config_store(policy(store={"redisSecretRef": {"name": "r"},
                                             "format": "php-redis"}).spec.store)
    assert store.key_prefix == "PHPREDIS_SESSION:"
    assert store.app_ttl_seconds == 1440, "PHP's default session.gc_maxlifetime"
    assert store.id_pattern == PHP_ID_PATTERN
    stated = build_config_store(policy(store={"redisSecretRef": {"name": "r"},
                                              "format": "php-redis", "appTTL": "2h"}).spec.store)
    assert stated.app_ttl_seconds == 7200


def test_the_other_formats_configs_carry_no_app_ttl_at_all() -> None:
    store = build_config_store(policy(store={"redisSecretRef": {"name": "r"},
                                             "format": "connect-redis"}).spec.store)
    assert store.app_ttl_seconds is None
    assert "appTTLSeconds" not in json.loads(store.model_dump_json(by_alias=True))


def test_an_app_ttl_for_a_format_without_a_ttl_clock_is_refused() -> None:
    with pytest.raises(InvalidPolicy, match=r"appTTL: only for formats .*php-redis, not generic"):
        policy(store={"redisSecretRef": {"name": "r"}, "format": "generic", "appTTL": "24m"})
    with pytest.raises(InvalidPolicy, match="appTTL: must be between 1s and 8784h"):
        policy(store={"redisSecretRef": {"name": "r"}, "format": "php-redis", "appTTL": "999ms"})


def test_the_purge_target_of_a_php_redis_store_has_its_clock_and_grammar() -> None:
    doc = purge_config(format="php-redis", key_prefix="PHPREDIS_SESSION:")
    target = build_target(doc)
    assert target.app_ttl_ms == 1_440_000, "unstated: PHP's default"
    assert target.id_pattern == PHP_ID_PATTERN
    store = ConfigStore.model_validate({**doc.store.model_dump(by_alias=True),
                                        "appTTLSeconds": 90})
    assert build_target(doc.model_copy(update={"store": store})).app_ttl_ms == 90_000
    assert build_target(purge_config(format="connect-redis", key_prefix="sess:")).app_ttl_ms \
        is None
