"""The operator's settings: every field documented, environment variables honoured."""

from __future__ import annotations

import pytest

from curfew.operator import OperatorSettings


def test_every_setting_has_a_description() -> None:
    missing = [n for n, f in OperatorSettings.model_fields.items() if not f.description]
    assert missing == []


def test_settings_come_from_curfew_operator_environment_variables(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CURFEW_OPERATOR_NAMESPACES", '["shop", "admin"]')
    monkeypatch.setenv("CURFEW_OPERATOR_STANDALONE", "true")
    monkeypatch.setenv("CURFEW_OPERATOR_METRICS_PORT", "0")
    settings = OperatorSettings()
    assert settings.namespaces == ["shop", "admin"]
    assert settings.standalone is True
    assert settings.metrics_port == 0
