"""Chart.yaml's Artifact Hub metadata: each annotation is the string Artifact Hub reads, the
list-valued ones parse as the YAML lists it documents, and the CRD example is a valid policy that
is one of the project's examples."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest
import yaml
from chart_helpers import CHART, load_yaml_documents

from curfew.api import parse_policy

ROOT = CHART.parents[1]
CHART_YAML = yaml.safe_load((CHART / "Chart.yaml").read_text())
ANNOTATIONS: dict[str, Any] = CHART_YAML["annotations"]
CHANGE_KINDS = {"added", "changed", "deprecated", "removed", "fixed", "security"}


def _listed(key: str) -> list[dict[str, Any]]:
    raw = ANNOTATIONS[f"artifacthub.io/{key}"]
    assert isinstance(raw, str), f"artifacthub.io/{key} must be YAML in a string"
    items = yaml.safe_load(raw)
    assert isinstance(items, list), key
    assert items, key
    assert all(isinstance(item, dict) for item in items), key
    return items


def test_every_artifact_hub_annotation_is_a_string() -> None:
    artifacthub = {k: v for k, v in ANNOTATIONS.items() if k.startswith("artifacthub.io/")}
    assert {"artifacthub.io/changes", "artifacthub.io/links", "artifacthub.io/images",
            "artifacthub.io/license", "artifacthub.io/crdsExamples", "artifacthub.io/prerelease",
            "artifacthub.io/operator"} <= set(artifacthub)
    assert all(isinstance(v, str) for v in artifacthub.values())


@pytest.mark.parametrize(("key", "required"), [
    ("changes", {"kind", "description"}),
    ("links", {"name", "url"}),
    ("images", {"name", "image"}),
    ("crds", {"kind", "version", "name", "displayName", "description"}),
])
def test_each_list_annotation_parses_with_the_fields_artifact_hub_requires(
    key: str, required: set[str],
) -> None:
    for item in _listed(key):
        assert required <= set(item), f"{key}: {item}"
        assert all(isinstance(item[field], str) and item[field] for field in required)


def test_changes_have_a_kind_artifact_hub_knows_and_links_are_https() -> None:
    assert {c["kind"] for c in _listed("changes")} <= CHANGE_KINDS
    assert all(link["url"].startswith("https://") for link in _listed("links"))


def test_the_flags_are_the_strings_true_or_false() -> None:
    assert ANNOTATIONS["artifacthub.io/operator"] == "true"
    assert ANNOTATIONS["artifacthub.io/prerelease"] in {"true", "false"}
    assert ANNOTATIONS["artifacthub.io/containsSecurityUpdates"] in {"true", "false"}


def test_the_license_is_the_project_s() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert ANNOTATIONS["artifacthub.io/license"] == project["license"]


def test_the_image_is_the_one_the_chart_deploys_by_default() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    (image,) = _listed("images")
    assert image["image"] == f"{values['image']['repository']}:{CHART_YAML['appVersion']}"


def test_the_crd_listed_is_the_chart_s_session_policy_crd() -> None:
    (listed,) = _listed("crds")
    (crd,) = [c for c in load_yaml_documents(CHART / "crds" / "sessionpolicies.curfew.dev.yaml")
              if c["kind"] == "CustomResourceDefinition"]
    assert listed["name"] == crd["metadata"]["name"]
    assert listed["kind"] == crd["spec"]["names"]["kind"]
    assert listed["version"] in [v["name"] for v in crd["spec"]["versions"]]


def test_each_crd_example_is_a_valid_policy_and_one_of_the_project_s_examples() -> None:
    examples = [doc for path in sorted((ROOT / "examples").rglob("*.yaml"))
                for doc in load_yaml_documents(path) if doc.get("kind") == "SessionPolicy"]
    for example in _listed("crdsExamples"):
        assert example in examples
        parse_policy(example)


def test_the_runbook_address_of_the_alerts_is_under_the_chart_s_home() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["metrics"]["alerts"]["runbookBaseURL"].startswith(CHART_YAML["home"] + "/")
    assert CHART_YAML["home"] in CHART_YAML["sources"]
