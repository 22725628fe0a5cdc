"""``curfew demo`` settings and its policy: the documented defaults, one-line errors for bad
flags, and a policy that the sidecar accepts with the client enabled."""

from __future__ import annotations

import pytest

from curfew.cli import main
from curfew.demo.main import DemoSettings, build_demo_config
from curfew.sidecar.policy import build_policy


def test_the_demo_policy_defaults_to_idle_30s_absolute_3m_and_a_15s_warning() -> None:
    config = build_demo_config(DemoSettings())
    assert config.timeouts.idle_seconds == 30
    assert config.timeouts.absolute_seconds == 180
    assert config.timeouts.warning_lead_seconds == 15
    assert config.client.enabled
    assert config.reauthentication.login_url == "/login"
    assert config.hash == config.compute_hash()
    policy = build_policy(config)
    assert policy.cookie_name == "demo_session"


def test_durations_are_given_the_go_way() -> None:
    settings = DemoSettings(idle="1m30s", absolute="1h", warning_lead="20s")  # type: ignore[arg-type]
    config = build_demo_config(settings)
    assert config.timeouts.idle_seconds == 90
    assert config.timeouts.absolute_seconds == 3600


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--idle", "5s", "--warning-lead", "5s"], "--warning-lead: 5s must be shorter than idle"),
        (["--idle", "10m"], "--idle: 10m must not exceed absolute (3m)"),
        (["--idle", "soon"], "--idle:"),
        (["--port", "70000"], "--port:"),
        (
            ["--store", "embedded", "--redis-url", "redis://127.0.0.1:1/0"],
            "--store: embedded contradicts --redis-url",
        ),
    ],
)
def test_a_bad_flag_is_one_line_naming_it_and_exit_1(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("curfew demo: ")
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err
