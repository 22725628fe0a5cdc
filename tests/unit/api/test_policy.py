"""The SessionPolicy model: cross-field rules, their messages, and compliance checks."""

from __future__ import annotations

from typing import Any

import pytest

from curfew.api import InvalidPolicy, check_compliance, parse_policy


def obj(timeouts: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "curfew.dev/v1alpha1",
        "kind": "SessionPolicy",
        "metadata": {"name": "p", "namespace": "shop"},
        "spec": {
            "selector": {},
            "timeouts": timeouts or {"idle": "15m", "absolute": "8h"},
            "store": {"redisSecretRef": {"name": "sessions-redis"}},
            **spec,
        },
    }


@pytest.mark.parametrize(
    ("policy", "error"),
    [
        (obj({"idle": "2h", "absolute": "1h"}),
         "spec.timeouts.idle: 2h must not exceed absolute (1h)"),
        (obj({"idle": "500ms", "absolute": "1h"}),
         "spec.timeouts.idle: must be at least 1s, got 500ms"),
        (obj({"idle": "15m", "absolute": "1h", "renewal": "2h"}),
         "spec.timeouts.renewal: 2h must not exceed absolute (1h)"),
        (obj({"idle": "15m", "absolute": "1h", "warningLead": "15m"}),
         "spec.timeouts.warningLead: 15m must be shorter than idle (15m)"),
        (obj(session={"cookieName": "a", "header": "Authorization"}),
         "spec.session: set exactly one of cookieName or header"),
        (obj(session={"cookieName": "a", "headerPrefix": "Bearer "}),
         "spec.session.headerPrefix: needs header to be set"),
        (obj(selector={"matchExpressions": [{"key": "a", "operator": "In"}]}),
         "spec.selector.matchExpressions[0].values: operator In needs at least one value"),
        (obj(selector={"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}),
         "spec.selector.matchExpressions[0].values: operator Exists takes no values"),
        (obj(priority=5000), "spec.priority: Input should be less than or equal to 1000"),
        (obj(selector={"matchLabels": {"bad key!": "x"}}),
         "spec.selector.matchLabels: invalid label key 'bad key!'"),
        (obj(timeouts={"idle": "15m"}), "spec.timeouts.absolute: Field required"),
        (obj(extra=True), "spec.extra: Extra inputs are not permitted"),
    ],
    ids=[
        "idle longer than absolute names idle", "an idle under a second names idle",
        "a renewal longer than absolute names renewal",
        "a warning lead as long as idle names warningLead",
        "cookie and header together name the session", "a header prefix alone names itself",
        "In without values names values", "Exists with values names values",
        "an out-of-range priority names priority", "an invalid label key names its map",
        "a missing timeout names it",
        "an unknown field names it",
    ],
)
def test_an_invalid_policy_is_rejected_with_one_line_naming_the_field_path(
    policy: dict[str, Any], error: str
) -> None:
    with pytest.raises(InvalidPolicy) as caught:
        parse_policy(policy)
    assert caught.value.errors == (error,)
    assert str(caught.value) == error


def test_a_missing_selector_is_an_error_while_an_empty_one_is_valid() -> None:
    spec = obj()["spec"]
    del spec["selector"]
    with pytest.raises(InvalidPolicy, match=r"^spec\.selector: Field required$"):
        parse_policy({**obj(), "spec": spec})
    assert parse_policy(obj(selector={})).spec.selector.match_labels == {}


def test_something_that_is_not_a_mapping_is_rejected_with_what_it_was() -> None:
    with pytest.raises(InvalidPolicy, match="expected a mapping, got list"):
        parse_policy([])  # type: ignore[arg-type]


def test_defaults_fill_every_optional_field() -> None:
    spec = parse_policy(obj()).spec
    assert (spec.priority, spec.enforcement, spec.failure_policy) == (0, "Enforce", "Fail")
    assert spec.session.cookie_name == "session"
    assert spec.activity.exclude_methods == ["OPTIONS", "HEAD"]
    assert spec.store.effective_key_prefix == "curfew:"
    assert (spec.purge.schedule, spec.purge.max_purge_percent) == ("*/5 * * * *", 50)


@pytest.mark.parametrize(
    ("profile", "idle", "absolute", "violations"),
    [
        ("pci-dss-4.0", "15m", "24h", []),
        ("pci-dss-4.0", "16m", "24h", ["pci-dss-4.0: timeouts.idle 16m exceeds 15m"]),
        ("nist-800-63b-aal2", "1h", "24h", []),
        ("nist-800-63b-aal2", "61m", "25h", [
            "nist-800-63b-aal2: timeouts.idle 1h1m exceeds 1h",
            "nist-800-63b-aal2: timeouts.absolute 25h exceeds 24h",
        ]),
        ("nist-800-63b-aal3", "15m", "12h", []),
        ("nist-800-63b-aal3", "15m", "13h", [
            "nist-800-63b-aal3: timeouts.absolute 13h exceeds 12h",
        ]),
        ("owasp-high-value", "5m", "8h", []),
        ("owasp-high-value", "6m", "8h", ["owasp-high-value: timeouts.idle 6m exceeds 5m"]),
    ],
    ids=[
        "PCI allows 15 minutes idle", "PCI rejects 16 minutes idle",
        "AAL2 allows 1h idle and 24h absolute", "AAL2 rejects 61m idle and 25h absolute",
        "AAL3 allows 15m idle and 12h absolute", "AAL3 rejects 13h absolute",
        "OWASP high-value allows 5m idle", "OWASP high-value rejects 6m idle",
    ],
)
def test_compliance_reports_each_limit_a_policy_exceeds(
    profile: str, idle: str, absolute: str, violations: list[str]
) -> None:
    policy = parse_policy(obj({"idle": idle, "absolute": absolute},
                              compliance={"profiles": [profile]}))
    assert [str(v) for v in check_compliance(policy)] == violations
