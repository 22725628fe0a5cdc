"""The chart's values: the strict schema rejects mistakes clearly, and every value is documented."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from chart_helpers import CHART, CI_VALUES, template, template_error

SCHEMA = json.loads((CHART / "values.schema.json").read_text())
VALUES_TEXT = (CHART / "values.yaml").read_text()
VALUES = yaml.safe_load(VALUES_TEXT)

REJECTED = [
    pytest.param(["replicaCont=2"], "Additional property replicaCont is not allowed",
                 id="a misspelt top-level value"),
    pytest.param(["image.pulPolicy=Always"], "image: Additional property pulPolicy is not allowed",
                 id="a misspelt nested value"),
    pytest.param(["metrics.serviceMonitor.intervall=30s"],
                 "metrics.serviceMonitor: Additional property intervall is not allowed",
                 id="a misspelt deeply nested value"),
    pytest.param(["webhook.enabled=true"], "Additional property webhook is not allowed",
                 id="a value the chart does not have"),
    pytest.param(["replicaCount=0"], "replicaCount: Must be greater than or equal to 1",
                 id="zero replicas"),
    pytest.param(["image.pullPolicy=Sometimes"], "image.pullPolicy: image.pullPolicy must be one",
                 id="an unknown pull policy"),
    pytest.param(["watchNamespaces={Shop_Front}"], "watchNamespaces.0: Does not match pattern",
                 id="a namespace that is not a DNS label"),
    pytest.param(["operator.logLevel=verbose"], "operator.logLevel: operator.logLevel must be one",
                 id="an unknown log level"),
    pytest.param(["metrics.port=99999"], "metrics.port: Must be less than or equal to 65535",
                 id="a port out of range"),
    pytest.param(["image.digest=latest"], "image.digest: Does not match pattern",
                 id="a digest that is not sha256"),
    pytest.param(["resources.requests.cpu=lots"], "resources.requests.cpu",
                 id="a malformed resource quantity"),
]


@pytest.mark.parametrize(("sets", "message"), REJECTED)
def test_the_schema_rejects_a_mistaken_value_with_a_message_naming_it(
    sets: list[str], message: str
) -> None:
    error = template_error(sets=sets)
    assert "values don't meet the specifications of the schema" in error
    assert message in error, error


def test_an_unknown_key_in_a_values_file_is_rejected_too(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("serviceAccount:\n  create: true\n  annotation: {a: b}\n")
    error = template_error(values=[values])
    assert "serviceAccount: Additional property annotation is not allowed" in error


def test_every_object_in_the_schema_forbids_unknown_keys() -> None:
    loose: list[str] = []

    def walk(node: dict[str, Any], path: str) -> None:
        if "properties" in node and node.get("additionalProperties") is not False:
            loose.append(path)
        for name, child in node.get("properties", {}).items():
            walk(child, f"{path}.{name}")
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{path}[]")

    walk(SCHEMA, "values")
    assert loose == []


def test_the_default_values_and_every_ci_values_file_satisfy_the_schema() -> None:
    jsonschema.validate(VALUES, SCHEMA)
    for path in CI_VALUES:
        jsonschema.validate(_merge(VALUES, yaml.safe_load(path.read_text())), SCHEMA)


def test_every_value_in_values_yaml_is_in_the_schema_with_a_description() -> None:
    for path, _ in _leaves(VALUES):
        node = SCHEMA
        for part in path:
            node = node["properties"][part]
        assert node.get("description"), ".".join(path)


def test_every_value_in_values_yaml_is_documented_by_a_comment() -> None:
    documented = _documented_paths(VALUES_TEXT)
    undocumented = [".".join(path) for path, _ in _leaves(VALUES) if path not in documented]
    assert undocumented == []


def test_the_documented_defaults_render_without_any_values_file() -> None:
    assert template()


def _documented_paths(text: str) -> set[tuple[str, ...]]:
    """Key paths of values.yaml whose line follows a comment line."""
    documented: set[tuple[str, ...]] = set()
    stack: list[tuple[int, str]] = []
    previous = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith(("#", "- ")) and ":" in stripped:
            indent = len(line) - len(line.lstrip())
            while stack and stack[-1][0] >= indent:
                stack.pop()
            stack.append((indent, stripped.split(":", 1)[0]))
            if previous.startswith("#"):
                documented.add(tuple(key for _, key in stack))
        previous = stripped
    return documented


def _leaves(node: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    if isinstance(node, dict) and node and path[-1:] != ("resources",):
        return [leaf for key, child in node.items() for leaf in _leaves(child, (*path, key))]
    return [(path, node)]


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _install_doc_value_names() -> set[str]:
    """The value names in the first column of docs/install.md's "Chart values" table, with its
    shorthands expanded: "`a.b`, `.c`" names a.b and a.c; "`a.*`" names everything under a."""
    doc = (CHART.parents[1] / "docs" / "install.md").read_text()
    section = doc.split("## Chart values", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        previous = ""
        for name in (cell.strip("` ") for cell in line.split("|")[1].split(",")):
            if name.startswith("."):
                name = previous.rsplit(".", 1)[0] + name
            names.add(name.removesuffix(".*"))
            previous = name
    return names


def test_every_value_in_values_yaml_is_in_the_install_docs_values_table() -> None:
    names = _install_doc_value_names()
    missing = [
        ".".join(path)
        for path, _ in _leaves(VALUES)
        if not any(".".join(path[:n]) in names for n in range(1, len(path) + 1))
    ]
    assert missing == []
