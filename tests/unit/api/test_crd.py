"""The CRD and the pydantic model agree: field by field, and on a table of sample objects that
the model, the CRD's schema (jsonschema) and its CEL rules (cel-python) accept or reject alike."""

from __future__ import annotations

import copy
import os
import re
import types
from typing import Any, Literal, Union, get_args, get_origin

import kubernetes_validate
import pytest
import yaml
from crd_harness import (
    CRD_PATH,
    CRD_PATHS,
    apply_defaults,
    cel_errors,
    load_crd,
    open_api_schema,
    schema_errors,
    write_descriptions,
)
from pydantic import BaseModel

from curfew.api import InvalidPolicy, SessionPolicySpec, SessionPolicyStatus, parse_policy
from curfew.api.durations import DURATION_PATTERN

REGENERATE = os.environ.get("CURFEW_REGENERATE_CRD") == "1"
CRD = load_crd()
SCHEMA = open_api_schema(CRD)
DELETE = object()

BASE: dict[str, Any] = {
    "apiVersion": "curfew.dev/v1alpha1",
    "kind": "SessionPolicy",
    "metadata": {"name": "storefront", "namespace": "shop"},
    "spec": {
        "selector": {"matchLabels": {"app.kubernetes.io/part-of": "storefront"}},
        "timeouts": {"idle": "15m", "absolute": "8h"},
        "store": {"redisSecretRef": {"name": "sessions-redis"}},
    },
}


def sample(**changes: Any) -> dict[str, Any]:
    """BASE with ``spec`` fields changed: ``timeouts__idle="1h"`` sets spec.timeouts.idle."""
    obj = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = obj["spec"]
        for part in parents:
            node = node.setdefault(part, {})
        if value is DELETE:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return obj


def expr(key: str, operator: str, values: list[str] | None = None) -> dict[str, Any]:
    term: dict[str, Any] = {"key": key, "operator": operator}
    if values is not None:
        term["values"] = values
    return term


FULL = {
    "selector": {
        "matchLabels": {"app": "web"},
        "matchExpressions": [expr("tier", "In", ["frontend"]), expr("canary", "DoesNotExist")],
    },
    "priority": 10,
    "enforcement": "Audit",
    "failurePolicy": "Ignore",
    "timeouts": {"idle": "15m", "absolute": "8h", "renewal": "1h", "warningLead": "2m"},
    "session": {"cookieName": "SESSION"},
    "activity": {"excludePaths": ["/healthz", "/api/*/poll"], "excludeMethods": ["OPTIONS"]},
    "reauthentication": {"loginURL": "https://login.example.com/", "returnToParameter": "next"},
    "store": {"redisSecretRef": {"name": "sessions-redis", "key": "url"},
              "sessionKeySecretRef": {"name": "curfew-key", "key": "hmac"},
              "format": "spring-session", "keyPrefix": "spring:session:",
              "idPattern": "[0-9a-f-]{36}"},
    "purge": {"schedule": "@hourly", "timeZone": "Europe/Paris", "suspend": True,
              "maxPurgePercent": 20},
    "compliance": {"profiles": ["pci-dss-4.0", "nist-800-63b-aal2"]},
    "client": {"enabled": True},
}

# (case, object, what rejects it: None (valid), the CRD's "schema", its "cel" rules, or the
# "model" alone)
CASES: list[tuple[str, dict[str, Any], str | None]] = [
    ("a minimal policy is valid", sample(), None),
    ("a policy setting every field is valid", {**BASE, "spec": FULL}, None),
    ("an empty selector is valid and selects everything", sample(selector={}), None),
    ("a header session with a prefix is valid",
     sample(session={"header": "Authorization", "headerPrefix": "Bearer "}), None),
    ("every selector operator is valid when used right",
     sample(selector={"matchExpressions": [expr("a", "In", ["x"]), expr("b", "NotIn", ["y"]),
                                           expr("c", "Exists"), expr("d", "DoesNotExist")]}),
     None),
    ("idle equal to absolute is valid", sample(timeouts__absolute="15m"), None),
    ("renewal equal to absolute is valid", sample(timeouts__renewal="8h"), None),
    ("a warning lead just under idle is valid", sample(timeouts__warningLead="14m59s"), None),
    ("an idle timeout of exactly one second is valid", sample(timeouts__idle="1s"), None),
    ("an absolute timeout of 366 days is valid", sample(timeouts__absolute="8784h"), None),
    ("compound and fractional durations are valid",
     sample(timeouts__idle="1h30m", timeouts__absolute="1.5h"), None),
    ("microseconds written with the micro sign are valid",
     sample(timeouts__idle="1000000µs", timeouts__absolute="1h"), None),
    ("a login path instead of a URL is valid",
     sample(reauthentication={"loginURL": "/login"}), None),
    ("the priority bounds are valid", sample(priority=-1000), None),
    ("a purge share of 100 percent is valid", sample(purge={"maxPurgePercent": 100}), None),
    ("an id pattern of the store's own is valid",
     sample(store__format="generic", store__idPattern=r"[a-v0-9]{32}"), None),
    ("a php-redis store with PHP's gc_maxlifetime is valid",
     sample(store__format="php-redis", store__appTTL="24m"), None),
    ("a php-redis store without appTTL is valid", sample(store__format="php-redis"), None),
    ("an appTTL of exactly one second is valid",
     sample(store__format="php-redis", store__appTTL="1s"), None),
    ("a schedule in a time zone is valid",
     sample(purge={"schedule": "0 3 * * MON-FRI", "timeZone": "Europe/Paris"}), None),
    ("express-session's secret and connect-redis's ttl are valid for connect-redis",
     sample(store__format="connect-redis", store__appSecretRef={"name": "shop-cookies"},
            store__appTTL="24h"), None),
    ("Flask's SECRET_KEY is valid for flask-session",
     sample(store__format="flask-session", store__appSecretRef={"name": "flask-secret"}), None),
    ("the lifetime Django gives its session keys is valid for django",
     sample(store__format="django", store__appTTL="336h"), None),
    ("the lifetime Flask gives its session keys is valid for flask-session",
     sample(store__format="flask-session", store__appTTL="744h"), None),
    # rejected by the schema
    ("a missing selector is invalid", sample(selector=DELETE), "schema"),
    ("a missing idle timeout is invalid", sample(timeouts__idle=DELETE), "schema"),
    ("a missing store is invalid", sample(store=DELETE), "schema"),
    ("a duration in words is invalid", sample(timeouts__idle="15 minutes"), "schema"),
    ("a negative duration is invalid", sample(timeouts__idle="-5m"), "schema"),
    ("an empty duration is invalid", sample(timeouts__idle=""), "schema"),
    ("a number without a unit is invalid", sample(timeouts__idle="15"), "schema"),
    ("a duration with a leading space is invalid", sample(timeouts__idle=" 15m"), "schema"),
    ("a label value ending in a newline is invalid",
     sample(selector={"matchLabels": {"app": "web\n"}}), "schema"),
    ("a schedule ending in a newline is invalid", sample(purge={"schedule": "@hourly\n"}),
     "schema"),
    ("a duration longer than 64 characters is invalid",
     sample(timeouts__absolute="1h" + "0s" * 32), "schema"),
    ("a day unit is invalid", sample(timeouts__absolute="1d"), "schema"),
    ("a lower-case enforcement is invalid", sample(enforcement="enforce"), "schema"),
    ("a misspelt field is invalid", sample(timeout={"idle": "1m"}), "schema"),
    ("a priority above 1000 is invalid", sample(priority=1001), "schema"),
    ("a purge share of 0 percent is invalid", sample(purge={"maxPurgePercent": 0}), "schema"),
    ("an unknown store format is invalid", sample(store__format="memcached"), "schema"),
    ("an unknown compliance profile is invalid",
     sample(compliance={"profiles": ["hipaa"]}), "schema"),
    ("an unknown selector operator is invalid",
     sample(selector={"matchExpressions": [expr("a", "Equals", ["x"])]}), "schema"),
    ("a label value over 63 characters is invalid",
     sample(selector={"matchLabels": {"app": "x" * 64}}), "schema"),
    ("a label key with spaces in an expression is invalid",
     sample(selector={"matchExpressions": [expr("my key", "Exists")]}), "schema"),
    ("a cookie name with a space is invalid", sample(session={"cookieName": "my session"}),
     "schema"),
    ("a lower-case HTTP method is invalid", sample(activity={"excludeMethods": ["get"]}), "schema"),
    ("a path not starting with a slash is invalid",
     sample(activity={"excludePaths": ["healthz"]}), "schema"),
    ("an ftp login URL is invalid", sample(reauthentication={"loginURL": "ftp://x/"}), "schema"),
    ("a return-to parameter with a space is invalid",
     sample(reauthentication={"returnToParameter": "return to"}), "schema"),
    ("an upper-case Secret name is invalid", sample(store__redisSecretRef={"name": "Redis"}),
     "schema"),
    ("an empty key prefix is invalid", sample(store__keyPrefix=""), "schema"),
    ("an id pattern over 256 characters is invalid",
     sample(store__idPattern="[a-z]" * 52), "schema"),
    ("an empty id pattern is invalid", sample(store__idPattern=""), "schema"),
    ("an appTTL in words is invalid",
     sample(store__format="php-redis", store__appTTL="24 minutes"), "schema"),
    ("a schedule in words is invalid", sample(purge={"schedule": "every 5 minutes"}), "schema"),
    ("a time zone component starting with a hyphen is invalid",
     sample(purge={"timeZone": "-UTC"}), "schema"),
    ("an @every schedule is invalid", sample(purge={"schedule": "@every 5m"}), "schema"),
    ("a time zone with a space is invalid", sample(purge={"timeZone": "Europe/ Paris"}), "schema"),
    ("a Spring header in base64 is valid",
     sample(session={"header": "X-Auth-Token", "idEncoding": "base64"},
            store__format="spring-session"), None),
    ("a raw Spring cookie is valid",
     sample(session={"cookieName": "SESSION", "idEncoding": "raw"},
            store__format="spring-session"), None),
    ("a raw id encoding of any format is valid",
     sample(session={"cookieName": "sid", "idEncoding": "raw"}), None),
    # rejected by the CEL rules
    ("an appTTL for a format that has no TTL clock is invalid",
     sample(store__format="generic", store__appTTL="24m"), "cel"),
    ("an appTTL under one second is invalid",
     sample(store__format="php-redis", store__appTTL="500ms"), "cel"),
    ("an appTTL over 366 days is invalid",
     sample(store__format="php-redis", store__appTTL="8785h"), "cel"),
    ("idle longer than absolute is invalid", sample(timeouts__idle="9h"), "cel"),
    ("an idle timeout under one second is invalid", sample(timeouts__idle="500ms"), "cel"),
    ("a zero idle timeout is invalid", sample(timeouts__idle="0s"), "cel"),
    ("an absolute timeout over 366 days is invalid",
     sample(timeouts__absolute="8785h"), "cel"),
    ("renewal longer than absolute is invalid", sample(timeouts__renewal="9h"), "cel"),
    ("a zero renewal is invalid", sample(timeouts__renewal="0s"), "cel"),
    ("a warning lead equal to idle is invalid", sample(timeouts__warningLead="15m"), "cel"),
    ("a zero warning lead is invalid", sample(timeouts__warningLead="0m"), "cel"),
    ("a session naming neither cookie nor header is invalid", sample(session={}), "cel"),
    ("a session naming both cookie and header is invalid",
     sample(session={"cookieName": "s", "header": "Authorization"}), "cel"),
    ("a header prefix without a header is invalid",
     sample(session={"cookieName": "s", "headerPrefix": "Bearer "}), "cel"),
    ("a base64 id encoding with a format other than spring-session is invalid",
     sample(session={"cookieName": "s", "idEncoding": "base64"}), "cel"),
    ("a base64 id encoding of a generic store is invalid",
     sample(session={"header": "X-Auth-Token", "idEncoding": "base64"},
            store__format="generic"), "cel"),
    ("In without values is invalid",
     sample(selector={"matchExpressions": [expr("a", "In", [])]}), "cel"),
    ("NotIn with no values field is invalid",
     sample(selector={"matchExpressions": [expr("a", "NotIn")]}), "cel"),
    ("Exists with values is invalid",
     sample(selector={"matchExpressions": [expr("a", "Exists", ["x"])]}), "cel"),
    ("an app secret for a format other than connect-redis and flask-session is invalid",
     sample(store__format="generic", store__appSecretRef={"name": "x"}), "cel"),
    ("an app secret without a format is invalid",
     sample(store__appSecretRef={"name": "x"}), "cel"),
    ("a store ttl for a format without a ttl clock is invalid",
     sample(store__appTTL="1h"), "cel"),
    ("a store ttl for spring-session is invalid",
     sample(store__format="spring-session", store__appTTL="1h"), "cel"),
    ("a store ttl under a second is invalid",
     sample(store__format="connect-redis", store__appTTL="999ms"), "cel"),
    # rejected by the model only: CEL cannot compile a regular expression
    ("an id pattern that does not compile is invalid", sample(store__idPattern="[a-z"),
     "model"),
    ("an id pattern that matches an empty id is invalid", sample(store__idPattern="[a-z]*"),
     "model"),
    ("an id pattern that matches a space is invalid", sample(store__idPattern=r"[\w ]+"),
     "model"),
    # rejected by the model only: a CEL rule over map keys would exceed the API server's cost
    # budget (their length cannot be bounded), so the operator reports it instead
    ("an invalid matchLabels key is invalid",
     sample(selector={"matchLabels": {"bad key!": "x"}}), "model"),
    # rejected by the model only: the API server answers 422 on the CronJob, so the operator
    # reports InvalidSpec instead of writing it (CEL has no cron parser nor time zone database)
    ("a minute of 99 is invalid", sample(purge={"schedule": "99 * * * *"}), "model"),
    ("a day of week of 7 is invalid", sample(purge={"schedule": "0 0 * * 7"}), "model"),
    ("a CRON_TZ prefix is invalid", sample(purge={"schedule": "CRON_TZ=UTC 0 * * *"}), "model"),
    ("a time zone climbing out of the database is invalid",
     sample(purge={"timeZone": "../etc/passwd"}), "model"),
    ("an unknown time zone is invalid", sample(purge={"timeZone": "Europe/Pariss"}), "model"),
    ("Local as a time zone is invalid", sample(purge={"timeZone": "Local"}), "model"),
    ("a label key prefix over 253 characters is invalid",
     sample(selector={"matchExpressions": [expr(("a" * 60 + ".") * 4 + "abcdefghijklm/x",
                                                "Exists")]}), "cel"),
]


def _model_accepts(obj: dict[str, Any]) -> bool:
    try:
        parse_policy(obj)
    except InvalidPolicy:
        return False
    return True


@pytest.mark.parametrize(("case", "obj", "rejected_by"), CASES, ids=[c[0] for c in CASES])
def test_the_model_the_schema_and_the_cel_rules_agree_on_each_sample(
    case: str, obj: dict[str, Any], rejected_by: str | None
) -> None:
    defaulted = apply_defaults(SCHEMA, obj)
    schema_errs = schema_errors(SCHEMA, defaulted)
    assert _model_accepts(obj) is (rejected_by is None), case
    assert bool(schema_errs) is (rejected_by == "schema"), schema_errs
    if rejected_by != "schema":
        # The API server reports CEL errors too, but only rules over schema-valid values are
        # meaningful: the CEL layer alone must make each cross-field decision.
        cel_errs = cel_errors(SCHEMA, defaulted)
        assert bool(cel_errs) is (rejected_by == "cel"), cel_errs


@pytest.mark.parametrize(("case", "obj"), [(c, o) for c, o, r in CASES if r is None],
                         ids=[c for c, _, r in CASES if r is None])
def test_the_crd_defaults_and_the_model_defaults_give_the_same_policy(
    case: str, obj: dict[str, Any]
) -> None:
    assert parse_policy(apply_defaults(SCHEMA, obj)) == parse_policy(obj), case


def test_an_invalid_policy_names_the_field_path_in_its_error() -> None:
    with pytest.raises(InvalidPolicy) as caught:
        parse_policy(sample(timeouts__idle="9h"))
    assert caught.value.errors == ("spec.timeouts.idle: 9h must not exceed absolute (8h)",)
    with pytest.raises(InvalidPolicy, match=r"^spec\.timeouts\.idle: invalid duration '15 m'"):
        parse_policy(sample(timeouts__idle="15 m"))


# --- field by field ------------------------------------------------------------------------


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _nested_model(arg)
        if found is not None:
            return found
    return None


def _literal(annotation: Any) -> tuple[Any, ...] | None:
    if get_origin(annotation) is Literal:
        return get_args(annotation)
    if get_origin(annotation) in (Union, types.UnionType, list):
        for arg in get_args(annotation):
            found = _literal(arg)
            if found is not None:
                return found
    return None


def _pairs(model: type[BaseModel], schema: dict[str, Any], path: str
           ) -> list[tuple[str, type[BaseModel], dict[str, Any]]]:
    out = [(path, model, schema)]
    for name, field in model.model_fields.items():
        nested = _nested_model(field.annotation)
        if nested is None:
            continue
        sub = schema["properties"][field.alias or name]
        out += _pairs(nested, sub.get("items", sub), f"{path}.{field.alias or name}")
    return out


PAIRS = (_pairs(SessionPolicySpec, SCHEMA["properties"]["spec"], "spec")
         + _pairs(SessionPolicyStatus, SCHEMA["properties"]["status"], "status"))


@pytest.mark.parametrize(("path", "model", "schema"), PAIRS, ids=[p for p, _, _ in PAIRS])
def test_each_crd_object_has_exactly_the_fields_and_required_fields_of_its_model(
    path: str, model: type[BaseModel], schema: dict[str, Any]
) -> None:
    aliases = {name: f.alias or name for name, f in model.model_fields.items()}
    assert set(schema["properties"]) == set(aliases.values()), path
    required = {aliases[n] for n, f in model.model_fields.items() if f.is_required()}
    assert set(schema.get("required", [])) == required, path
    for name, field in model.model_fields.items():
        prop = schema["properties"][aliases[name]]
        literal = _literal(field.annotation)
        if literal is not None:
            assert tuple(prop.get("enum", prop.get("items", {}).get("enum", ()))) == literal
        if _nested_model(field.annotation) is None and "Duration" in str(field.annotation):
            assert prop["pattern"] == DURATION_PATTERN, f"{path}.{aliases[name]}"


@pytest.mark.parametrize(("path", "model", "schema"), PAIRS, ids=[p for p, _, _ in PAIRS])
def test_each_crd_default_is_the_models_default(
    path: str, model: type[BaseModel], schema: dict[str, Any]
) -> None:
    for name, field in model.model_fields.items():
        prop = schema["properties"][field.alias or name]
        if field.is_required():
            continue
        default = field.get_default(call_default_factory=True)
        if default is None:
            assert "default" not in prop, f"{path}.{field.alias}"
            continue
        if "default" not in prop and default in ([], {}):
            continue  # absent and empty read the same, as in Kubernetes' own LabelSelector
        if "default" not in prop:
            # Status fields are written by the operator, never defaulted by the server.
            assert path.startswith("status"), f"{path}.{field.alias} has no default in the CRD"
            continue
        crd_default = apply_defaults(prop, {"v": prop["default"]}.get("v"))
        if isinstance(default, BaseModel):
            default = default.model_dump(mode="json", by_alias=True, exclude_none=True)
        assert crd_default == default, f"{path}.{field.alias}"


def test_every_field_of_the_crd_has_a_description() -> None:
    # What `kubectl explain sessionpolicy.spec...` prints for each field.
    missing: list[str] = []

    def walk(node: dict[str, Any], path: str) -> None:
        for name, sub in node.get("properties", {}).items():
            if not sub.get("description"):
                missing.append(f"{path}.{name}")
            walk(sub, f"{path}.{name}")
        if "items" in node:
            walk(node["items"], f"{path}[]")

    walk(SCHEMA, "")
    assert missing == []


def _node(path: tuple[str, ...]) -> dict[str, Any]:
    node = SCHEMA
    for part in path:
        node = node[part]
    return node


def _plain(text: str | None) -> str:
    return " ".join((text or "").split())


def model_descriptions() -> dict[tuple[str, ...], str]:
    """Each schema node's description as the model documents it: a field's description, and
    for ``spec`` and ``status`` their model's docstring."""
    out = {("properties", "spec"): _plain(SessionPolicySpec.__doc__),
           ("properties", "status"): _plain(SessionPolicyStatus.__doc__)}

    def walk(model: type[BaseModel], path: tuple[str, ...]) -> None:
        for name, field in model.model_fields.items():
            sub = (*path, "properties", field.alias or name)
            out[sub] = _plain(field.description)
            nested = _nested_model(field.annotation)
            if nested is not None:
                walk(nested, (*sub, "items") if "items" in _node(sub) else sub)

    walk(SessionPolicySpec, ("properties", "spec"))
    walk(SessionPolicyStatus, ("properties", "status"))
    return out


def test_every_field_of_the_model_has_a_description() -> None:
    missing = [".".join(p[1::2]) for p, text in model_descriptions().items() if not text]
    assert missing == []


def test_each_crd_description_is_the_models_field_description() -> None:
    # The model is the source: after editing a field's description, write it into both CRD
    # files with `CURFEW_REGENERATE_CRD=1 pytest tests/unit/api/test_crd.py` and review the diff.
    descriptions = model_descriptions()
    if REGENERATE:
        for path in CRD_PATHS:
            path.write_text(write_descriptions(path.read_text(), descriptions))
    written = open_api_schema(load_crd())
    differ = []
    for path, text in descriptions.items():
        node = written
        for part in path:
            node = node[part]
        if node.get("description") != text:
            differ.append(f"{'.'.join(path[1::2])}: {node.get('description')!r} != {text!r}")
    assert differ == []
    assert {p.read_text() for p in CRD_PATHS} == {CRD_PATHS[0].read_text()}


def test_the_description_writer_keeps_the_rest_of_the_crd_byte_for_byte() -> None:
    text = CRD_PATH.read_text()
    assert write_descriptions(text, {}) == text
    changed = write_descriptions(text, {("properties", "spec", "properties", "purge"): "Short.",
                                        ("properties", "spec", "properties", "selector"):
                                        "A description long enough to be folded: " + "x " * 60})
    after = open_api_schema(yaml.safe_load(changed))["properties"]["spec"]["properties"]
    assert after["purge"]["description"] == "Short."
    assert after["selector"]["description"] == "A description long enough to be folded: " + \
        " ".join(["x"] * 60)
    before = open_api_schema(yaml.safe_load(text))
    after_all = open_api_schema(yaml.safe_load(changed))
    for name in ("purge", "selector"):
        before["properties"]["spec"]["properties"][name].pop("description")
        after_all["properties"]["spec"]["properties"][name].pop("description")
    assert after_all == before


def test_the_crd_carries_the_status_subresource_columns_short_name_and_category() -> None:
    [version] = CRD["spec"]["versions"]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["Ready", "Idle", "Absolute", "Workloads", "Enforcement", "Age"]
    assert CRD["spec"]["names"]["shortNames"] == ["spol"]
    assert CRD["spec"]["names"]["categories"] == ["curfew"]


def _rule_nodes(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = [(path, node)] if node.get("x-kubernetes-validations") else []
    for name, sub in node.get("properties", {}).items():
        out += _rule_nodes(sub, f"{path}.{name}")
    if isinstance(node.get("additionalProperties"), dict):
        out += _rule_nodes(node["additionalProperties"], f"{path}.*")
    if "items" in node:
        out += _rule_nodes(node["items"], f"{path}[]")
    return out


def _bounded(node: dict[str, Any]) -> bool:
    if node.get("type") == "string":
        return "maxLength" in node or "enum" in node
    if node.get("type") == "array":
        return "maxItems" in node and _bounded(node["items"])
    return node.get("type") in ("integer", "boolean", "number")


def _field(node: dict[str, Any], path: str) -> dict[str, Any]:
    for part in path.strip(".").split("."):
        node = node["properties"][part]
    return node


def test_every_value_a_cel_rule_reads_is_bounded_so_the_api_server_accepts_its_cost() -> None:
    # The API server rejects a CRD whose rules' estimated cost exceeds its budget; unbounded
    # strings and lists are estimated at the maximum request size.
    unbounded = []
    for path, node in _rule_nodes(SCHEMA):
        for rule in node["x-kubernetes-validations"]:
            text = rule["rule"]
            # Field paths the rule reads (self.a, self.a.b), method calls left out.
            fields = set(re.findall(r"self((?:\.[A-Za-z]+)+)(?![A-Za-z(])", text))
            # has(self.x) costs the same whatever x holds: only values compared or matched count
            used = [f for f in fields
                    if re.search(rf"(?<!has\()self{re.escape(f)}(?![A-Za-z.])", text)]
            targets = [_field(node, f) for f in used] if fields else [node]
            unbounded += [f"{path}: {text}" for t in targets if not _bounded(t)]
    assert unbounded == []


@pytest.mark.parametrize("version", ["1.29", kubernetes_validate.latest_version()])
def test_the_crd_object_passes_kubernetes_validate_in_strict_mode(version: str) -> None:
    kubernetes_validate.validate(CRD, version, strict=True)


def test_kubernetes_validate_strict_mode_does_catch_a_broken_crd() -> None:
    broken = copy.deepcopy(CRD)
    broken["spec"]["versions"][0]["subresource"] = {"status": {}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, kubernetes_validate.latest_version(), strict=True)


@pytest.mark.parametrize(
    ("idle", "absolute", "valid"),
    [("999ms", "1h", False), ("1s", "1h", True), ("1500ms", "1s", False), ("1.5s", "2s", True)],
    ids=["999ms is under a second", "1s is exactly a second", "1500ms exceeds 1s",
         "1.5s fits under 2s"],
)
def test_cel_python_compares_sub_second_durations_as_the_model_does(
    idle: str, absolute: str, valid: bool
) -> None:
    # cel-python 0.5 prints durations in whole seconds but keeps microseconds: the rules'
    # comparisons must still see 999ms as less than 1s.
    timeouts = SCHEMA["properties"]["spec"]["properties"]["timeouts"]
    assert (not cel_errors(timeouts, {"idle": idle, "absolute": absolute})) is valid
    assert _model_accepts(sample(timeouts={"idle": idle, "absolute": absolute})) is valid
