"""Finding reports and handovers the way every action and view needs them."""

from __future__ import annotations

from sqlmodel import Session, col, func, or_, select

from models.tables import AuditEvent, Handover, Report
from orosflow.handover.lifecycle.states import H, LifecycleError

_PICK_ORDER = {H.NOTIFIED: 0, H.ESCALATED: 0, H.CREATED: 1, H.CONFIRMED: 2, H.DECLINED: 3}


def report_by_reference(session: Session, reference: str, *, lock: bool = False) -> Report:
    stmt = select(Report).where(Report.reference == reference.strip().upper())
    if lock:
        stmt = stmt.with_for_update()
    report = session.exec(stmt).first()
    if report is None:
        raise LifecycleError("report_not_found", f"Det finns ingen anmälan med nummer {reference}.")
    return report


def handover_for_unit(session: Session, report: Report, unit_id: str) -> Handover:
    """The unit's current handover of the report (open before confirmed before closed)."""
    rows = session.exec(
        select(Handover)
        .where(Handover.report_id == report.id, Handover.unit_id == unit_id)
        .with_for_update()
    ).all()
    if not rows:
        raise LifecycleError(
            "no_handover",
            f"Enheten {unit_id} har ingen överlämning av {report.reference}. Kontrollera "
            "enhetens id (t.ex. intake-0180).",
        )
    return min(rows, key=lambda h: (_PICK_ORDER.get(h.status, 4), -h.attempt))


def report_handovers(session: Session, report_id: str) -> list[Handover]:
    return list(
        session.exec(
            select(Handover)
            .where(Handover.report_id == report_id)
            .order_by(col(Handover.position), col(Handover.attempt), col(Handover.created_at))
        )
    )


def obligation_settled(session: Session, h: Handover) -> bool:
    """A recipient slot (report, position) is settled once any of its handovers is confirmed:
    the original, its escalation target or a re-routed attempt."""
    return (
        session.exec(
            select(Handover.id).where(
                Handover.report_id == h.report_id,
                Handover.position == h.position,
                Handover.status == H.CONFIRMED,
            )
        ).first()
        is not None
    )


def last_progress(session: Session, report_id: str) -> int | None:
    """Audit position of the report's last sent mail, not counting the alert that its delivery
    is stalled (which must not restart the count it reports)."""
    return session.exec(
        select(func.max(AuditEvent.seq)).where(
            AuditEvent.report_id == report_id,
            AuditEvent.action == "mail.sent",
            or_(col(AuditEvent.rule).is_(None), AuditEvent.rule != "L-RESTARTS-EXHAUSTED"),
        )
    ).one()


def restarts_since_last_send(session: Session, report_id: str) -> int:
    """Delivery runs the reconciler restarted for the report since a mail last went out: the
    count that bounds restarts (a later, unrelated failure starts from zero again)."""
    last_sent = last_progress(session, report_id)
    stmt = select(func.count()).where(
        AuditEvent.report_id == report_id, AuditEvent.action == "flow_run.restarted"
    )
    if last_sent is not None:
        stmt = stmt.where(col(AuditEvent.seq) > last_sent)
    return int(session.exec(stmt).one())
