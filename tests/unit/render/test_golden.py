"""Golden files: ``curfew render -f examples/`` prints exactly what is committed under golden/.

After an intended change, regenerate them with ``CURFEW_REGENERATE_GOLDEN=1 pytest
tests/unit/render/test_golden.py`` and review the diff.
"""

import json
import os
from pathlib import Path

import pytest
import yaml

from curfew.cli import main

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = Path(__file__).parent / "golden"
REGENERATE = os.environ.get("CURFEW_REGENERATE_GOLDEN") == "1"


def _render(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[str, str]:
    assert main(["render", "-f", "examples/", *args]) == 0
    captured = capsys.readouterr()
    return captured.out, captured.err


@pytest.mark.parametrize(
    ("output", "golden"),
    [("yaml", "examples.yaml"), ("json", "examples.json")],
    ids=["the YAML output matches its golden file", "the JSON output matches its golden file"],
)
def test_rendering_the_examples_prints_the_golden_output(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, output: str, golden: str
) -> None:
    monkeypatch.chdir(ROOT)  # messages name files as the README's command does
    out, err = _render(capsys, "-o", output)
    for name, text in ((golden, out), (golden + ".stderr", err)):
        path = GOLDEN / name
        if REGENERATE:
            path.write_text(text)
        assert text == path.read_text(), f"{name} differs (regenerate: CURFEW_REGENERATE_GOLDEN=1)"


def test_the_yaml_and_json_outputs_hold_the_same_objects(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    as_yaml = list(yaml.safe_load_all(_render(capsys)[0]))
    as_json = json.loads(_render(capsys, "-o", "json")[0])
    assert as_json["kind"] == "List"
    assert as_json["items"] == as_yaml


def test_the_examples_render_the_overlap_they_are_meant_to_show(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    objects = list(yaml.safe_load_all(_render(capsys)[0]))
    checkout = next(o for o in objects if o["metadata"]["name"] == "curfew-deployment-checkout")
    config = json.loads(checkout["data"]["policy.json"])
    assert config["sources"] == ["shop/checkout-strict", "shop/storefront"]
    assert config["timeouts"]["idleSeconds"] == 300
    kinds = sorted(o["kind"] for o in objects)
    assert kinds.count("CronJob") == 3  # one per policy
    assert kinds.count("ConfigMap") == 4 + 3  # one per selected workload, one per policy
