"""The django and flask-session store sections of a SessionPolicy, as the operator renders them
into the unified config and the purge job reads them back."""

from __future__ import annotations

from typing import Any

import pytest

from curfew.api import InvalidPolicy, parse_policy
from curfew.api.config import ConfigSecretRef, ConfigStore
from curfew.purge.target import build_target
from curfew.render.resolve import build_config_store
from fixtures.purge import purge_config


def policy(**store: Any) -> dict[str, Any]:
    return {
        "apiVersion": "curfew.dev/v1alpha1", "kind": "SessionPolicy",
        "metadata": {"name": "shop", "namespace": "shop"},
        "spec": {"selector": {}, "timeouts": {"idle": "15m", "absolute": "8h"},
                 "store": {"redisSecretRef": {"name": "r"}, **store}},
    }


@pytest.mark.parametrize(
    ("fmt", "prefix", "pattern"),
    [
        ("django", ":1:django.contrib.sessions.cache", "[a-z0-9]{32}"),
        ("flask-session", "session:", "[A-Za-z0-9_-]{43}"),
    ],
)
def test_each_python_format_renders_its_own_prefix_and_grammar(
    fmt: str, prefix: str, pattern: str
) -> None:
    store = build_config_store(parse_policy(policy(format=fmt)).spec.store)
    assert (store.format, store.key_prefix, store.id_pattern) == (fmt, prefix, pattern)
    assert store.app_ttl_seconds is None


def test_the_apps_session_ttl_reaches_the_purge_in_milliseconds() -> None:
    spec = parse_policy(policy(format="django", appTTL="336h",
                               keyPrefix="shop:3:django.contrib.sessions.cached_db")).spec
    store = build_config_store(spec.store)
    assert store.app_ttl_seconds == 336 * 3600
    doc = purge_config(format="django", key_prefix=store.key_prefix)
    doc = doc.model_copy(update={"store": store, "hash": ""}).sealed()
    assert '"appTTLSeconds": 1209600' in doc.to_json()
    target = build_target(doc)
    assert target.app_ttl_ms == 1_209_600_000
    assert target.id_pattern == "[a-z0-9]{32}"


def test_an_unset_session_ttl_leaves_the_document_and_its_hash_as_before() -> None:
    refs = {"redis_secret_ref": ConfigSecretRef(name="r", key="url"),
            "session_key_secret_ref": ConfigSecretRef(name="r", key="k")}
    store = ConfigStore(format="generic", key_prefix="session:", **refs)
    assert "appTTLSeconds" not in store.model_dump(mode="json", by_alias=True)


@pytest.mark.parametrize("value", ["0s", "-1s", "fortnight"])
def test_a_session_ttl_that_is_no_positive_duration_is_refused(value: str) -> None:
    with pytest.raises(InvalidPolicy, match=r"spec\.store\.appTTL"):
        build_config_store(parse_policy(policy(format="flask-session",
                                               appTTL=value)).spec.store)


def test_an_app_ttl_for_a_format_without_a_ttl_clock_is_refused() -> None:
    with pytest.raises(InvalidPolicy, match=r"appTTL: only for formats connect-redis, django"):
        build_config_store(parse_policy(policy(format="spring-session",
                                               appTTL="1h")).spec.store)
