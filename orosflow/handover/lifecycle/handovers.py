"""Handover rows: creating one, with its notification in the outbox.

Every handover is created by :func:`create_handover`, whatever made it (the route decided at
submission, a re-route after a decline, an escalation), so each one gets its audit event and
its notification mail (or, without a written channel, fails closed with alerts) in the
transaction that created it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from models.tables import Handover, Report
from orosflow.core.audit import append_event
from orosflow.core.clock import utcnow
from orosflow.core.mail import message_id
from orosflow.handover.lifecycle.outbox import enqueue_mail, fail_closed
from routing import Decision, Router, Unit


def create_handover(
    session: Session,
    report: Report,
    decision: Decision,
    *,
    position: int,
    actor: str,
    attempt: int = 1,
    rule: str | None = None,
    explanation: str | None = None,
    escalated_from: str | None = None,
    rerouted_from: str | None = None,
    details: dict[str, Any] | None = None,
) -> Handover:
    """Store one recipient of the written report, its ``handover.created`` event and its
    notification in the outbox; with no e-mail channel it fails closed at once (counselor
    and operator alerted through the outbox)."""
    hid = str(uuid.uuid4())
    rule = rule or decision.rule
    h = Handover(
        id=hid,
        report_id=report.id,
        attempt=attempt,
        position=position,
        municipality=decision.municipality,
        municipality_name=decision.municipality_name,
        unit_id=decision.unit_id,
        unit_kind=decision.unit_kind,
        unit_name=decision.unit_name,
        email=decision.email,
        phone=decision.phone,
        phone_required=decision.phone_required,
        rule=rule,
        explanation=(explanation or decision.explanation)[:2000],
        directory_version=decision.directory_version,
        message_id=message_id(hid),
        created_at=utcnow(),
        opens_at=decision.opens_at,
        escalated_from=escalated_from,
        rerouted_from=rerouted_from,
    )
    session.add(h)
    session.flush()
    append_event(
        session,
        actor=actor,
        action="handover.created",
        report_id=report.id,
        handover_id=hid,
        rule=rule,
        details={
            "unit_id": h.unit_id,
            "unit_kind": h.unit_kind,
            "municipality": h.municipality,
            "attempt": attempt,
            "phone_required": h.phone_required,
            "opens_at": h.opens_at.isoformat() if h.opens_at else None,
            "escalated_from": escalated_from,
            "rerouted_from": rerouted_from,
            "has_email_channel": bool(h.email),
            "directory_version": h.directory_version,
            **(details or {}),
        },
    )
    if h.email:
        enqueue_mail(session, hid, "notification", report.id, hid, new_id=True)
    else:
        fail_closed(
            session,
            h,
            reference=report.reference,
            actor=actor,
            reason="no_email_channel",
            rule=rule,
        )
    return h


def unit_decision(
    router: Router, unit: Unit, origin: Handover, at: datetime, *, phone_required: bool
) -> Decision:
    """A decision for a unit chosen by the lifecycle (escalation target, a named right unit),
    with the unit's next opening as of ``at``."""
    if unit.municipality:
        municipality = unit.municipality
    elif origin.municipality in unit.municipalities or not unit.municipalities:
        municipality = origin.municipality
    else:
        municipality = unit.municipalities[0]
    return Decision(
        municipality=municipality,
        municipality_name=router.municipality_name(municipality),
        unit_kind=unit.kind,
        unit_id=unit.id,
        unit_name=unit.name,
        phone_required=phone_required,
        phone=unit.phone,
        email=unit.email,
        portal_group=unit.portal_group,
        channel_verified=unit.channel_verified,
        rule="L-LIFECYCLE",
        explanation="",
        directory_version=router.directory_version,
        opens_at=router.next_open(unit.id, at),
    )


def next_attempt(session: Session, origin: Handover, unit_id: str) -> int:
    attempts = session.exec(
        select(Handover.attempt).where(
            Handover.report_id == origin.report_id, Handover.unit_id == unit_id
        )
    ).all()
    return max([origin.attempt, *attempts]) + 1
