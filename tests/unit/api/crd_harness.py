"""Reading the SessionPolicy CRD the way the API server does: structural defaulting, schema
validation (jsonschema, with strict field validation) and the CEL rules (cel-python)."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import yaml

CRD_PATH = Path(__file__).resolve().parents[3] / "crds" / "sessionpolicies.curfew.dev.yaml"


def load_crd() -> dict[str, Any]:
    return yaml.safe_load(CRD_PATH.read_text())


def open_api_schema(crd: dict[str, Any]) -> dict[str, Any]:
    [version] = crd["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """A copy of ``value`` with the schema's defaults filled in, parents before children, as
    the API server's structural defaulting does."""
    value = copy.deepcopy(value)
    _default(schema, value)
    return value


def _default(schema: dict[str, Any], value: Any) -> None:
    if isinstance(value, dict):
        for name, sub in schema.get("properties", {}).items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                _default(sub, value[name])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name in set(value) - set(schema.get("properties", {})):
                _default(extra, value[name])
    elif isinstance(value, list) and "items" in schema:
        for item in value:
            _default(schema["items"], item)


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with unknown fields rejected, as ``kubectl apply`` (field validation Strict)
    does; the API server would otherwise prune them silently."""
    schema = copy.deepcopy(schema)

    def walk(node: dict[str, Any]) -> None:
        if "properties" in node:
            node.setdefault("additionalProperties", False)
            for sub in node["properties"].values():
                walk(sub)
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"])
        if "items" in node:
            walk(node["items"])

    walk(schema)
    schema["properties"]["metadata"]["additionalProperties"] = True
    return schema


def _re2_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Any:
    # The API server matches patterns with RE2, whose `$` is the end of the text; Python's `$`
    # also matches before a trailing newline. Every pattern of the CRD ends with that anchor.
    if not isinstance(instance, str):
        return
    anchored = pattern[:-1] + r"\Z" if pattern.endswith("$") else pattern
    if not re.search(anchored, instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


_Validator = jsonschema.validators.extend(jsonschema.Draft7Validator, {"pattern": _re2_pattern})


def schema_errors(schema: dict[str, Any], obj: dict[str, Any]) -> list[str]:
    validator = _Validator(strict(schema))
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(obj)]


_CEL = celpy.Environment()


def _cel_value(value: Any) -> Any:
    # cel-python 0.5 does not know the "µs" unit that Go's and cel-go's duration() accept.
    if isinstance(value, str):
        return value.replace("µs", "us")
    if isinstance(value, dict):
        return {k: _cel_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cel_value(v) for v in value]
    return value


def cel_errors(schema: dict[str, Any], value: Any, path: str = "") -> list[str]:
    """The messages of every ``x-kubernetes-validations`` rule that ``value`` breaks; a rule
    that cannot be evaluated counts as broken, as it does on the API server."""
    out: list[str] = []
    for rule in schema.get("x-kubernetes-validations", []):
        program = _CEL.program(_CEL.compile(rule["rule"]))
        try:
            result = program.evaluate({"self": celpy.json_to_cel(_cel_value(value))})
        except celpy.CELEvalError as exc:
            out.append(f"{path}: {rule['message']} (evaluation error: {exc})")
            continue
        if isinstance(result, celpy.CELEvalError) or not bool(result):
            out.append(f"{path}: {rule['message']}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for name, sub_value in value.items():
            sub = props.get(name) or (extra if isinstance(extra, dict) else None)
            if sub is not None:
                out += cel_errors(sub, sub_value, f"{path}.{name}".lstrip("."))
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            out += cel_errors(schema["items"], item, f"{path}[{i}]")
    return out
