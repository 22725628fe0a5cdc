"""Every object render emits is valid for Kubernetes (kubernetes-validate, strict mode) in 1.29
and in the newest version the validator ships."""

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from render_samples import policy, workload

from curfew.cli.inputs import load_documents
from curfew.cli.render import read_inputs
from curfew.render import render

ROOT = Path(__file__).resolve().parents[3]
VERSIONS = ["1.29", kubernetes_validate.latest_version()]
LONG = ("a" * 62 + ".") * 4 + "b"


def _examples() -> list[dict[str, Any]]:
    loaded, workloads, _ = read_inputs(load_documents([str(ROOT / "examples")]))
    return render([p for _, p in loaded], workloads).objects


def _edge_cases() -> list[dict[str, Any]]:
    policies = [
        policy(LONG, selector={}, uid="0b6f4c1e-1d2f-4c43-9b8a-2f5d9f1f0a11",
               created="2024-05-01T10:00:00Z", enforcement="Audit",
               session={"header": "Authorization", "headerPrefix": "Bearer "},
               purge={"schedule": "@daily", "suspend": True}),
        policy("web.v2", timeouts={"renewal": "30m", "warningLead": "1m"}),
    ]
    workloads = [
        workload(LONG, kind=kind, uid="7c1d8e2a-5b4f-4a6e-8d3c-1e2f3a4b5c6d",
                 labels={"app": "web"})
        for kind in ("Deployment", "StatefulSet", "DaemonSet")
    ]
    return render(policies, workloads).objects


OBJECTS = [("examples", o) for o in _examples()] + [("edge cases", o) for o in _edge_cases()]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("source", "obj"), OBJECTS,
    ids=[f"{s}: {o['kind']} {o['metadata']['name'][:40]}" for s, o in OBJECTS],
)
def test_every_rendered_object_passes_kubernetes_validate_in_strict_mode(
    source: str, obj: dict[str, Any], version: str
) -> None:
    kubernetes_validate.validate(obj, version, strict=True)


def test_strict_validation_does_reject_a_cron_job_with_a_misspelt_field() -> None:
    job = next(o for o in _examples() if o["kind"] == "CronJob")
    job["spec"]["concurrencypolicy"] = "Forbid"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, VERSIONS[-1], strict=True)
