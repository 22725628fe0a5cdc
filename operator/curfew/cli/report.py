"""``curfew report``: the compliance report of each namespace, as Markdown or self-contained
HTML, from files (like ``curfew render``) or from the cluster of the current kubeconfig (with
each policy's status, so the purge results are known).

Exit 0 when the report was written, 1 when an input, the cluster or the output failed, 2 on a
usage error; errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from curfew import __version__
from curfew.api import CurfewInputError, InvalidPolicy, SessionPolicy, parse_policy
from curfew.cli.inputs import InputError, UsageError, load_documents
from curfew.cli.render import read_inputs
from curfew.report import Report, build_html, build_markdown, build_report
from curfew.report.markdown import build_namespace_markdown

SUFFIX = {"markdown": ".md", "html": ".html"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f", "--filename", dest="paths", action="append", metavar="PATH",
        help="file or directory (searched recursively for *.yaml, *.yml, *.json); repeatable; "
        "- reads stdin. Unset, the report is made from the cluster of the current kubeconfig",
    )
    parser.add_argument("--format", choices=tuple(SUFFIX), default="markdown",
                        help="markdown (default) or html")
    parser.add_argument(
        "-o", "--output", metavar="FILE",
        help="write the report to FILE (default: stdout); an existing directory gets one file "
        "per namespace, NAMESPACE.md or NAMESPACE.html",
    )
    parser.add_argument("-n", "--namespace", action="append", metavar="NAMESPACE",
                        help="report only this namespace; repeatable (default: every namespace "
                        "with a policy or, from files, a workload)")
    parser.add_argument("--kubeconfig", metavar="FILE",
                        help="kubeconfig to read the cluster with (default: $KUBECONFIG, then "
                        "~/.kube/config, or the in-cluster service account)")
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")


def _now() -> str:
    # SOURCE_DATE_EPOCH (reproducible-builds.org) pins the date, for documents kept in Git.
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is not None:
        try:
            stamp = datetime.fromtimestamp(int(epoch), UTC)
        except (ValueError, OverflowError, OSError):
            raise UsageError(f"SOURCE_DATE_EPOCH={epoch!r} is not a Unix time") from None
    else:
        stamp = datetime.now(UTC)
    return stamp.strftime("%Y-%m-%d %H:%M UTC")


def _from_files(args: argparse.Namespace) -> Report:
    loaded, workloads, notes = read_inputs(load_documents(args.paths))
    for note in notes:
        print(note, file=sys.stderr)
    return build_report([p for _, p in loaded], workloads, generated_at=_now(),
                        source=f"files: {', '.join(args.paths)}", version=__version__,
                        namespaces=args.namespace)


class ClusterError(Exception):
    """The cluster could not be read (exit 1); the message says what was asked and why."""


async def _read_cluster(args: argparse.Namespace) -> tuple[
        list[dict[str, Any]], list[Mapping[str, Any]]]:
    from curfew.k8s.client import (
        DAEMON_SETS,
        DEPLOYMENTS,
        SESSION_POLICIES,
        STATEFUL_SETS,
        ApiError,
        KubeClient,
        load_connection,
    )

    try:
        connection = await asyncio.to_thread(load_connection, args.kubeconfig, args.context)
    except Exception as exc:  # no kubeconfig, a broken one, an unknown context
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ClusterError(f"no Kubernetes credentials: {reason}") from None
    try:
        async with KubeClient(connection, concurrency=8, timeout=30.0) as api:
            policies: list[dict[str, Any]]
            if args.namespace:
                policies = [p for ns in args.namespace
                            for p in await api.list(SESSION_POLICIES, ns)]
                namespaces = sorted(set(args.namespace))
            else:
                policies = await api.list(SESSION_POLICIES)
                namespaces = sorted({str(p.get("metadata", {}).get("namespace", ""))
                                     for p in policies})
            workloads: list[Mapping[str, Any]] = []
            for ns in namespaces:
                for resource in (DEPLOYMENTS, STATEFUL_SETS, DAEMON_SETS):
                    for obj in await api.list(resource, ns):
                        # The API server omits kind and apiVersion on the items of a list.
                        workloads.append({**obj, "kind": resource.kind,
                                          "apiVersion": resource.api_version})
    except ApiError as exc:
        raise ClusterError(f"cannot read the cluster: {exc}") from None
    return policies, workloads


def _from_cluster(args: argparse.Namespace) -> Report:
    bodies, workloads = asyncio.run(_read_cluster(args))
    policies: list[SessionPolicy] = []
    invalid: dict[str, str] = {}
    statuses: dict[str, Mapping[str, Any]] = {}
    for body in bodies:
        meta = body.get("metadata", {})
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        status = body.get("status")
        statuses[key] = status if isinstance(status, Mapping) else {}
        try:
            policies.append(parse_policy(body))
        except InvalidPolicy as exc:
            invalid[key] = str(exc)
    context = f", context {args.context}" if args.context else ""
    return build_report(policies, workloads, generated_at=_now(),
                        source=f"the cluster (current kubeconfig{context})", version=__version__,
                        statuses=statuses, invalid=invalid,
                        namespaces=args.namespace or sorted({p.metadata.namespace
                                                             for p in policies}
                                                            | {k.partition("/")[0]
                                                               for k in invalid}))


def _write(report: Report, args: argparse.Namespace) -> None:
    render = build_html if args.format == "html" else build_markdown
    if args.output is None:
        sys.stdout.write(render(report))
        return
    target = Path(args.output)
    try:
        if target.is_dir():
            for ns in report.namespaces:
                one = Report(report.generated_at, report.source, report.version, (ns,))
                text = (build_html(one) if args.format == "html"
                        else build_namespace_markdown(one, ns))
                (target / f"{ns.namespace}{SUFFIX[args.format]}").write_text(
                    text, encoding="utf-8")
        else:
            target.write_text(render(report), encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {args.output}: {exc.strerror or exc}") from None


def run(args: argparse.Namespace) -> int:
    try:
        report = _from_files(args) if args.paths else _from_cluster(args)
        _write(report, args)
    except UsageError as exc:
        print(f"curfew report: {exc}", file=sys.stderr)
        return 2
    except (InputError, CurfewInputError, ClusterError) as exc:
        print(f"curfew report: {exc}", file=sys.stderr)
        return 1
    return 0
