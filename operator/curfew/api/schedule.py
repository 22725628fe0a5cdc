"""Cron schedules and time zones exactly as the Kubernetes API server accepts them on a CronJob.

The API server parses ``spec.schedule`` with robfig/cron v3's standard parser (five fields,
``@hourly``-style macros) and rejects any schedule containing ``TZ`` (``TZ=`` / ``CRON_TZ=``
prefixes: ``spec.timeZone`` replaces them); it loads ``spec.timeZone`` from the IANA database
after a check of each path component. cronsim parses the five fields; the few checks below are
where robfig's grammar is narrower than cronsim's (cronsim also reads a sixth field of seconds,
``L``, ``W``, ``#`` and a day of week 7), so nothing passes here that the API server rejects.

Curfew is stricter than the API server in a few places, each rejected with its reason:
``@every`` (not a wall-clock schedule, and outside the five-field grammar), ``?`` (robfig reads
it as ``*``: write ``*``), white space around the schedule (the CRD's pattern refuses it too),
and dates that never occur (``0 0 30 2 *`` would never run).
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import datetime
from typing import Final

from cronsim import CronSim, CronSimError

MACROS: Final = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
"""The macros robfig's standard parser knows (``@every`` aside)."""

FIELDS: Final = ("minute", "hour", "day of month", "month", "day of week")
_RANGES: Final = ("0-59", "0-23", "1-31", "1-12 or JAN-DEC", "0-6 or SUN-SAT")
# Go's strings.Fields splits on Unicode white space; RE2's \s (the CRD pattern) is ASCII only.
_SEPARATOR: Final = re.compile(r"[ \t\n\v\f\r]+")
_NUMBER: Final = re.compile(r"[0-9]+")
# ASCII only: Python's int() (inside cronsim) also reads other scripts' digits, Go's does not.
_CHARACTERS: Final = re.compile(r"[0-9A-Za-z*,/-]+")
_NAMES: Final = re.compile("JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC|"
                           "SUN|MON|TUE|WED|THU|FRI|SAT")
# The API server's check of each component of a zone name, before it loads the zone.
_ZONE_PART: Final = re.compile(r"[A-Za-z.\-_0-9+]{1,14}")
_REFERENCE: Final = datetime(2000, 1, 1)
# Each field is parsed on its own within a schedule that is valid around it, so an error names
# the field.
_PROBE: Final = ("0", "0", "*", "*", "*")


def check_schedule(schedule: str) -> str:
    """``schedule`` if the API server and the CronJob controller read it as Curfew does.

    Raises :class:`ValueError` saying what is wrong, in the API server's words where it has them.
    """
    if "TZ" in schedule:
        raise ValueError("cannot use TZ or CRON_TZ in schedule, use timeZone instead")
    if schedule.startswith("@every"):
        raise ValueError("@every is not supported: use five fields, e.g. */5 * * * *")
    if schedule.startswith("@"):
        if schedule not in MACROS:
            raise ValueError(f"unrecognized descriptor: {schedule} (known: {', '.join(MACROS)})")
        return schedule
    if schedule != schedule.strip():
        raise ValueError("must not start or end with white space")
    fields = _SEPARATOR.split(schedule)
    if len(fields) != len(FIELDS):
        raise ValueError(f"expected exactly 5 fields, found {len(fields)}: {schedule}")
    for name, allowed, text in zip(FIELDS, _RANGES, fields, strict=True):
        if "?" in text:
            raise ValueError(f"{name} field {text!r}: write * instead of ?")
        if re.search(r"[LW#]", _NAMES.sub("", text.upper())):
            raise ValueError(f"{name} field {text!r}: L, W and # are not part of Kubernetes' "
                             f"cron grammar")
        if not _CHARACTERS.fullmatch(text):
            raise ValueError(f"{name} field {text!r}: unexpected character")
        if name == "day of week" and any(int(n) > 6 for n in _values(text)):
            raise ValueError(f"{name} field {text!r}: above the maximum 6 (use 0 for Sunday)")
        probe = list(_PROBE)
        probe[FIELDS.index(name)] = text
        try:
            CronSim(" ".join(probe), _REFERENCE)
        except CronSimError:
            raise ValueError(f"{name} field {text!r} is not valid (allowed: {allowed}, *, "
                             f"lists a,b, ranges a-b, steps */n or a-b/n)") from None
    try:
        CronSim(schedule, _REFERENCE)
    except CronSimError:  # every field valid on its own, but a date that never occurs
        raise ValueError(f"{schedule!r} never runs: no month it names has that day") from None
    return schedule


def _values(field: str) -> list[str]:
    """The numbers a field names (not its steps)."""
    return [n for part in field.split(",") for n in _NUMBER.findall(part.split("/")[0])]


def check_time_zone(name: str) -> str:
    """``name`` if the API server accepts it as a CronJob's ``spec.timeZone``: an explicit IANA
    zone (not ``Local``) found in the time zone database.

    Raises :class:`ValueError` in the API server's words.
    """
    if not name:
        raise ValueError("timeZone must be unset or a non-empty string")
    for part in name.split("/"):
        if part in (".", "..") or part.startswith("-") or not _ZONE_PART.fullmatch(part):
            raise ValueError(f"unknown time zone {name}")
    if name.lower() == "local":
        raise ValueError("timeZone must be an explicit time zone as defined in "
                         "https://www.iana.org/time-zones")
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {name}") from None
    return name
