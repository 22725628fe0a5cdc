"""``curfew operator`` rejects bad settings in one line; logs are one JSON object per line."""

from __future__ import annotations

import json
import logging

import pytest

from curfew.cli import main
from curfew.operator.runner import JsonFormatter


def test_an_invalid_setting_is_one_line_naming_it_and_exit_code_2(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CURFEW_OPERATOR_RESYNC_SECONDS", "-5")
    assert main(["operator", "--standalone"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "resync_seconds" in err


def test_missing_credentials_are_one_line_and_exit_code_1(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: object) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert main(["operator", "--kubeconfig", f"{tmp_path}/absent.yaml"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("curfew operator: no Kubernetes credentials:")


def test_a_log_line_is_one_json_object_with_the_actions_fields() -> None:
    record = logging.makeLogRecord({
        "name": "curfew.operator", "levelno": logging.INFO, "levelname": "INFO",
        "msg": "created %s", "args": ("ConfigMap shop/x",), "verb": "create", "kind": "ConfigMap",
    })
    line = JsonFormatter().format(record)
    doc = json.loads(line)
    assert "\n" not in line
    assert doc["message"] == "created ConfigMap shop/x"
    assert (doc["verb"], doc["kind"], doc["level"]) == ("create", "ConfigMap", "INFO")
