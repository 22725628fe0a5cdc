"""Errors raised by Curfew's pure layers when their input is wrong.

The tree::

    ValueError
     └── CurfewInputError          input that no retry will fix; the message names the field
          ├── InvalidPolicy        a SessionPolicy that breaks the schema or a cross-field rule
          └── InvalidWorkload      an object render cannot read as a workload
    ValueError
     └── DurationError             (curfew.api.durations) a string that is not a sane duration

Callers translate them at one boundary: the CLI prints one line and exits 1, the operator marks
the policy ``Ready=False`` and stops retrying.
"""

from __future__ import annotations


class CurfewInputError(ValueError):
    """Input that no retry will fix. ``errors`` holds one ``field.path: message`` line each."""

    def __init__(self, errors: list[str] | tuple[str, ...] | str) -> None:
        self.errors: tuple[str, ...] = (errors,) if isinstance(errors, str) else tuple(errors)
        super().__init__("; ".join(self.errors))


class InvalidPolicy(CurfewInputError):
    """A SessionPolicy that breaks the schema or a cross-field rule."""


class InvalidWorkload(CurfewInputError):
    """An object that is not a workload render understands, or lacks the fields it needs."""
