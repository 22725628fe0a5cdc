"""``curfew purge --help`` and ``curfew sidecar --help`` name the environment the process needs
and every other variable it reads, and only variables it really reads."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from pydantic_settings import BaseSettings, EnvSettingsSource

from curfew.purge.settings import PurgeSettings
from curfew.sidecar.settings import SidecarSettings

COMMANDS: dict[str, type[BaseSettings]] = {"purge": PurgeSettings, "sidecar": SidecarSettings}
_VARIABLE = re.compile(r"^ {2}([A-Z][A-Z0-9_]+)\b", re.MULTILINE)


def _help(command: str) -> str:
    done = subprocess.run([sys.executable, "-m", "curfew", command, "--help"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _section(text: str, name: str) -> str:
    """The lines of one part of the environment section: ``needed:`` or ``optional:``."""
    after = text.split("\nenvironment (a flag wins over its variable):\n", 1)[1]
    needed, _, optional = after.partition("\noptional:\n")
    return needed.removeprefix("needed:\n") if name == "needed" else optional


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_the_help_names_the_session_key_and_its_length_and_the_store_url_as_needed(
    command: str,
) -> None:
    needed = _section(_help(command), "needed")
    assert _VARIABLE.findall(needed) == (
        ["REDIS_URL", "CURFEW_SESSION_KEY"] if command == "purge"
        else ["CURFEW_SESSION_KEY", "REDIS_URL"]
    )
    assert "at least 16 bytes" in " ".join(needed.split())
    assert "--redis-url" in needed


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_variable_the_help_names_is_read_and_every_setting_is_named(
    command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = COMMANDS[command]
    named = _VARIABLE.findall(_help(command).split("\nenvironment", 1)[1])
    assert len(named) == len(set(named))
    for variable in list(named):
        monkeypatch.delenv(variable, raising=False)
    read: set[str] = set()
    for variable in named:
        # pydantic-settings' own environment source says which field, if any, it fills.
        with monkeypatch.context() as env:
            env.setenv(variable, "1")
            found = EnvSettingsSource(settings)()
        assert len(found) == 1, f"{variable} is named in --help but read as {found}"
        read |= found.keys()
    # --config is a required flag: no variable can stand in for it.
    assert read == set(settings.model_fields) - {"config"}


def test_a_variable_named_only_in_the_help_would_be_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CURFEW_SIDECAR_NO_SUCH_SETTING", "1")
    assert EnvSettingsSource(SidecarSettings)() == {}
