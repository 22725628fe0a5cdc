"""``curfew render``: print the objects the operator would write for the given policies and
workloads (multi-document YAML or a JSON List), with a summary of selections on stderr."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

import yaml

from curfew.api import CurfewInputError, SessionPolicy, check_compliance, parse_policy
from curfew.cli.inputs import Document, InputError, UsageError, is_policy, load_documents
from curfew.render import (
    DEFAULT_SETTINGS,
    WORKLOAD_KINDS,
    Rendered,
    pod_template_labels,
    render,
    workload_id,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f", "--filename", dest="paths", action="append", required=True, metavar="PATH",
        help="file or directory (searched recursively for *.yaml, *.yml, *.json); repeatable; "
        "- reads stdin",
    )
    parser.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml",
                        help="output format (default: yaml)")
    parser.add_argument("--image", default=DEFAULT_SETTINGS.image,
                        help=f"image of the purge job (default: {DEFAULT_SETTINGS.image})")


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line strings (policy.json reads as JSON), no anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_yaml(objects: list[dict[str, Any]]) -> str:
    """Objects as multi-document YAML, keys in the order they were built."""
    return yaml.dump_all(objects, Dumper=_Dumper, sort_keys=False, explicit_start=True,
                         allow_unicode=True, width=100)


def dump_json(objects: list[dict[str, Any]]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}, indent=2) + "\n"


def read_inputs(
    docs: list[Document],
) -> tuple[list[tuple[Document, SessionPolicy]], list[dict[str, Any]], list[str]]:
    """Split documents into policies and workloads; notes name the documents skipped.

    Raises InputError, naming the document and field, on the first invalid policy.
    """
    policies: list[tuple[Document, SessionPolicy]] = []
    workloads: list[dict[str, Any]] = []
    notes: list[str] = []
    seen: dict[str, Document] = {}

    def once(doc: Document, identity: str) -> None:
        if identity in seen:
            raise InputError(f"{doc.where}: {identity} is also defined in {seen[identity].where}")
        seen[identity] = doc

    for doc in docs:
        if is_policy(doc):
            try:
                policy = parse_policy(doc.obj)
            except CurfewInputError as exc:
                raise InputError(f"{doc.where}: {exc.errors[0]}") from None
            once(doc, f"SessionPolicy {policy.key}")
            policies.append((doc, policy))
        elif doc.kind in WORKLOAD_KINDS:
            try:
                wid = workload_id(doc.obj)
                pod_template_labels(doc.obj)
            except CurfewInputError as exc:
                raise InputError(f"{doc.where}: {exc.errors[0]}") from None
            once(doc, f"{wid.kind} {wid.namespace}/{wid.name}")
            workloads.append(dict(doc.obj))
        else:
            notes.append(f"skipped {doc.where}: kind {doc.kind or '(none)'} is not a "
                         "SessionPolicy or a workload")
    return policies, workloads, notes


def summary(rendered: Rendered, policies: list[SessionPolicy]) -> list[str]:
    """Which workloads each policy selects, which policies overlap, what is non-compliant."""
    lines = []
    for policy in sorted(policies, key=lambda p: p.key):
        chosen = rendered.selections[policy.key]
        names = ", ".join(f"{w.kind}/{w.name}" for w in chosen) or "nothing"
        lines.append(f"policy {policy.key} selects {len(chosen)} workload"
                     f"{'' if len(chosen) == 1 else 's'}: {names}")
        if rendered.overlaps[policy.key]:
            lines.append(f"  overlaps with {', '.join(rendered.overlaps[policy.key])}: "
                         "each timeout is the shortest of them")
        lines += [f"  not compliant: {v}" for v in check_compliance(policy)]
    if not policies:
        lines.append("no SessionPolicy found: nothing to render")
    return lines


def run(args: argparse.Namespace) -> int:
    try:
        docs = load_documents(args.paths)
        loaded, workloads, notes = read_inputs(docs)
        policies = [p for _, p in loaded]
        settings = dataclasses.replace(DEFAULT_SETTINGS, image=args.image)
        rendered = render(policies, workloads, settings=settings)
    except UsageError as exc:
        print(f"curfew render: {exc}", file=sys.stderr)
        return 2
    except (InputError, CurfewInputError) as exc:
        print(f"curfew render: {exc}", file=sys.stderr)
        return 1
    out = dump_json(rendered.objects) if args.output == "json" else dump_yaml(rendered.objects)
    sys.stdout.write(out)
    for line in [*notes, *summary(rendered, policies)]:
        print(line, file=sys.stderr)
    return 0
