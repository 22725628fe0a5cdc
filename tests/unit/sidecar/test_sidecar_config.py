"""The sidecar's settings and its config watcher, on real files (no servers)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from curfew.api.config import UnifiedConfig
from curfew.sidecar.reload import ConfigError, ConfigWatcher, load_policy
from curfew.sidecar.settings import INSECURE_DEV_KEY, SidecarSettings, parse_host_port
from fixtures.policy_docs import policy_doc

KEY = "unit-test-session-key-0123456789"


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("0.0.0.0:8080", ("0.0.0.0", 8080)), (":9469", ("0.0.0.0", 9469)),
     ("[::1]:8080", ("::1", 8080)), ("127.0.0.1:0", ("127.0.0.1", 0))],
)
def test_listen_addresses_parse(text: str, parsed: tuple[str, int]) -> None:
    assert parse_host_port(text) == parsed


@pytest.mark.parametrize("text", ["8080", "host:", "host:http", "host:70000"])
def test_bad_listen_addresses_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not HOST:PORT"):
        parse_host_port(text)


def _settings(**values: Any) -> SidecarSettings:
    base: dict[str, Any] = {"config": "policy.json", "upstream": "http://127.0.0.1:3000",
                            "redis_url": "redis://127.0.0.1:6379/0", "session_key": KEY}
    base.update(values)
    return SidecarSettings(**base)


def test_environment_variables_fill_the_store_url_and_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://store:6379/0")
    monkeypatch.setenv("CURFEW_SESSION_KEY", KEY)
    monkeypatch.setenv("CURFEW_SIDECAR_MODE", "authz")
    settings = SidecarSettings(config=Path("policy.json"))
    assert settings.redis_url is not None
    assert settings.redis_url.get_secret_value() == "redis://store:6379/0"
    assert settings.key_bytes == KEY.encode()
    assert settings.mode == "authz"
    assert "store:6379" not in repr(settings), "the URL (and any password in it) is a secret"


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"session_key": None}, "CURFEW_SESSION_KEY is not set"),
        ({"session_key": "short"}, "at least 16 bytes"),
        ({"redis_url": None}, "--redis-url or set REDIS_URL"),
        ({"upstream": None}, "proxy mode needs --upstream"),
        ({"upstream": "127.0.0.1:3000"}, "is not an http:// or https:// URL"),
        ({"authz_path_prefix": "authz"}, "must start with /"),
    ],
)
def test_incomplete_settings_are_refused_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, values: dict[str, Any], says: str
) -> None:
    for name in ("REDIS_URL", "CURFEW_SESSION_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValidationError, match=says):
        _settings(**values)


def test_the_insecure_dev_key_is_only_used_when_asked_for() -> None:
    assert _settings(session_key=None, insecure_dev_key=True).key_bytes == INSECURE_DEV_KEY
    assert _settings(insecure_dev_key=True).key_bytes == KEY.encode()


def _sealed(**sections: Any) -> str:
    return UnifiedConfig.model_validate(policy_doc(**sections)).sealed().to_json()


def _swap(root: Path, generation: int, text: str) -> None:
    """Publish ``policy.json`` the way kubelet does: a new directory, then swap ``..data``."""
    new = root / f"..gen{generation}"
    new.mkdir()
    (new / "policy.json").write_text(text)
    os.symlink(new.name, root / "..tmp")
    os.replace(root / "..tmp", root / "..data")
    if not (root / "policy.json").is_symlink():
        os.symlink("..data/policy.json", root / "policy.json")


def test_the_watcher_follows_a_symlink_swap_and_keeps_the_last_good_config(
    tmp_path: Path,
) -> None:
    _swap(tmp_path, 1, _sealed())
    path = tmp_path / "policy.json"
    changes: list[tuple[str, str | None]] = []
    watcher = ConfigWatcher(path, load_policy(path),
                            on_change=lambda p, e: changes.append((p.hash, e)))
    first = watcher.policy.hash
    assert watcher.poll() is False, "nothing changed yet"

    _swap(tmp_path, 2, _sealed(enforcement="Audit"))
    assert watcher.poll() is True
    assert watcher.policy.config.enforcement == "Audit"
    second = watcher.policy.hash
    assert second != first

    _swap(tmp_path, 3, json.dumps(policy_doc(timeouts={"idleSeconds": 0})))
    assert watcher.poll() is False
    assert watcher.policy.hash == second
    assert watcher.error is not None
    assert "timeouts.idleSeconds" in watcher.error
    assert watcher.poll() is False, "a rejected file is not re-read until it changes"

    _swap(tmp_path, 4, _sealed(enforcement="Audit"))
    assert watcher.poll() is False, "the config in force again: nothing to reload"
    assert watcher.error is None, "but the rejection no longer stands"
    _swap(tmp_path, 5, _sealed())
    assert watcher.poll() is True
    assert watcher.policy.hash == first
    assert [e is None for _, e in changes] == [True, False, True, True]


def test_a_missing_or_unreadable_config_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.json: cannot read"):
        load_policy(tmp_path / "missing.json")
    bad = tmp_path / "policy.json"
    bad.write_text(_sealed().replace('"idleSeconds": 900', '"idleSeconds": 60'))
    with pytest.raises(ConfigError, match="hash does not match"):
        load_policy(bad)
