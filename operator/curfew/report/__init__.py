"""The compliance report: the data (:func:`build_report`, pure) and its two renderings,
Markdown and self-contained HTML."""

from curfew.report.html import build_html
from curfew.report.markdown import build_markdown
from curfew.report.model import (
    NamespaceReport,
    PolicyReport,
    ProfileCheck,
    PurgeReport,
    Report,
    TimeoutOrigin,
    WorkloadReport,
    build_namespace_report,
    build_profile_checks,
    build_report,
    build_timeout_origins,
)

__all__ = [
    "NamespaceReport", "PolicyReport", "ProfileCheck", "PurgeReport", "Report", "TimeoutOrigin",
    "WorkloadReport", "build_html", "build_markdown", "build_namespace_report",
    "build_profile_checks", "build_report", "build_timeout_origins",
]
