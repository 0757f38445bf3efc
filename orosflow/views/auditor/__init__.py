"""The auditor's view of reports: metadata only (states, recipients, times, rules), no content.

Auditors review how reports moved, not what they say. So this package reads only columns that
hold no personal data (report reference/status/urgency/times/category codes, handovers, audit
events, the times and actors of phone contacts, feedback and mails). It never decrypts and
never even loads the ciphertext columns: it must not call ``content.read_report`` or
``lifecycle.read_feedback``. The portal's pages and its JSON API both call these functions, so
a filter, a count or a percentile means the same thing in both places.

Modules: ``labels`` (Swedish labels and texts), ``filters`` (the filter and the base queries),
``report_list`` (the paged list), ``chain`` (one report's chain), ``stats`` (counts and
percentiles), ``export`` (JSON/CSV export). The names the portal uses are re-exported here.
"""

from __future__ import annotations

from orosflow.views.auditor.chain import (
    AnchorProblemOut,
    AuditEventOut,
    AuditFeedbackMeta,
    AuditHandover,
    AuditMail,
    AuditPhoneContact,
    AuditReportChain,
    ChainStatusOut,
    chain_out,
    chain_status,
    handover_out,
    report_chain,
)
from orosflow.views.auditor.export import (
    CSV_COLUMNS,
    AuditExport,
    AuditExportReport,
    csv_rows,
    export_csv,
    export_data,
    export_filename,
    record_export,
)
from orosflow.views.auditor.filters import (
    FILTER_LABELS,
    AuditFilters,
    FilterError,
    FilterFieldError,
    municipality_options,
    parse_filters,
)
from orosflow.views.auditor.labels import (
    ACTION_LABELS,
    MAIL_KIND_LABELS,
    OTHER_RULES,
    URGENCY_LABELS,
    category_label,
    duration_text,
    municipality_label,
    rule_text,
)
from orosflow.views.auditor.report_list import (
    MAX_PER_PAGE,
    PER_PAGE,
    AuditRecipient,
    AuditReportPage,
    AuditReportRow,
    list_reports,
)

# Last: the function ``stats`` must win over the submodule of the same name on this package.
from orosflow.views.auditor.stats import (
    PERCENTILE_METHOD,
    PERCENTILES,
    STATS_CSV_COLUMNS,
    AuditStats,
    DurationStats,
    HandoverCounts,
    StatsCount,
    duration_stats,
    nearest_rank,
    record_stats_export,
    stats,
    stats_csv,
)

__all__ = [
    "ACTION_LABELS",
    "CSV_COLUMNS",
    "FILTER_LABELS",
    "MAIL_KIND_LABELS",
    "MAX_PER_PAGE",
    "OTHER_RULES",
    "PERCENTILES",
    "PERCENTILE_METHOD",
    "PER_PAGE",
    "STATS_CSV_COLUMNS",
    "URGENCY_LABELS",
    "AuditEventOut",
    "AuditExport",
    "AuditExportReport",
    "AuditFeedbackMeta",
    "AuditFilters",
    "AuditHandover",
    "AuditMail",
    "AuditPhoneContact",
    "AuditRecipient",
    "AuditReportChain",
    "AuditReportPage",
    "AuditReportRow",
    "AuditStats",
    "AnchorProblemOut",
    "ChainStatusOut",
    "DurationStats",
    "FilterError",
    "FilterFieldError",
    "HandoverCounts",
    "StatsCount",
    "category_label",
    "chain_out",
    "chain_status",
    "csv_rows",
    "duration_stats",
    "duration_text",
    "export_csv",
    "export_data",
    "export_filename",
    "handover_out",
    "list_reports",
    "municipality_label",
    "municipality_options",
    "nearest_rank",
    "parse_filters",
    "record_export",
    "report_chain",
    "rule_text",
    "record_stats_export",
    "stats",
    "stats_csv",
]
