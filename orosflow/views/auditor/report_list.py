"""The auditor's list of reports: one page of matching reports, newest first, with their
recipients and the time from first notification to first confirmation."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime

from pydantic import BaseModel, Field
from sqlalchemy import func
from sqlmodel import Session, select

from models.tables import Handover, Report
from orosflow.handover.lifecycle import HANDOVER_LABELS, REPORT_LABELS
from orosflow.views.auditor.filters import AuditFilters, conditions, handovers_of, reports_query
from orosflow.views.auditor.labels import URGENCY_LABELS
from orosflow.views.handover_summary import minutes_between

PER_PAGE = 50
MAX_PER_PAGE = 200


class AuditRecipient(BaseModel):
    unit_id: str
    unit_name: str
    municipality: str
    municipality_name: str
    status: str
    status_label: str


class AuditReportRow(BaseModel):
    reference: str
    submitted_at: datetime
    urgency: str
    urgency_label: str
    status: str
    status_label: str
    recipients: list[AuditRecipient]
    minutes_to_confirmation: float | None = Field(
        description="Från första avisering till första bekräftelse, i minuter."
    )


class AuditReportPage(BaseModel):
    filters: AuditFilters
    page: int
    per_page: int
    total: int
    pages: int
    items: list[AuditReportRow]


def _first(values: Iterable[datetime | None]) -> datetime | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def _row(r: Report, hs: list[Handover]) -> AuditReportRow:
    return AuditReportRow(
        reference=r.reference,
        submitted_at=r.submitted_at,
        urgency=r.urgency,
        urgency_label=URGENCY_LABELS.get(r.urgency, r.urgency),
        status=r.status,
        status_label=REPORT_LABELS.get(r.status, r.status),
        recipients=[
            AuditRecipient(
                unit_id=h.unit_id,
                unit_name=h.unit_name,
                municipality=h.municipality,
                municipality_name=h.municipality_name,
                status=h.status,
                status_label=HANDOVER_LABELS.get(h.status, h.status),
            )
            for h in hs
        ],
        minutes_to_confirmation=minutes_between(
            _first(h.notified_at for h in hs), _first(h.confirmed_at for h in hs)
        ),
    )


def list_reports(
    s: Session, f: AuditFilters, page: int = 1, per_page: int = PER_PAGE
) -> AuditReportPage:
    """One page of matching reports, newest first, with their recipients."""
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    conds = conditions(f)
    total = s.exec(select(func.count()).select_from(Report).where(*conds)).one()
    pages = max(1, math.ceil(total / per_page))
    page = max(1, min(page, pages))
    reports = list(s.exec(reports_query(conds).offset((page - 1) * per_page).limit(per_page)))
    hs = handovers_of(s, [r.id for r in reports])
    return AuditReportPage(
        filters=f,
        page=page,
        per_page=per_page,
        total=total,
        pages=pages,
        items=[_row(r, hs.get(r.id, [])) for r in reports],
    )
