"""Which reports the auditor looks at: the filter (period, municipality, status, urgency), its
checks with Swedish messages, and the queries every other auditor module builds on."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from pydantic import BaseModel, Field
from sqlalchemy import exists
from sqlalchemy.orm import aliased, defer
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from models.tables import Handover, Report
from orosflow.handover.lifecycle import REPORT_LABELS
from orosflow.views.auditor.labels import URGENCY_LABELS, municipality_label
from routing.hours import TZ


@dataclass(frozen=True)
class FilterFieldError:
    """One invalid filter value; ``field`` is the query parameter (and the form field id)."""

    field: str
    code: str
    message: str
    label: str

    def as_json(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message}


class FilterError(ValueError):
    """The filter had invalid values; nothing was queried."""

    def __init__(self, errors: list[FilterFieldError]) -> None:
        super().__init__(", ".join(e.field for e in errors))
        self.errors = errors


FILTER_LABELS = {
    "from_date": "Inkommen från och med",
    "to_date": "Inkommen till och med",
    "municipality": "Mottagande kommun",
    "status": "Status",
    "urgency": "Brådska",
}


class AuditFilters(BaseModel):
    """Which reports: submitted in a period (Stockholm dates, inclusive), handed to a
    municipality, in a state, of an urgency. Values are codes and dates only."""

    from_date: date | None = Field(None, description="Inkommen från och med (Stockholmsdatum).")
    to_date: date | None = Field(None, description="Inkommen till och med (Stockholmsdatum).")
    municipality: str | None = Field(
        None, description="Kommunkod för en mottagare av anmälan (4 siffror)."
    )
    status: str | None = Field(None, description="Anmälans status (kod).")
    urgency: str | None = Field(None, description="Brådska: acute eller not_acute.")

    def query(self) -> dict[str, str]:
        """The filter as query parameters (empty ones left out), for links and exports."""
        return {k: str(v) for k, v in self.model_dump(mode="json").items() if v not in (None, "")}

    def query_string(self) -> str:
        return urlencode(self.query())

    def is_empty(self) -> bool:
        return not self.query()


#: Filter dates outside this range are refused: 9999-12-31 plus a day, or 0001-01-01 in UTC,
#: does not exist (it was a 500).
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(9998, 12, 31)


def parse_filters(
    from_date: str | None = None,
    to_date: str | None = None,
    municipality: str | None = None,
    status: str | None = None,
    urgency: str | None = None,
) -> AuditFilters:
    """Check raw query values (empty means "any"); raise :class:`FilterError` listing every
    bad value with a Swedish message."""
    errors: list[FilterFieldError] = []

    def bad(field: str, code: str, message: str) -> None:
        errors.append(FilterFieldError(field, code, message, FILTER_LABELS[field]))

    def as_date(field: str, raw: str | None) -> date | None:
        raw = (raw or "").strip()
        if not raw:
            return None
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            bad(field, "date_invalid", "Ange ett datum som ÅÅÅÅ-MM-DD, t.ex. 2026-11-23.")
            return None
        if not FIRST_DAY <= day <= LAST_DAY:  # the period's ends in UTC must stay representable
            bad(field, "date_out_of_range", "Ange ett datum mellan 1900-01-01 och 9998-12-31.")
            return None
        return day

    start, end = as_date("from_date", from_date), as_date("to_date", to_date)
    if start and end and end < start:
        bad("to_date", "period_reversed", "Slutdatumet ligger före startdatumet.")
    code = (municipality or "").strip() or None
    if code and not re.fullmatch(r"\d{4}", code):
        bad("municipality", "municipality_invalid", "Ange en kommunkod med fyra siffror.")
    state = (status or "").strip() or None
    if state and state not in REPORT_LABELS:
        bad("status", "status_invalid", "Välj en av statusarna i listan.")
    level = (urgency or "").strip() or None
    if level and level not in URGENCY_LABELS:
        bad("urgency", "urgency_invalid", "Välj Akut eller Inte akut.")
    if errors:
        raise FilterError(errors)
    return AuditFilters(
        from_date=start, to_date=end, municipality=code, status=state, urgency=level
    )


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=TZ).astimezone(UTC)


def conditions(f: AuditFilters) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if f.from_date:
        conds.append(col(Report.submitted_at) >= _local_midnight(f.from_date))
    if f.to_date:
        conds.append(col(Report.submitted_at) < _local_midnight(f.to_date + timedelta(days=1)))
    if f.status:
        conds.append(col(Report.status) == f.status)
    if f.urgency:
        conds.append(col(Report.urgency) == f.urgency)
    if f.municipality:
        other = aliased(Handover)  # its own name, so it correlates with Report only
        conds.append(
            exists().where(other.report_id == col(Report.id), other.municipality == f.municipality)
        )
    return conds


def reports_query(conds: Sequence[ColumnElement[bool]]) -> Any:
    """Report rows without the ciphertext column (metadata never needs it)."""
    return (
        select(Report)
        .options(defer(Report.payload_enc))  # type: ignore[arg-type]
        .where(*conds)
        .order_by(col(Report.submitted_at).desc(), col(Report.reference).desc())
    )


def handovers_of(s: Session, report_ids: Sequence[str]) -> dict[str, list[Handover]]:
    out: dict[str, list[Handover]] = defaultdict(list)
    ids = list(report_ids)
    for i in range(0, len(ids), 500):
        rows = s.exec(
            select(Handover)
            .where(col(Handover.report_id).in_(ids[i : i + 500]))
            .order_by(col(Handover.position), col(Handover.attempt), col(Handover.created_at))
        )
        for h in rows:
            out[h.report_id].append(h)
    return out


def municipality_options(s: Session) -> list[tuple[str, str]]:
    """The recipient municipalities that occur in handovers, as (code, "code name")."""
    codes = s.exec(select(Handover.municipality).distinct()).all()
    return sorted(((c, municipality_label(c)) for c in codes), key=lambda x: x[1])
