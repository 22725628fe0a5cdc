"""Purge schedules and time zones as the Kubernetes API server reads a CronJob's: a table of
expressions it accepts and rejects (robfig/cron v3's standard parser, the TZ check, the time
zone checks of pkg/apis/batch/validation), each with the reason Curfew gives."""

from __future__ import annotations

import re
from typing import Any

import pytest

from curfew.api import InvalidPolicy, parse_policy
from curfew.api.schedule import check_schedule, check_time_zone

VALID_SCHEDULES = [
    ("every minute", "* * * * *"),
    ("every five minutes", "*/5 * * * *"),
    ("a step larger than the range runs once an hour, as robfig reads it", "*/60 * * * *"),
    ("a start with a step runs from the start to the field's end", "5/15 * * * *"),
    ("a range with a step", "0 9-17/2 * * *"),
    ("a one-value range", "5-5 * * * *"),
    ("lists in several fields", "0 0 1,15 * 1-5"),
    ("month and weekday names in capitals", "0 0 * JAN-MAR MON-FRI"),
    ("month and weekday names in lower case", "0 0 * jul-dec sun"),
    ("a weekday range with a step", "0 0 * * 0-6/2"),
    ("the 29th of February, which leap years have", "0 0 29 2 *"),
    ("the 31st in a list with a month that has one", "0 0 31 4,5 *"),
    ("a tab between fields", "0\t0 * * *"),
    ("leading zeros", "00 03 * * *"),
    ("@yearly", "@yearly"),
    ("@annually", "@annually"),
    ("@monthly", "@monthly"),
    ("@weekly", "@weekly"),
    ("@daily", "@daily"),
    ("@midnight", "@midnight"),
    ("@hourly", "@hourly"),
]

INVALID_SCHEDULES = [
    ("a minute of 99 is out of range", "99 * * * *", "minute field '99' is not valid"),
    ("an hour of 24 is out of range", "0 24 * * *", "hour field '24' is not valid"),
    ("a day of month of 0 is out of range", "0 0 0 * *", "day of month field '0' is not valid"),
    ("a month of 13 is out of range", "0 0 * 13 *", "month field '13' is not valid"),
    ("a day of week of 7 is out of robfig's range", "0 0 * * 7",
     "day of week field '7': above the maximum 6"),
    ("a weekday range ending at 7 is out of robfig's range", "0 0 * * MON-7",
     "day of week field 'MON-7': above the maximum 6"),
    ("a reversed range", "5-1 * * * *", "minute field '5-1' is not valid"),
    ("a zero step", "*/0 * * * *", "minute field '*/0' is not valid"),
    ("two steps", "*/5/2 * * * *", "minute field '*/5/2' is not valid"),
    ("two hyphens", "1-5-7 * * * *", "minute field '1-5-7' is not valid"),
    ("an unknown month name", "0 0 * FOO *", "month field 'FOO' is not valid"),
    ("a weekday name spelt out", "0 0 * * MONDAY", "day of week field 'MONDAY' is not valid"),
    ("four fields", "0 0 * *", "expected exactly 5 fields, found 4"),
    ("six fields (cronsim would read seconds)", "0 0 * * * *",
     "expected exactly 5 fields, found 6"),
    ("an empty schedule", "", "expected exactly 5 fields, found 1"),
    ("L for the last day", "0 0 L * *", "L, W and # are not part of Kubernetes' cron grammar"),
    ("W for the nearest weekday", "0 0 15W * *", "L, W and # are not part of"),
    ("# for the nth weekday", "0 0 * * 5#2", "L, W and # are not part of"),
    ("L for the last weekday", "0 0 * * 5L", "L, W and # are not part of"),
    ("a question mark", "0 0 ? * *", "write * instead of ?"),
    ("digits of another script", "\u0665 * * * *", "minute field '\u0665': unexpected character"),
    ("a CRON_TZ prefix", "CRON_TZ=UTC 0 * * * *", "cannot use TZ or CRON_TZ in schedule"),
    ("a TZ prefix", "TZ=Europe/Paris 0 3 * * *", "cannot use TZ or CRON_TZ in schedule"),
    ("@every", "@every 5m", "@every is not supported"),
    ("an unknown macro", "@fortnightly", "unrecognized descriptor: @fortnightly"),
    ("a macro in capitals", "@HOURLY", "unrecognized descriptor: @HOURLY"),
    ("a macro with a trailing space", "@daily ", "unrecognized descriptor"),
    ("a leading space", " 0 * * * *", "must not start or end with white space"),
    ("a trailing newline", "0 * * * *\n", "must not start or end with white space"),
    ("the 30th of February never occurs", "0 0 30 2 *", "never runs"),
    ("the 31st of April and June never occurs", "0 0 31 4,6 *", "never runs"),
]


@pytest.mark.parametrize(("case", "schedule"), VALID_SCHEDULES,
                         ids=[c for c, _ in VALID_SCHEDULES])
def test_a_schedule_the_api_server_accepts_is_valid(case: str, schedule: str) -> None:
    assert check_schedule(schedule) == schedule, case


@pytest.mark.parametrize(("case", "schedule", "reason"), INVALID_SCHEDULES,
                         ids=[c for c, _, _ in INVALID_SCHEDULES])
def test_a_schedule_outside_kubernetes_grammar_is_invalid_with_its_reason(
        case: str, schedule: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        check_schedule(schedule)


VALID_ZONES = ["UTC", "Europe/Paris", "America/Argentina/Buenos_Aires", "Etc/GMT+5", "EST5EDT",
               "America/Port-au-Prince"]
INVALID_ZONES = [
    ("an empty zone", "", "timeZone must be unset or a non-empty string"),
    ("Local", "Local", "must be an explicit time zone"),
    ("local in lower case", "local", "must be an explicit time zone"),
    ("a misspelt zone", "Europe/Pariss", "unknown time zone Europe/Pariss"),
    ("a zone in lower case", "europe/paris", "unknown time zone europe/paris"),
    ("a path climbing out of the database", "../../etc/passwd", "unknown time zone"),
    ("an absolute path", "/etc/localtime", "unknown time zone"),
    ("an empty component", "Europe//Paris", "unknown time zone"),
    ("a component starting with a hyphen", "-UTC", "unknown time zone"),
    ("a component over 14 characters", "America/Argentinaaaaaaaaa", "unknown time zone"),
    ("a POSIX rule instead of a name", "CET-1CEST,M3.5.0,M10.5.0/3", "unknown time zone"),
    ("a space", "Europe/ Paris", "unknown time zone"),
]


@pytest.mark.parametrize("zone", VALID_ZONES)
def test_an_iana_zone_is_a_valid_time_zone(zone: str) -> None:
    assert check_time_zone(zone) == zone


@pytest.mark.parametrize(("case", "zone", "reason"), INVALID_ZONES,
                         ids=[c for c, _, _ in INVALID_ZONES])
def test_a_zone_the_api_server_rejects_is_invalid_with_its_reason(
        case: str, zone: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        check_time_zone(zone)


def _policy(**purge: Any) -> dict[str, Any]:
    return {"apiVersion": "curfew.dev/v1alpha1", "kind": "SessionPolicy",
            "metadata": {"name": "p", "namespace": "shop"},
            "spec": {"selector": {}, "timeouts": {"idle": "15m", "absolute": "8h"},
                     "store": {"redisSecretRef": {"name": "sessions-redis"}}, "purge": purge}}


def test_a_bad_schedule_in_a_policy_names_the_field_path() -> None:
    with pytest.raises(InvalidPolicy) as caught:
        parse_policy(_policy(schedule="99 * * * *"))
    assert caught.value.errors == (
        "spec.purge.schedule: minute field '99' is not valid (allowed: 0-59, *, lists a,b, "
        "ranges a-b, steps */n or a-b/n)",)


def test_a_bad_time_zone_in_a_policy_names_the_field_path() -> None:
    with pytest.raises(InvalidPolicy) as caught:
        parse_policy(_policy(timeZone="Mars/Olympus_Mons"))
    assert caught.value.errors == ("spec.purge.timeZone: unknown time zone Mars/Olympus_Mons",)


def test_a_policy_keeps_its_time_zone() -> None:
    policy = parse_policy(_policy(schedule="0 3 * * *", timeZone="Europe/Paris"))
    assert policy.spec.purge.time_zone == "Europe/Paris"
