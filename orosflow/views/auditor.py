"""The auditor's view of reports: metadata only (states, recipients, times, rules), no content.

Auditors review how reports moved, not what they say. So this module reads only columns that
hold no personal data (report reference/status/urgency/times/category codes, handovers, audit
events, the times and actors of phone contacts, feedback and mails). It never decrypts and
never even loads the ciphertext columns: it must not call ``content.read_report`` or
``lifecycle.read_feedback``. The portal's pages and its JSON API both call these functions, so
a filter, a count or a percentile means the same thing in both places.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from pydantic import BaseModel, Field
from sqlalchemy import exists, func, or_
from sqlalchemy.orm import aliased, defer
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from models.form import categories as form_categories
from models.tables import (
    AuditEvent,
    Feedback,
    Handover,
    HandoverStatus,
    LifecycleMail,
    PhoneContact,
    Report,
)
from orosflow.core.audit import ChainStatus, append_event, verify_chain
from orosflow.core.clock import utcnow
from orosflow.core.settings import get_settings
from orosflow.handover.lifecycle import DECLINE_REASONS, HANDOVER_LABELS, REPORT_LABELS
from routing import RULES, UnknownCodeError, get_router
from routing.hours import TZ

PER_PAGE = 50
MAX_PER_PAGE = 200
#: Percentiles of the time from notification to confirmation, by the nearest-rank method.
PERCENTILES = (50, 90, 95)
PERCENTILE_METHOD = "nearest-rank"
UNKNOWN_CATEGORY = "unknown"
NO_RECIPIENT = ""

URGENCY_LABELS: dict[str, str] = {"acute": "akut", "not_acute": "inte akut"}

#: Swedish labels of the audit actions the code base writes; unknown actions show their code.
ACTION_LABELS: dict[str, str] = {
    "report.received": "Anmälan mottagen och sparad krypterad",
    "report.status": "Anmälans status ändrad",
    "report.escalated": "Anmälan eskalerad (telefonkontakt saknas)",
    "report.erased": "Anmälans innehåll raderat (gallring)",
    "flow_run.created": "Flödeskörning skapad i Prefect",
    "flow_run.attached": "Flödeskörning kopplad till anmälan",
    "content.read": "Anmälans innehåll läst",
    "handover.created": "Överlämning skapad (mottagare vald)",
    "handover.notified": "Mottagaren aviserad via e-post",
    "handover.confirmed": "Mottagandet bekräftat",
    "handover.escalated": "Överlämningen eskalerad",
    "handover.declined": "Mottagaren avböjde",
    "handover.unresolved": "Överlämningen misslyckades (ingen kanal)",
    "handover.fail_closed": "Ingen nåbar mottagare – kurator och drift larmade",
    "handover.reroute_failed": "Omdirigering misslyckades",
    "mail.sent": "E-post skickad",
    "mail.undeliverable": "E-post kunde inte skickas",
    "phone.recorded": "Telefonkontakt registrerad",
    "feedback.recorded": "Återkoppling registrerad",
    "access.denied": "Åtkomst nekad",
    "audit.exported": "Granskningsdata exporterad",
}

#: Rules that are not routing rules (those are in ``routing.RULES``): intake and lifecycle.
OTHER_RULES: dict[str, str] = {
    "R-INTAKE": "Anmälan validerades och sparades krypterad innan kuratorn fick kvitto.",
    "L-NOTIFY": "Mottagaren aviseras via e-post utan personuppgifter; fristen för "
    "bekräftelse börjar löpa.",
    "L-FAIL": "Mottagaren saknar kanal; överlämningen misslyckas.",
    "L-ROUTE": "Anmälan har dirigerats till sina mottagare.",
    "L-CONFIRM": "Den mottagande enheten bekräftar mottagandet; överlämningen är klar.",
    "L-CONFIRM-VIA-ESCALATION": "Eskaleringsmottagaren bekräftade; den ursprungliga "
    "överlämningen stängs.",
    "L-ESCALATE-REMIND": "Ingen bekräftelse inom fristen: påminnelse till enheten.",
    "L-ESCALATE-SOCIALJOUR": "Fortfarande obekräftad: ny överlämning till socialjouren "
    "(eller till mottagningen när enheten redan var socialjouren).",
    "L-ESCALATE-COUNSELOR": "Fortfarande obekräftad: kuratorn ombeds ringa socialtjänsten.",
    "L-ESCALATE-PHONE": "Akut anmälan utan registrerad telefonkontakt: kuratorn påminns.",
    "L-DECLINE-REROUTE": "Enheten avböjde; anmälan skickas vidare till rätt mottagare.",
    "L-FAIL-CLOSED": "Ingen nåbar mottagare: kuratorn och driften larmas.",
    "L-PHONE": "Kuratorns telefonkontakt med socialtjänsten registrerad.",
    "L-FEEDBACK": "Socialtjänsten har lämnat återkoppling (innehållet visas inte här).",
    "L-CLOSE": "Ärendet är avslutat.",
}

MAIL_KIND_LABELS: dict[str, str] = {
    "reminder": "påminnelse till enheten",
    "counselor_phone": "uppmaning till kuratorn att ringa",
    "phone_missing": "påminnelse om telefonkontakt",
    "feedback_notice": "besked till kuratorn om återkoppling",
    "rerouted": "besked till kuratorn om omdirigering",
    "unresolved_counselor": "larm till kuratorn (ingen mottagare)",
    "unresolved_operator": "larm till driften (ingen mottagare)",
}


def rule_text(rule: str | None) -> str | None:
    """The general Swedish description of a rule id, or ``None`` when unknown."""
    if not rule:
        return None
    if rule in RULES:
        return RULES[rule]
    if rule in OTHER_RULES:
        return OTHER_RULES[rule]
    match = re.fullmatch(r"RET-(\d+)D", rule)
    if match:
        return f"Gallring: innehållet raderas {match.group(1)} dagar efter inlämning."
    return None


def municipality_label(code: str) -> str:
    """``"0182 Nacka"``; the bare code when the directory does not know it."""
    try:
        return f"{code} {get_router().municipality_name(code)}"
    except (UnknownCodeError, KeyError, ValueError):
        return code


def category_label(category_id: str) -> str:
    if category_id == UNKNOWN_CATEGORY:
        return "okänd"
    known = form_categories().get(category_id)
    return known.label if known else category_id


def duration_text(minutes: float | None) -> str:
    """Swedish short form of a duration: ``"45 min"``, ``"2 h 5 min"``, ``"3 d 4 h"``."""
    if minutes is None:
        return "–"
    total = round(minutes)
    if total < 60:
        return f"{total} min"
    hours, mins = divmod(total, 60)
    if hours < 24:
        return f"{hours} h {mins} min" if mins else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def _minutes(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() / 60, 2)


# --- filters ----------------------------------------------------------------------------------


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
            return date.fromisoformat(raw)
        except ValueError:
            bad(field, "date_invalid", "Ange ett datum som ÅÅÅÅ-MM-DD, t.ex. 2026-11-23.")
            return None

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
        bad("urgency", "urgency_invalid", "Välj akut eller inte akut.")
    if errors:
        raise FilterError(errors)
    return AuditFilters(
        from_date=start, to_date=end, municipality=code, status=state, urgency=level
    )


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=TZ).astimezone(UTC)


def _conditions(f: AuditFilters) -> list[ColumnElement[bool]]:
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


def _reports(conds: Sequence[ColumnElement[bool]]) -> Any:
    """Report rows without the ciphertext column (metadata never needs it)."""
    return (
        select(Report)
        .options(defer(Report.payload_enc))  # type: ignore[arg-type]
        .where(*conds)
        .order_by(col(Report.submitted_at).desc(), col(Report.reference).desc())
    )


def _handovers_of(s: Session, report_ids: Sequence[str]) -> dict[str, list[Handover]]:
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


# --- the report list --------------------------------------------------------------------------


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
        minutes_to_confirmation=_minutes(
            _first(h.notified_at for h in hs), _first(h.confirmed_at for h in hs)
        ),
    )


def list_reports(
    s: Session, f: AuditFilters, page: int = 1, per_page: int = PER_PAGE
) -> AuditReportPage:
    """One page of matching reports, newest first, with their recipients."""
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    conds = _conditions(f)
    total = s.exec(select(func.count()).select_from(Report).where(*conds)).one()
    pages = max(1, math.ceil(total / per_page))
    page = max(1, min(page, pages))
    reports = list(s.exec(_reports(conds).offset((page - 1) * per_page).limit(per_page)))
    hs = _handovers_of(s, [r.id for r in reports])
    return AuditReportPage(
        filters=f,
        page=page,
        per_page=per_page,
        total=total,
        pages=pages,
        items=[_row(r, hs.get(r.id, [])) for r in reports],
    )


# --- one report's chain -----------------------------------------------------------------------


class AuditHandover(BaseModel):
    id: str
    position: int
    attempt: int
    unit_id: str
    unit_name: str
    unit_kind: str
    municipality: str
    municipality_name: str
    rule: str
    explanation: str
    status: str
    status_label: str
    phone_required: bool
    directory_version: str
    created_at: datetime
    notified_at: datetime | None
    deadline_at: datetime | None
    confirmed_at: datetime | None
    confirmed_by: str | None
    minutes_to_confirmation: float | None
    escalation_step: int
    last_escalated_at: datetime | None
    escalated_from: str | None
    rerouted_from: str | None
    declined_at: datetime | None
    declined_by: str | None
    decline_reason: str | None
    decline_reason_label: str | None


def handover_out(h: Handover) -> AuditHandover:
    return AuditHandover(
        id=h.id,
        position=h.position,
        attempt=h.attempt,
        unit_id=h.unit_id,
        unit_name=h.unit_name,
        unit_kind=h.unit_kind,
        municipality=h.municipality,
        municipality_name=h.municipality_name,
        rule=h.rule,
        explanation=h.explanation,
        status=h.status,
        status_label=HANDOVER_LABELS.get(h.status, h.status),
        phone_required=h.phone_required,
        directory_version=h.directory_version,
        created_at=h.created_at,
        notified_at=h.notified_at,
        deadline_at=h.deadline_at,
        confirmed_at=h.confirmed_at,
        confirmed_by=h.confirmed_by,
        minutes_to_confirmation=_minutes(h.notified_at, h.confirmed_at),
        escalation_step=h.escalation_step,
        last_escalated_at=h.last_escalated_at,
        escalated_from=h.escalated_from,
        rerouted_from=h.rerouted_from,
        declined_at=h.declined_at,
        declined_by=h.declined_by,
        decline_reason=h.decline_reason,
        decline_reason_label=DECLINE_REASONS.get(h.decline_reason or "", h.decline_reason),
    )


class AuditEventOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    action: str
    action_label: str
    rule: str | None
    rule_explanation: str | None
    handover_id: str | None
    unit_name: str | None
    details: dict[str, Any]
    broken: bool = Field(False, description="Den första händelse där kedjan inte stämmer.")


class AuditPhoneContact(BaseModel):
    unit_id: str | None
    answered_by: str
    called_at: datetime
    recorded_at: datetime
    recorded_by: str


class AuditFeedbackMeta(BaseModel):
    """That feedback was recorded, when and by whom; the outcome is encrypted and not shown."""

    unit_id: str
    recorded_at: datetime
    recorded_by: str


class AuditMail(BaseModel):
    kind: str
    kind_label: str
    created_at: datetime
    sent_at: datetime | None
    attempts: int


class ChainStatusOut(BaseModel):
    ok: bool
    events: int
    head: str
    first_broken_seq: int | None
    reason: str | None
    message: str


def chain_out(status: ChainStatus) -> ChainStatusOut:
    if status.ok:
        message = f"Kedjan är hel ({status.events} händelser)"
    else:
        message = (
            f"Kedjan är bruten vid händelse {status.first_broken_seq}: {status.reason}. "
            "Händelser kan ha ändrats, tagits bort eller flyttats."
        )
    return ChainStatusOut(
        ok=status.ok,
        events=status.events,
        head=status.head,
        first_broken_seq=status.first_broken_seq,
        reason=status.reason,
        message=message,
    )


def chain_status(s: Session) -> ChainStatusOut:
    """Verify the whole hash chain (every event of every report)."""
    return chain_out(verify_chain(s))


class AuditReportChain(BaseModel):
    reference: str
    status: str
    status_label: str
    urgency: str
    urgency_label: str
    report_date: date
    submitted_at: datetime
    submitted_by: str
    clinic_municipality: str
    categories: list[str]
    category_labels: list[str]
    flow_run_id: str | None
    flow_run_url: str | None
    handovers: list[AuditHandover]
    events: list[AuditEventOut]
    phone_contacts: list[AuditPhoneContact]
    feedback: list[AuditFeedbackMeta]
    mails: list[AuditMail]
    chain: ChainStatusOut


def flow_run_url(flow_run_id: str | None) -> str | None:
    if not flow_run_id:
        return None
    return f"{get_settings().prefect_ui_url.rstrip('/')}/runs/flow-run/{flow_run_id}"


def _category_ids(raw: str | None) -> list[str]:
    """Category codes of a report; empty for old rows stored before codes were kept."""
    return [c.strip() for c in (raw or "").split(",") if c.strip()]


def _details(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {"unreadable": True}
    return value if isinstance(value, dict) else {"value": value}


def report_chain(s: Session, reference: str) -> AuditReportChain | None:
    """Everything recorded about one report except its content; ``None`` if unknown."""
    ref = reference.strip().upper()
    report = s.exec(_reports([col(Report.reference) == ref])).first()
    if report is None:
        return None
    hs = _handovers_of(s, [report.id]).get(report.id, [])
    by_id = {h.id: h for h in hs}
    status = verify_chain(s)
    denied = f'%"reference": "{ref}"%'
    events = s.exec(
        select(AuditEvent)
        .where(
            or_(
                col(AuditEvent.report_id) == report.id,
                (col(AuditEvent.action) == "access.denied") & col(AuditEvent.details).like(denied),
            )
        )
        .order_by(col(AuditEvent.seq))
    )
    out_events = []
    for ev in events:
        h = by_id.get(ev.handover_id or "")
        explanation = h.explanation if h is not None and ev.rule == h.rule else rule_text(ev.rule)
        assert ev.seq is not None
        out_events.append(
            AuditEventOut(
                seq=ev.seq,
                at=ev.at,
                actor=ev.actor,
                action=ev.action,
                action_label=ACTION_LABELS.get(ev.action, ev.action),
                rule=ev.rule,
                rule_explanation=explanation,
                handover_id=ev.handover_id,
                unit_name=h.unit_name if h else None,
                details=_details(ev.details),
                broken=not status.ok and ev.seq == status.first_broken_seq,
            )
        )
    phones = s.exec(
        select(PhoneContact)
        .where(PhoneContact.report_id == report.id)
        .order_by(col(PhoneContact.called_at))
    )
    feedback = s.exec(
        select(Feedback)
        .options(defer(Feedback.data_enc))  # type: ignore[arg-type]
        .where(Feedback.report_id == report.id)
        .order_by(col(Feedback.recorded_at))
    )
    mails = s.exec(
        select(LifecycleMail)
        .where(LifecycleMail.report_id == report.id)
        .order_by(col(LifecycleMail.created_at))
    )
    cats = _category_ids(report.categories)
    return AuditReportChain(
        reference=report.reference,
        status=report.status,
        status_label=REPORT_LABELS.get(report.status, report.status),
        urgency=report.urgency,
        urgency_label=URGENCY_LABELS.get(report.urgency, report.urgency),
        report_date=report.report_date,
        submitted_at=report.submitted_at,
        submitted_by=report.submitted_by,
        clinic_municipality=report.clinic_municipality,
        categories=cats,
        category_labels=[category_label(c) for c in cats or [UNKNOWN_CATEGORY]],
        flow_run_id=report.flow_run_id,
        flow_run_url=flow_run_url(report.flow_run_id),
        handovers=[handover_out(h) for h in hs],
        events=out_events,
        phone_contacts=[
            AuditPhoneContact(
                unit_id=p.unit_id,
                answered_by=p.answered_by,
                called_at=p.called_at,
                recorded_at=p.recorded_at,
                recorded_by=p.recorded_by,
            )
            for p in phones
        ],
        feedback=[
            AuditFeedbackMeta(
                unit_id=fb.unit_id, recorded_at=fb.recorded_at, recorded_by=fb.recorded_by
            )
            for fb in feedback
        ],
        mails=[
            AuditMail(
                kind=m.kind,
                kind_label=MAIL_KIND_LABELS.get(m.kind, m.kind),
                created_at=m.created_at,
                sent_at=m.sent_at,
                attempts=m.attempts,
            )
            for m in mails
        ],
        chain=chain_out(status),
    )


# --- statistics -------------------------------------------------------------------------------


class StatsCount(BaseModel):
    key: str
    label: str
    count: int


class DurationStats(BaseModel):
    """Minutes from notification to confirmation of confirmed handovers."""

    group: str
    label: str
    count: int
    p50_minutes: float | None
    p90_minutes: float | None
    p95_minutes: float | None


class HandoverCounts(BaseModel):
    total: int
    confirmed: int
    escalated: int = Field(description="Överlämningar som nått minst ett eskaleringssteg.")
    overdue_open: int = Field(description="Obekräftade överlämningar vars frist har gått ut.")
    confirmed_late: int = Field(description="Bekräftade efter fristen.")
    declined: int
    failed: int


class AuditStats(BaseModel):
    filters: AuditFilters
    generated_at: datetime
    reports: int
    per_municipality: list[StatsCount] = Field(
        description="Anmälningar per mottagande kommun; en anmälan med mottagare i flera "
        "kommuner räknas i var och en."
    )
    per_category: list[StatsCount] = Field(
        description="Anmälningar per kategori; en anmälan med flera kategorier räknas i varje."
    )
    per_month: list[StatsCount] = Field(description="Anmälningar per inlämningsmånad (Stockholm).")
    per_status: list[StatsCount]
    time_to_confirmation: list[DurationStats] = Field(
        description="Tid från avisering till bekräftelse per bekräftad överlämning, totalt och "
        "per brådska."
    )
    percentile_method: str = Field(
        PERCENTILE_METHOD,
        description="Närmaste rang: värdet på plats ceil(p/100·n) i sorterad ordning.",
    )
    handovers: HandoverCounts


def nearest_rank(sorted_values: Sequence[float], p: float) -> float | None:
    """The p-th percentile by nearest rank: the ceil(p/100·n)-th smallest value."""
    if not sorted_values:
        return None
    k = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[k - 1]


def duration_stats(group: str, label: str, minutes: Iterable[float]) -> DurationStats:
    values = sorted(minutes)
    p50, p90, p95 = (nearest_rank(values, p) for p in PERCENTILES)
    return DurationStats(
        group=group,
        label=label,
        count=len(values),
        p50_minutes=p50,
        p90_minutes=p90,
        p95_minutes=p95,
    )


def _count_rows(counts: dict[str, int], label: Any, order: str = "count") -> list[StatsCount]:
    rows = [StatsCount(key=k, label=label(k), count=v) for k, v in counts.items()]
    if order == "key":
        return sorted(rows, key=lambda r: r.key)
    return sorted(rows, key=lambda r: (-r.count, r.label))


def stats(s: Session, f: AuditFilters) -> AuditStats:
    """Counts and confirmation times over the matching reports.

    With a municipality filter, the handover figures (per municipality, confirmation times,
    overdue/escalated) count only the handovers to that municipality.
    """
    conds = _conditions(f)
    rows = s.exec(
        select(
            Report.id, Report.categories, Report.submitted_at, Report.urgency, Report.status
        ).where(*conds)
    ).all()
    urgency_of: dict[str, str] = {}
    per_category: dict[str, int] = defaultdict(int)
    per_month: dict[str, int] = defaultdict(int)
    per_status: dict[str, int] = defaultdict(int)
    for rid, cats, submitted_at, urgency, status in rows:
        urgency_of[rid] = urgency
        for c in set(_category_ids(cats)) or {UNKNOWN_CATEGORY}:
            per_category[c] += 1
        per_month[submitted_at.astimezone(TZ).strftime("%Y-%m")] += 1
        per_status[status] += 1

    hq = select(Handover).join(Report, col(Handover.report_id) == col(Report.id)).where(*conds)
    if f.municipality:
        hq = hq.where(col(Handover.municipality) == f.municipality)
    handovers = list(s.exec(hq))
    per_municipality: dict[str, set[str]] = defaultdict(set)
    for h in handovers:
        per_municipality[h.municipality].add(h.report_id)
    if not f.municipality:
        without = set(urgency_of) - {h.report_id for h in handovers}
        if without:
            per_municipality[NO_RECIPIENT] = without

    now = utcnow()
    delays: dict[str, list[float]] = defaultdict(list)
    counts = dict.fromkeys(("confirmed", "escalated", "overdue", "late", "declined", "failed"), 0)
    for h in handovers:
        minutes = _minutes(h.notified_at, h.confirmed_at)
        if minutes is not None:
            delays[urgency_of.get(h.report_id, "")].append(minutes)
        counts["confirmed"] += h.status == HandoverStatus.CONFIRMED
        counts["escalated"] += h.escalation_step > 0 or h.status == HandoverStatus.ESCALATED
        counts["overdue"] += (
            h.status in (HandoverStatus.NOTIFIED, HandoverStatus.ESCALATED)
            and h.deadline_at is not None
            and h.deadline_at < now
        )
        counts["late"] += (
            h.confirmed_at is not None
            and h.deadline_at is not None
            and h.confirmed_at > h.deadline_at
        )
        counts["declined"] += h.status == HandoverStatus.DECLINED
        counts["failed"] += h.status == HandoverStatus.FAILED

    durations = [duration_stats("all", "Alla", [m for v in delays.values() for m in v])]
    durations += [
        duration_stats(u, URGENCY_LABELS[u].capitalize(), delays.get(u, [])) for u in URGENCY_LABELS
    ]
    return AuditStats(
        filters=f,
        generated_at=now,
        reports=len(rows),
        per_municipality=_count_rows(
            {k: len(v) for k, v in per_municipality.items()},
            lambda c: municipality_label(c) if c else "Ingen mottagare ännu",
        ),
        per_category=_count_rows(per_category, category_label),
        per_month=_count_rows(per_month, lambda m: m, order="key"),
        per_status=_count_rows(per_status, lambda st: REPORT_LABELS.get(st, st)),
        time_to_confirmation=durations,
        handovers=HandoverCounts(
            total=len(handovers),
            confirmed=counts["confirmed"],
            escalated=counts["escalated"],
            overdue_open=counts["overdue"],
            confirmed_late=counts["late"],
            declined=counts["declined"],
            failed=counts["failed"],
        ),
    )


# --- export -----------------------------------------------------------------------------------


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
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> str:
    """A cell a spreadsheet will not run: text starting with = + - @ (or tab/CR) gets a leading
    apostrophe (OWASP CSV injection)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "ja" if value else "nej"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def export_data(s: Session, f: AuditFilters, actor: str) -> AuditExport:
    """All matching reports (newest first) with their handovers' metadata."""
    reports = list(s.exec(_reports(_conditions(f))))
    hs = _handovers_of(s, [r.id for r in reports])
    return AuditExport(
        exported_at=utcnow(),
        exported_by=actor,
        filters=f,
        reports=[
            AuditExportReport(
                reference=r.reference,
                status=r.status,
                urgency=r.urgency,
                report_date=r.report_date,
                submitted_at=r.submitted_at,
                clinic_municipality=r.clinic_municipality,
                categories=_category_ids(r.categories),
                flow_run_id=r.flow_run_id,
                flow_run_url=flow_run_url(r.flow_run_id),
                handovers=[handover_out(h) for h in hs.get(r.id, [])],
            )
            for r in reports
        ],
    )


def csv_rows(export: AuditExport) -> list[list[str]]:
    """One row per handover (a report without handovers gets one row with those cells empty)."""
    rows = []
    for r in export.reports:
        head = [
            r.reference,
            r.status,
            r.urgency,
            r.report_date.isoformat(),
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
            rows.append([csv_safe(v) for v in head + tail])
    return rows


def export_csv(export: AuditExport) -> tuple[str, int]:
    """The CSV text (UTF-8 with BOM so spreadsheets read å, ä, ö) and its number of data rows."""
    rows = csv_rows(export)
    buf = io.StringIO()
    buf.write("\ufeff")
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(rows)
    return buf.getvalue(), len(rows)


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


def export_filename(fmt: str, at: datetime) -> str:
    return f"orosflow-granskning-{at.astimezone(TZ).strftime('%Y%m%d-%H%M')}.{fmt}"
