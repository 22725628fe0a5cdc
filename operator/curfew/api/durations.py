"""Go-style durations (``90s``, ``15m``, ``1h30m``, ``500ms``), as Kubernetes and CEL write them.

A :class:`Duration` holds an exact number of nanoseconds, so parsing and formatting round-trip
without floating-point drift. Only positive durations up to :data:`MAX_DURATION` are accepted:
a session timeout of zero, a negative one, or one of years is a typo, not a policy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

NANOSECOND = 1
MICROSECOND = 1_000 * NANOSECOND
MILLISECOND = 1_000 * MICROSECOND
SECOND = 1_000 * MILLISECOND
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR

MAX_DURATION = 366 * DAY
"""Longest duration accepted anywhere in a policy."""

MAX_TEXT = 64
"""Longest duration string accepted (the CRD's maxLength, which bounds its CEL rules' cost)."""

_UNITS = {"ns": NANOSECOND, "us": MICROSECOND, "µs": MICROSECOND, "ms": MILLISECOND,
          "s": SECOND, "m": MINUTE, "h": HOUR}

# Mirrored by the CRD's `pattern`: one or more <number><unit> terms, nothing else.
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"
_TERM = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")
_WHOLE = re.compile(DURATION_PATTERN)

ALLOWED = "a Go duration such as 90s, 15m, 1h30m or 500ms (units h, m, s, ms, us, ns)"


class DurationError(ValueError):
    """A string that is not an acceptable duration; the message says what is allowed."""


@dataclass(frozen=True, order=True, slots=True)
class Duration:
    """A positive span of time, exact to the nanosecond."""

    nanoseconds: int

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Parse a Go-style duration, rejecting anything that is not positive and sane."""
        if not isinstance(text, str):
            raise DurationError(f"expected {ALLOWED}, got {type(text).__name__}")
        raw = text
        if not raw.strip():
            raise DurationError(f"empty duration: expected {ALLOWED}")
        if raw.startswith("-"):
            raise DurationError(f"negative duration {text!r}: durations must be positive")
        if len(raw) > MAX_TEXT:
            raise DurationError(f"duration {text[:20]!r}... is longer than {MAX_TEXT} characters")
        if not _WHOLE.fullmatch(raw):
            raise DurationError(f"invalid duration {text!r}: expected {ALLOWED}")
        total = Decimal(0)
        for number, unit in _TERM.findall(raw):
            total += Decimal(number) * _UNITS[unit]
        if total != total.to_integral_value():
            raise DurationError(f"invalid duration {text!r}: finer than one nanosecond")
        nanos = int(total)
        if nanos <= 0:
            raise DurationError(f"zero duration {text!r}: durations must be positive")
        if nanos > MAX_DURATION:
            raise DurationError(f"duration {text!r} is longer than the maximum of 366 days (8784h)")
        return cls(nanos)

    @classmethod
    def of_seconds(cls, seconds: float) -> Duration:
        """The duration of ``seconds`` (rounded to the nanosecond)."""
        return cls(round(Decimal(str(seconds)) * SECOND))

    @property
    def seconds(self) -> float:
        """Length in seconds: an ``int`` when whole, else a ``float``."""
        whole, rest = divmod(self.nanoseconds, SECOND)
        return whole if rest == 0 else self.nanoseconds / SECOND

    def __str__(self) -> str:
        """Canonical form: ``1h30m``, ``1m30s``, ``1.5s``, ``500ms`` (zero components omitted)."""
        n = self.nanoseconds
        if n < SECOND:
            for unit, size in (("ms", MILLISECOND), ("us", MICROSECOND)):
                if n >= size:
                    return _decimal(n, size) + unit
            return f"{n}ns"
        hours, n = divmod(n, HOUR)
        minutes, n = divmod(n, MINUTE)
        out = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
        if n:
            out += _decimal(n, SECOND) + "s"
        return out

    def __repr__(self) -> str:
        return f"Duration({str(self)!r})"

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        def validate(value: Any) -> Duration:
            if isinstance(value, Duration):
                return value
            return cls.parse(value)

        return core_schema.no_info_plain_validator_function(
            validate, serialization=core_schema.plain_serializer_function_ser_schema(str)
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "pattern": DURATION_PATTERN}


def _decimal(n: int, size: int) -> str:
    whole, rest = divmod(n, size)
    if not rest:
        return str(whole)
    digits = len(str(size)) - 1
    return f"{whole}.{rest:0{digits}d}".rstrip("0")
