"""The report as Markdown (CommonMark with GitHub tables): one document per namespace.

Every value is escaped: names come from the cluster or from files anyone may write, and a
Markdown viewer renders inline HTML, so ``<script>`` in a name must stay text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from curfew.report import words
from curfew.report.model import NamespaceReport, Report, WorkloadReport

# CommonMark lets any ASCII punctuation be backslash-escaped; these are the characters that can
# start markup in the middle of a paragraph or a table cell (lines here never begin with a
# value, so block markers such as # and - need nothing).
_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&])")


def escape(text: str) -> str:
    """``text`` as literal Markdown: markup characters escaped, line breaks made spaces."""
    return _SPECIAL.sub(r"\\\1", " ".join(text.splitlines()))


def _table(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(escape(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def _workload(w: WorkloadReport) -> list[str]:
    out = [f"### {escape(f'{w.kind}/{w.name}')}", ""]
    if not w.selected:
        return [*out, escape(f"Not selected: {words.NOT_SELECTED}."), ""]
    out += [escape(words.selected_by(w)), ""]
    if w.config_hash:
        out += [f"Effective config hash: `{w.config_hash}`", ""]
    out += _table(words.TIMEOUT_COLUMNS,
                  [(t.field, words.duration(t.value), t.origin) for t in w.timeouts])
    if not w.profiles:
        return [*out, "No compliance profile is listed by its policies.", ""]
    return out + _table(words.PROFILE_COLUMNS, [
        (p.profile, p.clause, words.verdict(p.meets), "; ".join(p.reasons),
         ", ".join(p.required_by)) for p in w.profiles])


def build_namespace_markdown(report: Report, ns: NamespaceReport) -> str:
    """The Markdown document of one namespace."""
    out = [f"# {words.TITLE}: namespace {escape(ns.namespace)}", "",
           escape(words.header(report)), "", escape(words.summary(ns)), "",
           escape(words.BASIS), "", "## Workloads", ""]
    out += _table(words.WORKLOAD_COLUMNS, [words.workload_row(w) for w in ns.workloads])
    for w in ns.workloads:
        out += _workload(w)
    out += ["## Policies", ""]
    out += _table(words.POLICY_COLUMNS, [words.policy_row(p) for p in ns.policies])
    out += ["## Purge", ""]
    rows = [row for p in ns.policies if (row := words.purge_row(p)) is not None]
    out += _table(words.PURGE_COLUMNS, rows) if rows else ["No policy in force.", ""]
    return "\n".join(out).rstrip("\n") + "\n"


def build_markdown(report: Report) -> str:
    """Every namespace's document, in order, separated by a thematic break."""
    if not report.namespaces:
        return f"# {words.TITLE}\n\n{escape(words.header(report))}\n\nNo namespace to report.\n"
    return "\n---\n\n".join(build_namespace_markdown(report, ns) for ns in report.namespaces)
