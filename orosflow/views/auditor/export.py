"""The auditor's export: matching reports with their handovers as JSON or CSV (safe against
spreadsheet formulas), and the export itself put on the audit record."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel
from sqlmodel import Session

from orosflow.core.audit import append_event
from orosflow.core.clock import utcnow
from orosflow.core.csvfile import DEFAULT_SEPARATOR, write_csv
from orosflow.views.auditor.chain import AuditHandover, handover_out
from orosflow.views.auditor.filters import AuditFilters, conditions, handovers_of, reports_query
from orosflow.views.auditor.labels import category_ids, flow_run_url
from routing.hours import TZ


class AuditExportReport(BaseModel):
    reference: str
    status: str
    urgency: str
    report_date: date
    submitted_at: datetime
    clinic_municipality: str
    categories: list[str]
    flow_run_id: str | None
    flow_run_url: str | None
    handovers: list[AuditHandover]


class AuditExport(BaseModel):
    """The export; every time in it is Europe/Stockholm with its offset (Swedish convention)."""

    exported_at: datetime
    exported_by: str
    filters: AuditFilters
    reports: list[AuditExportReport]


CSV_COLUMNS = (
    "reference",
    "report_status",
    "urgency",
    "report_date",
    "submitted_at",
    "clinic_municipality",
    "categories",
    "flow_run_id",
    "handover_position",
    "handover_attempt",
    "unit_id",
    "unit_name",
    "unit_kind",
    "municipality",
    "municipality_name",
    "rule",
    "explanation",
    "handover_status",
    "phone_required",
    "created_at",
    "notified_at",
    "deadline_at",
    "confirmed_at",
    "confirmed_by",
    "minutes_to_confirmation",
    "escalation_step",
    "escalated_from",
    "rerouted_from",
    "declined_at",
    "declined_by",
    "decline_reason",
)


def export_data(s: Session, f: AuditFilters, actor: str) -> AuditExport:
    """All matching reports (newest first) with their handovers' metadata."""
    reports = list(s.exec(reports_query(conditions(f))))
    hs = handovers_of(s, [r.id for r in reports])
    return AuditExport(
        exported_at=utcnow().astimezone(TZ),
        exported_by=actor,
        filters=f,
        reports=[
            AuditExportReport(
                reference=r.reference,
                status=r.status,
                urgency=r.urgency,
                report_date=r.report_date,
                submitted_at=r.submitted_at.astimezone(TZ),
                clinic_municipality=r.clinic_municipality,
                categories=category_ids(r.categories),
                flow_run_id=r.flow_run_id,
                flow_run_url=flow_run_url(r.flow_run_id),
                handovers=[handover_out(h, TZ) for h in hs.get(r.id, [])],
            )
            for r in reports
        ],
    )


def csv_rows(export: AuditExport) -> list[list[Any]]:
    """One row per handover (a report without handovers gets one row with those cells empty);
    values as they are, :func:`orosflow.core.csvfile.write_csv` makes the cells."""
    rows = []
    for r in export.reports:
        head = [
            r.reference,
            r.status,
            r.urgency,
            r.report_date,
            r.submitted_at,
            r.clinic_municipality,
            ",".join(r.categories),
            r.flow_run_id,
        ]
        for h in r.handovers or [None]:
            tail: list[Any] = (
                [None] * (len(CSV_COLUMNS) - len(head))
                if h is None
                else [
                    h.position,
                    h.attempt,
                    h.unit_id,
                    h.unit_name,
                    h.unit_kind,
                    h.municipality,
                    h.municipality_name,
                    h.rule,
                    h.explanation,
                    h.status,
                    h.phone_required,
                    h.created_at,
                    h.notified_at,
                    h.deadline_at,
                    h.confirmed_at,
                    h.confirmed_by,
                    h.minutes_to_confirmation,
                    h.escalation_step,
                    h.escalated_from,
                    h.rerouted_from,
                    h.declined_at,
                    h.declined_by,
                    h.decline_reason,
                ]
            )
            rows.append(head + tail)
    return rows


def export_csv(export: AuditExport, sep: str = DEFAULT_SEPARATOR) -> tuple[str, int]:
    """The CSV text (Swedish conventions, see :mod:`orosflow.core.csvfile`) and its number of
    data rows."""
    rows = csv_rows(export)
    return write_csv(CSV_COLUMNS, rows, sep=sep), len(rows)


def record_export(s: Session, actor: str, fmt: str, export: AuditExport, rows: int) -> None:
    """Put the export itself on record (who, which filter, how much); no personal data."""
    append_event(
        s,
        actor=actor,
        action="audit.exported",
        details={
            "format": fmt,
            "filters": export.filters.query(),
            "reports": len(export.reports),
            "rows": rows,
        },
    )


def export_filename(fmt: str, at: datetime, kind: str = "granskning") -> str:
    """``orosflow-granskning-20261126-1042.csv``: Stockholm time, no personal data."""
    return f"orosflow-{kind}-{at.astimezone(TZ).strftime('%Y%m%d-%H%M')}.{fmt}"
