"""One report's chain for the auditor: its handovers, every audit event (with the rule that
explains it), phone contacts, feedback and mails as metadata, and the hash chain's state."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, tzinfo
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import or_
from sqlalchemy.orm import defer
from sqlmodel import Session, col, select

from models.tables import AuditEvent, Feedback, Handover, LifecycleMail, PhoneContact, Report
from orosflow.core import anchors
from orosflow.core.anchors import AnchorCheck
from orosflow.handover.lifecycle import REPORT_LABELS
from orosflow.views.auditor.filters import handovers_of, reports_query
from orosflow.views.auditor.labels import (
    ACTION_LABELS,
    MAIL_KIND_LABELS,
    UNKNOWN_CATEGORY,
    URGENCY_LABELS,
    category_ids,
    category_label,
    flow_run_url,
    rule_text,
)
from orosflow.views.handover_summary import handover_summary


class AuditHandover(BaseModel):
    """One handover as the auditor sees it: the summary's fields under the names the export
    has always used (``id``, ``status_label``, ``decline_reason_label``), times in UTC
    (in the exports: Europe/Stockholm with the offset)."""

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
    opens_at: datetime | None = Field(
        None,
        description="När enheten tidigast läser skriftliga anmälningar; fristen räknas "
        "därifrån (null: enheten var öppen när anmälan dirigerades).",
    )
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


def handover_out(h: Handover, zone: tzinfo = UTC) -> AuditHandover:
    """The auditor's handover; times in UTC, or in ``zone`` (exports: Europe/Stockholm)."""
    summary = handover_summary(h, zone=zone)
    return AuditHandover.model_validate(
        {
            **summary,
            "id": summary["handover_id"],
            "status_label": summary["status_text"],
            # an unknown reason code shows as itself (the summary's text is None for it)
            "decline_reason_label": summary["decline_reason_text"] or h.decline_reason,
        }
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


class AnchorProblemOut(BaseModel):
    """An anchor (the chain head written outside the database) the chain no longer matches."""

    anchor: str = Field(description="Ankarfilens namn i ankarkatalogen.")
    at: datetime | None = Field(description="När ankaret skrevs.")
    seq: int | None = Field(description="Händelsen (position) som ankaret pekar på.")
    code: str = Field(
        description="chain_shorter (händelser i slutet borttagna), hash_differs (kedjan "
        "omskriven), event_missing eller unreadable (ankarfilen går inte att läsa)."
    )
    message: str


class ChainStatusOut(BaseModel):
    ok: bool = Field(description="Kedjan är hel och stämmer med alla ankare.")
    events: int
    head: str
    first_broken_seq: int | None
    reason: str | None
    anchors_checked: int = Field(0, description="Antal ankare som kedjan jämförts med.")
    anchor_problems: list[AnchorProblemOut] = Field(default_factory=list)
    message: str


def chain_out(check: AnchorCheck) -> ChainStatusOut:
    status = check.chain
    message = check.message()
    if not status.ok:
        message += " Händelser kan ha ändrats, tagits bort eller flyttats."
    return ChainStatusOut(
        ok=check.ok,
        events=status.events,
        head=status.head,
        first_broken_seq=status.first_broken_seq,
        reason=status.reason,
        anchors_checked=check.anchors_checked,
        anchor_problems=[
            AnchorProblemOut(anchor=p.anchor, at=p.at, seq=p.seq, code=p.code, message=p.message)
            for p in check.problems
        ],
        message=message,
    )


def chain_status(s: Session) -> ChainStatusOut:
    """Verify the whole hash chain (every event of every report) and every anchor."""
    return chain_out(anchors.verify(s))


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


def _details(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {"unreadable": True}
    return value if isinstance(value, dict) else {"value": value}


def report_chain(s: Session, reference: str) -> AuditReportChain | None:
    """Everything recorded about one report except its content; ``None`` if unknown."""
    ref = reference.strip().upper()
    report = s.exec(reports_query([col(Report.reference) == ref])).first()
    if report is None:
        return None
    hs = handovers_of(s, [report.id]).get(report.id, [])
    by_id = {h.id: h for h in hs}
    check = anchors.verify(s)
    status = check.chain
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
    cats = category_ids(report.categories)
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
        chain=chain_out(check),
    )
