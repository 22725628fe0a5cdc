"""The webhook's settings come from CURFEW_INJECTION_*; a wrong one stops `curfew operator` with
one line naming it, before anything starts."""

from __future__ import annotations

import pytest

from curfew.cli import main
from curfew.operator.settings import InjectionWebhookSettings


def test_the_sidecar_settings_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CURFEW_INJECTION_ENABLED", "true")
    monkeypatch.setenv("CURFEW_INJECTION_OPS_PORT", "9555")
    monkeypatch.setenv("CURFEW_INJECTION_RESOURCES", '{"requests": {"cpu": 1}}')
    settings = InjectionWebhookSettings()
    assert settings.enabled is True
    sidecar = settings.sidecar()
    assert sidecar.ops_port == 9555
    assert sidecar.resources == {"requests": {"cpu": 1}}


@pytest.mark.parametrize(("name", "value", "named"), [
    ("CURFEW_INJECTION_PORT", "https", "CURFEW_INJECTION_PORT"),
    ("CURFEW_INJECTION_IMAGE_PULL_POLICY", "Sometimes", "CURFEW_INJECTION_IMAGE_PULL_POLICY"),
    ("CURFEW_INJECTION_RESOURCES", "{not json", "resources"),
], ids=["a port that is not a number", "an unknown pull policy", "resources that are not JSON"])
def test_a_wrong_setting_stops_the_operator_with_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    name: str, value: str, named: str,
) -> None:
    monkeypatch.setenv(name, value)
    assert main(["operator"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("curfew operator: invalid settings:")
    assert named in err
    assert "Traceback" not in err
