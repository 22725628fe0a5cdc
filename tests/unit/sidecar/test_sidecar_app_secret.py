"""The sidecar's app cookie secrets: read from CURFEW_APP_SECRET only, required by a config
that references them, and never quoted in an error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from itsdangerous import Signer
from pydantic import ValidationError
from tests.fixtures.policy_docs import policy_doc

from curfew.sessions.codec import express_sign
from curfew.sidecar.reload import ConfigError, ConfigWatcher, load_policy
from curfew.sidecar.settings import SidecarSettings

ID = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
EXPRESS_STORE = {"format": "connect-redis", "keyPrefix": "sess:",
                 "redisSecretRef": {"name": "sessions-redis", "key": "url"},
                 "sessionKeySecretRef": {"name": "sessions-redis", "key": "session-key"},
                 "appSecretRef": {"name": "shop-cookies", "key": "cookie-secret"}}


def _write(tmp_path: Path, store: dict[str, object]) -> Path:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(policy_doc(store=store, session={"cookieName": "connect.sid"})))
    return path


def _settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secret: str) -> SidecarSettings:
    monkeypatch.setenv("CURFEW_APP_SECRET", secret)
    return SidecarSettings(config=tmp_path / "policy.json", upstream="http://127.0.0.1:1",
                           redis_url="redis://127.0.0.1:1", session_key="k" * 32)


def test_the_app_secrets_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(tmp_path, monkeypatch, '["new secret", "old secret"]')
    assert settings.app_secrets == (b"new secret", b"old secret")
    policy = load_policy(_write(tmp_path, EXPRESS_STORE), app_secrets=settings.app_secrets)
    signed_by_old = "s:" + express_sign(ID, b"old secret")
    assert policy.codec.app_id(signed_by_old, cookie=True) == ID
    assert policy.codec.app_id("s:" + express_sign(ID, b"other"), cookie=True) is None


def test_a_flask_session_config_verifies_ids_with_the_secret_keys_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(tmp_path, monkeypatch, "new SECRET_KEY\nold SECRET_KEY\n")
    store = {**EXPRESS_STORE, "format": "flask-session", "keyPrefix": "session:"}
    policy = load_policy(_write(tmp_path, store), app_secrets=settings.app_secrets)
    sid = "A" * 43
    signed_by_old = Signer("old SECRET_KEY", salt="flask-session", key_derivation="hmac")
    assert policy.codec.app_id(signed_by_old.sign(sid).decode(), cookie=True) == sid
    assert policy.codec.app_id(sid, cookie=True) is None, "unsigned: no session"
    with pytest.raises(ConfigError, match="appSecretRef is set but CURFEW_APP_SECRET is not"):
        load_policy(_write(tmp_path, store))


def test_unreadable_app_secrets_are_refused_without_quoting_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValidationError) as error:
        _settings(tmp_path, monkeypatch, '["hunter2", ')
    assert "CURFEW_APP_SECRET starts with [ but is no JSON list" in str(error.value)
    assert "hunter2" not in str(error.value.errors(include_input=False))


def test_a_config_referencing_app_secrets_is_refused_without_them(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="appSecretRef is set but CURFEW_APP_SECRET is not"):
        load_policy(_write(tmp_path, EXPRESS_STORE))


def test_without_a_reference_the_secrets_verify_nothing(tmp_path: Path) -> None:
    store = {k: v for k, v in EXPRESS_STORE.items() if k != "appSecretRef"}
    policy = load_policy(_write(tmp_path, store), app_secrets=(b"keyboard cat",))
    assert policy.codec.app_id("s:" + ID + ".forged", cookie=True) == ID


def test_a_reloaded_config_that_now_references_secrets_keeps_the_old_one_without_them(
    tmp_path: Path,
) -> None:
    store = {k: v for k, v in EXPRESS_STORE.items() if k != "appSecretRef"}
    path = _write(tmp_path, store)
    watcher = ConfigWatcher(path, load_policy(path))
    _write(tmp_path, EXPRESS_STORE)
    assert watcher.poll() is False
    assert watcher.error is not None
    assert "CURFEW_APP_SECRET" in watcher.error
