"""The chart ships the SessionPolicy CRD as the very same file as ``crds/``, and helm installs it.

The chart keeps a copy rather than a symlink: helm follows symlinks, but checkouts without
symlink support (and some GitOps tools) would then ship a broken chart. This test is what keeps
the copy honest.
"""

from __future__ import annotations

import kubernetes_validate
from chart_helpers import CHART, ROOT, by_kind, template

SOURCE = ROOT / "crds"
CHART_CRDS = CHART / "crds"
KOPF_PEERING = "kopf-peering.yaml"
"""kopf's own peering CRDs: chart-only, the project does not define them."""


def test_the_chart_crd_is_byte_for_byte_the_crd_in_crds() -> None:
    sources = sorted(path.name for path in SOURCE.glob("*.yaml"))
    assert "sessionpolicies.curfew.dev.yaml" in sources
    for name in sources:
        shipped = CHART_CRDS / name
        fix = f"cp crds/{name} charts/curfew/crds/"
        assert shipped.is_file(), f"charts/curfew/crds/{name} is missing: {fix}"
        assert shipped.read_bytes() == (SOURCE / name).read_bytes(), (
            f"charts/curfew/crds/{name} differs from crds/{name}: {fix}"
        )


def test_the_chart_ships_no_crd_the_project_does_not_define_except_kopf_peering() -> None:
    shipped = {path.name for path in CHART_CRDS.glob("*.yaml")}
    defined = {path.name for path in SOURCE.glob("*.yaml")}
    assert shipped - defined == {KOPF_PEERING}


def test_helm_renders_every_shipped_crd_as_a_valid_custom_resource_definition() -> None:
    objects = template(extra=["--include-crds"])
    crds = {crd["metadata"]["name"]: crd for crd in by_kind(objects, "CustomResourceDefinition")}
    assert set(crds) == {
        "sessionpolicies.curfew.dev", "clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"
    }
    for crd in crds.values():
        kubernetes_validate.validate(crd, "1.25", strict=True)
