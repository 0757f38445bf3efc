"""Service-layer steps of the concern-report flow, each safe to repeat.

The flow's tasks call these (in a worker thread); they take and return ids only, so nothing
personal passes through Prefect. Each state change appends its audit event in the same
transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlmodel import Session, col, select

from models.form import Child, ConcernForm
from models.tables import Handover, HandoverStatus, Report, ReportStatus
from orosflow.core.audit import append_event
from orosflow.core.clock import utcnow
from orosflow.core.crypto import load_keyring
from orosflow.core.db import session_scope
from orosflow.core.mail import Notification, message_id, rfc2822
from orosflow.core.settings import get_settings
from orosflow.handover.content import ReportContent, read_report
from orosflow.handover.validation import validate_form
from routing import Decision, RoutingRequest, get_router

SYSTEM = "system:concern-report"


class ReportInvalidNow(Exception):
    """Stored content no longer passes validation (e.g. directory changed); ids only."""


@dataclass(frozen=True)
class ReportSummary:
    reference: str
    urgency: str
    status: str


def load_and_revalidate(report_id: str) -> ReportSummary:
    """Decrypt and re-validate with the rules of today, as of the report's own date."""
    with session_scope() as session:
        content = read_report(
            session, report_id, keyring=load_keyring(), actor=SYSTEM, purpose="revalidate"
        )
        report = content.report
        try:
            validate_form(content.form, now=report.submitted_at)
        except Exception as exc:
            codes = ",".join(getattr(e, "code", "?") for e in getattr(exc, "errors", []))
            raise ReportInvalidNow(
                f"{report.reference}: stored form fails validation: {codes}"
            ) from None
        return ReportSummary(report.reference, report.urgency, report.status)


def routing_request(content: ReportContent) -> RoutingRequest:
    return routing_request_for(content.child, content.form)


def routing_request_for(child: Child, form: ConcernForm) -> RoutingRequest:
    """The router's view of one child: codes and flags only, never name or address."""
    return RoutingRequest(
        municipality=child.municipality,
        district=None if child.protected_identity else child.district,
        staying_municipality=child.staying_municipality,
        clinic_municipality=form.clinic.municipality,
        urgency=form.urgency.value,
        protected_identity=child.protected_identity,
        placed_by=child.placed_by,
        unaccompanied=child.unaccompanied,
        assigned_municipality=child.assigned_municipality,
        arrival_municipality=child.arrival_municipality,
        at=utcnow(),
    )


def _flatten(decision: Decision) -> list[Decision]:
    out = [decision]
    for extra in decision.also:
        out += _flatten(extra)
    seen: set[str] = set()
    unique = []
    for d in out:
        if d.unit_id not in seen:
            seen.add(d.unit_id)
            unique.append(d)
    return unique


def route_and_create_handovers(report_id: str) -> list[str]:
    """Route the report and store one handover per recipient (idempotent: reuses existing)."""
    with session_scope() as session:
        existing = session.exec(
            select(Handover).where(Handover.report_id == report_id).order_by(col(Handover.position))
        ).all()
        if existing:
            return [h.id for h in existing]
        content = read_report(
            session, report_id, keyring=load_keyring(), actor=SYSTEM, purpose="route"
        )
        decision = get_router().route(routing_request(content))
        now = utcnow()
        ids = []
        for position, d in enumerate(_flatten(decision)):
            hid = str(uuid.uuid4())
            handover = Handover(
                id=hid,
                report_id=report_id,
                position=position,
                municipality=d.municipality,
                municipality_name=d.municipality_name,
                unit_id=d.unit_id,
                unit_kind=d.unit_kind,
                unit_name=d.unit_name,
                email=d.email,
                phone=d.phone,
                phone_required=d.phone_required,
                rule=d.rule,
                explanation=d.explanation,
                directory_version=d.directory_version,
                message_id=message_id(hid),
                created_at=now,
            )
            session.add(handover)
            session.flush()
            append_event(
                session,
                actor=SYSTEM,
                action="handover.created",
                report_id=report_id,
                handover_id=hid,
                rule=d.rule,
                details={
                    "unit_id": d.unit_id,
                    "unit_kind": d.unit_kind,
                    "municipality": d.municipality,
                    "phone_required": d.phone_required,
                    "directory_version": d.directory_version,
                },
            )
            ids.append(hid)
        _set_report_status(session, content.report, ReportStatus.ROUTED, rule=decision.rule)
        return ids


def _set_report_status(session: Session, report: Report, status: str, rule: str | None) -> None:
    if report.status == status:
        return
    old, report.status = report.status, status
    session.add(report)
    append_event(
        session,
        actor=SYSTEM,
        action="report.status",
        report_id=report.id,
        rule=rule,
        details={"from": old, "to": status},
    )


def notification_for(handover_id: str) -> Notification | None:
    """What to send for a handover; ``None`` when it was already sent or cannot be sent."""
    with session_scope() as session:
        h = session.get(Handover, handover_id)
        assert h is not None, handover_id
        if h.status != HandoverStatus.CREATED:
            return None
        if not h.email:
            h.status = HandoverStatus.FAILED
            session.add(h)
            append_event(
                session,
                actor=SYSTEM,
                action="handover.unresolved",
                report_id=h.report_id,
                handover_id=h.id,
                rule=h.rule,
                details={"unit_id": h.unit_id, "reason": "no_email_channel"},
            )
            return None
        report = session.get(Report, h.report_id)
        assert report is not None
        content = read_report(
            session, report.id, keyring=load_keyring(), actor=SYSTEM, purpose="notify"
        )
        return Notification(
            handover_id=h.id,
            reference=report.reference,
            urgency=report.urgency,
            clinic_name=content.form.clinic.name,
            unit_name=h.unit_name,
            to=h.email,
            phone_required=h.phone_required,
            created_at_rfc2822=rfc2822(h.created_at),
            report_url=f"{get_settings().portal_url.rstrip('/')}/reports/{report.reference}",
        )


def mark_notified(handover_id: str) -> None:
    with session_scope() as session:
        h = session.get(Handover, handover_id)
        assert h is not None
        if h.status != HandoverStatus.CREATED:
            return
        from orosflow.handover.lifecycle import handover_deadline  # lifecycle imports this module

        report = session.get(Report, h.report_id)
        assert report is not None
        h.status, h.notified_at = HandoverStatus.NOTIFIED, utcnow()
        h.deadline_at = handover_deadline(report.urgency, h.unit_id, h.notified_at)
        session.add(h)
        append_event(
            session,
            actor=SYSTEM,
            action="handover.notified",
            report_id=h.report_id,
            handover_id=h.id,
            rule=h.rule,
            details={
                "unit_id": h.unit_id,
                "message_id": h.message_id,
                "deadline_at": h.deadline_at.isoformat(),
            },
        )


def failed_handovers(report_id: str) -> list[str]:
    with session_scope() as session:
        return [
            h.id
            for h in session.exec(
                select(Handover).where(
                    Handover.report_id == report_id, Handover.status == HandoverStatus.FAILED
                )
            )
        ]


def attach_flow_run(report_id: str, flow_run_id: str) -> None:
    """Remember which flow run works on the report, however it was started (reconciler input)."""
    with session_scope() as session:
        report = session.get(Report, report_id)
        if report is None or report.flow_run_id == flow_run_id:
            return
        previous = report.flow_run_id
        report.flow_run_id, report.flow_triggered_at = flow_run_id, utcnow()
        session.add(report)
        append_event(
            session,
            actor=SYSTEM,
            action="flow_run.attached",
            report_id=report_id,
            details={"flow_run_id": flow_run_id, "previous": previous},
        )


def reference_of(report_id: str) -> str:
    with session_scope() as session:
        report = session.get(Report, report_id)
        return report.reference if report else report_id
