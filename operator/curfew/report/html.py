"""The report as one self-contained HTML page: inline CSS, no script, nothing fetched, laid out
for print (each namespace starts a new page).

Every value goes through :func:`html.escape` in :func:`_text`, the only way text enters the
page: names come from the cluster or from files anyone may write, and an auditor opens this
page in a browser. A ``Content-Security-Policy`` meta tag forbids scripts and any request as a
second line of defence.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

from curfew.report import words
from curfew.report.model import NamespaceReport, Report, WorkloadReport

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_STYLE = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2330;
       margin: 2rem auto; max-width: 72rem; padding: 0 1.5rem; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
h2 { font-size: 1.15rem; margin: 1.75rem 0 .5rem; border-bottom: 1px solid #d5dae3; }
h3 { font-size: 1rem; margin: 1.25rem 0 .35rem; }
p { margin: .35rem 0; }
.meta, .basis { color: #4a5468; }
.summary { font-weight: 600; }
table { border-collapse: collapse; width: 100%; margin: .4rem 0 .8rem; }
th, td { border: 1px solid #d5dae3; padding: .3rem .45rem; text-align: left;
         vertical-align: top; }
th { background: #eef1f6; font-weight: 600; }
table.timeouts { width: auto; min-width: 50%; }
code { font: 12px ui-monospace, "SFMono-Regular", Menlo, monospace; word-break: break-all; }
.meets { color: #0b6b2b; font-weight: 600; }
.misses { color: #b3261e; font-weight: 600; }
.none { color: #4a5468; font-style: italic; }
section.namespace + section.namespace { margin-top: 3rem; }
@media print {
  body { margin: 0; max-width: none; font-size: 11px; }
  section.namespace + section.namespace { break-before: page; margin-top: 0; }
  tr, .workload { break-inside: avoid; }
}
"""


def _text(value: str) -> str:
    return html.escape(value, quote=True)


def _cell(value: str, tag: str = "td") -> str:
    lowered = value.lower()
    if lowered in ("meets", "misses"):
        return f'<{tag} class="{lowered}">{_text(value)}</{tag}>'
    return f"<{tag}>{_text(value)}</{tag}>"


def _table(columns: Sequence[str], rows: Iterable[Sequence[str]], css: str = "") -> str:
    head = "".join(_cell(c, "th") for c in columns)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    klass = f' class="{css}"' if css else ""
    return f"<table{klass}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _workload(w: WorkloadReport) -> str:
    title = f"<h3>{_text(f'{w.kind}/{w.name}')}</h3>"
    if not w.selected:
        return (f'<div class="workload">{title}<p class="none">'
                f"{_text(f'Not selected: {words.NOT_SELECTED}.')}</p></div>")
    parts = [title, "<p>" + _text(words.selected_by(w)) + "</p>"]
    if w.config_hash:
        parts.append(f"<p>Effective config hash: <code>{_text(w.config_hash)}</code></p>")
    parts.append(_table(words.TIMEOUT_COLUMNS,
                        [(t.field, words.duration(t.value), t.origin) for t in w.timeouts],
                        "timeouts"))
    if w.profiles:
        parts.append(_table(words.PROFILE_COLUMNS, [
            (p.profile, p.clause, words.verdict(p.meets), "; ".join(p.reasons),
             ", ".join(p.required_by)) for p in w.profiles], "profiles"))
    else:
        parts.append('<p class="none">No compliance profile is listed by its policies.</p>')
    return '<div class="workload">' + "".join(parts) + "</div>"


def _namespace(report: Report, ns: NamespaceReport) -> str:
    rows = [row for p in ns.policies if (row := words.purge_row(p)) is not None]
    purge = (_table(words.PURGE_COLUMNS, rows, "purge") if rows
             else '<p class="none">No policy in force.</p>')
    return "".join([
        f'<section class="namespace" id="ns-{_text(ns.namespace)}">',
        f"<h1>{_text(words.TITLE)}: namespace {_text(ns.namespace)}</h1>",
        f'<p class="meta">{_text(words.header(report))}</p>',
        f'<p class="summary">{_text(words.summary(ns))}</p>',
        f'<p class="basis">{_text(words.BASIS)}</p>',
        "<h2>Workloads</h2>",
        _table(words.WORKLOAD_COLUMNS, [words.workload_row(w) for w in ns.workloads],
               "workloads"),
        *(_workload(w) for w in ns.workloads),
        "<h2>Policies</h2>",
        _table(words.POLICY_COLUMNS, [words.policy_row(p) for p in ns.policies], "policies"),
        "<h2>Purge</h2>", purge,
        "</section>",
    ])


def build_html(report: Report) -> str:
    """The whole report as one HTML page, a section per namespace."""
    if report.namespaces:
        body = "".join(_namespace(report, ns) for ns in report.namespaces)
    else:
        body = (f"<h1>{_text(words.TITLE)}</h1><p class=\"meta\">"
                f"{_text(words.header(report))}</p><p>No namespace to report.</p>")
    names = ", ".join(ns.namespace for ns in report.namespaces)
    title = words.TITLE + (f": {names}" if names else "")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_text(_CSP)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_text(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>\n"
    )
