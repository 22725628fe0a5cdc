"""One default image reference everywhere: the package, both charts, the operator and the docs.

A user who builds ``curfew:<version>`` as the docs say gets a cluster where the operator, the
injected sidecar, the library chart's sidecar and the purge jobs all run that image.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

from curfew import __version__
from curfew.defaults import IMAGE, IMAGE_REPOSITORY
from curfew.operator.settings import InjectionWebhookSettings
from curfew.render.injection import InjectionSettings
from curfew.render.objects import RenderSettings

ROOT = Path(__file__).resolve().parents[3]
CHARTS = ROOT / "charts"


def test_the_package_the_charts_and_pyproject_carry_one_version() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["version"] == __version__
    for chart in ("curfew", "curfew-sidecar"):
        manifest = yaml.safe_load((CHARTS / chart / "Chart.yaml").read_text())
        assert manifest["appVersion"] == __version__, chart


def test_every_python_default_names_the_one_image() -> None:
    assert f"{IMAGE_REPOSITORY}:{__version__}" == IMAGE
    assert InjectionWebhookSettings.model_fields["image"].default == IMAGE
    assert InjectionSettings().image == IMAGE
    assert RenderSettings().image == IMAGE


def test_the_charts_default_to_the_one_image() -> None:
    values = yaml.safe_load((CHARTS / "curfew" / "values.yaml").read_text())
    assert values["image"]["repository"] == IMAGE_REPOSITORY
    assert values["image"]["tag"] == ""  # the chart's appVersion, checked above
    assert values["injection"]["sidecar"]["image"] == ""  # the operator's own image
    template = (CHARTS / "curfew-sidecar" / "templates" / "_sidecar.tpl").read_text()
    defaults = re.findall(r"default \"([^\"]+)\" \.image\b", template)
    assert defaults == [IMAGE]


def test_the_docs_and_examples_name_the_current_version_of_the_image() -> None:
    texts = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    texts += sorted((ROOT / "examples").rglob("*.yaml"))
    stale = [
        f"{path.relative_to(ROOT)}: curfew:{tag}"
        for path in texts
        for tag in re.findall(r"\bcurfew:(\d+\.\d+\.\d+\S*)\b", path.read_text())
        if tag != __version__
    ]
    assert stale == []
