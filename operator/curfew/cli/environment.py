"""The "environment" section of a subcommand's ``--help``: the variables it needs, then every
other variable its settings object reads, named and described from that object so the help
cannot drift from what the process reads."""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Mapping

from pydantic import AliasChoices
from pydantic_settings import BaseSettings

_WIDTH = 79
_INDENT = 2


def env_name(settings: type[BaseSettings], field: str) -> str:
    """The variable ``field`` is read from: its upper-case alias (``REDIS_URL``), else the
    settings' prefix and its name (``CURFEW_SIDECAR_LISTEN``)."""
    alias = settings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        for choice in alias.choices:
            if isinstance(choice, str) and choice.isupper():
                return choice
    return f"{settings.model_config.get('env_prefix', '')}{field}".upper()


def _entry(name: str, notes: list[str], text: str) -> str:
    head = f"{name} ({', '.join(notes)})" if notes else name
    return textwrap.fill(text, _WIDTH, initial_indent=" " * _INDENT + head + ": ",
                         subsequent_indent=" " * (_INDENT * 3))


def environment_help(
    settings: type[BaseSettings],
    needed: Mapping[str, str],
    *,
    flags: Mapping[str, str],
    skip: tuple[str, ...] = (),
) -> str:
    """``needed``: field -> why it is needed; ``flags``: field -> the flag that also sets it;
    ``skip``: fields only a required flag sets."""
    lines = ["environment (a flag wins over its variable):", "needed:"]
    for field, text in needed.items():
        notes = [f"or {flags[field]}"] if field in flags else []
        lines.append(_entry(env_name(settings, field), notes, text))
    lines.append("optional:")
    for field, info in settings.model_fields.items():
        if field in needed or field in skip:
            continue
        notes = [flags[field]] if field in flags else []
        if info.default not in (None, "", False):
            notes.append(f"default {info.default}")
        lines.append(_entry(env_name(settings, field), notes, info.description or ""))
    return "\n".join(lines)


def add_environment_help(parser: argparse.ArgumentParser, text: str) -> None:
    """Put ``text`` after the options, its line breaks kept."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = text
