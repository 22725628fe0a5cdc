"""Reading the SessionPolicy CRD the way the API server does: structural defaulting, schema
validation (jsonschema, with strict field validation) and the CEL rules (cel-python); and
writing the model's field descriptions into it (what ``kubectl explain`` prints)."""

from __future__ import annotations

import copy
import re
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[3]
CRD_PATH = ROOT / "crds" / "sessionpolicies.curfew.dev.yaml"
CRD_PATHS = (CRD_PATH, ROOT / "charts" / "curfew" / "crds" / "sessionpolicies.curfew.dev.yaml")
"""The CRD and the chart's copy of it, which must stay identical."""


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


_KEY_LINE = re.compile(r"^( *)(- )?([A-Za-z0-9_$.-]+):(.*)$")
_WIDTH = 100


def write_descriptions(text: str, descriptions: Mapping[tuple[str, ...], str]) -> str:
    """``text`` (the CRD's YAML) with the ``description`` of each schema node replaced.

    Keys of ``descriptions`` are paths under ``openAPIV3Schema``, e.g.
    ``("properties", "spec", "properties", "purge")``. Line-based on purpose: the rest of the
    file (comments, flow lists, folded CEL rules) is kept byte for byte, which a YAML
    round trip would not do. The caller re-reads the result to check it.
    """
    lines = text.splitlines()
    out: list[str] = []
    stack: list[tuple[int, str]] = []
    schema_indent: int | None = None
    block_indent: int | None = None  # inside a block scalar that is not replaced
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        indent = len(line) - len(line.lstrip(" "))
        if block_indent is not None:
            if not line.strip() or indent > block_indent:
                out.append(line)
                continue
            block_indent = None
        match = _KEY_LINE.match(line)
        if match is None:
            out.append(line)
            continue
        key_indent = indent + (2 if match.group(2) else 0)
        key, rest = match.group(3), match.group(4).strip()
        if schema_indent is not None and key_indent <= schema_indent:
            schema_indent = None
        if key == "openAPIV3Schema":
            schema_indent, stack = key_indent, []
            out.append(line)
            continue
        if schema_indent is None:
            out.append(line)
            if rest in (">-", ">", "|", "|-"):
                block_indent = key_indent
            continue
        while stack and stack[-1][0] >= key_indent:
            stack.pop()
        path = tuple(k for _, k in stack)
        if key == "description" and path in descriptions:
            end = i
            if rest in (">-", ">", "|", "|-"):
                while end < len(lines) and (
                        not lines[end].strip()
                        or len(lines[end]) - len(lines[end].lstrip(" ")) > key_indent):
                    end += 1
            current = yaml.safe_load("\n".join([f"description: {rest}", *lines[i:end]]))
            if current == {"description": descriptions[path]}:
                out += [line, *lines[i:end]]  # unchanged: kept as written
            else:
                out += _description_lines(line[:indent] + (match.group(2) or ""), key_indent,
                                          descriptions[path])
            i = end
            continue
        stack.append((key_indent, key))
        out.append(line)
        if rest in (">-", ">", "|", "|-"):
            block_indent = key_indent
    return "\n".join(out) + "\n"


def _description_lines(prefix: str, indent: int, text: str) -> list[str]:
    single = f"{prefix}description: {text}"
    plain = not re.search(r": |\s#|^[-?:,\[\]{}#&*!|>'\"%@`]", text)
    if plain and len(single) <= _WIDTH:
        return [single]
    body = textwrap.wrap(text, width=_WIDTH - indent - 2, break_long_words=False,
                         break_on_hyphens=False)
    return [f"{prefix}description: >-", *(" " * (indent + 2) + part for part in body)]
