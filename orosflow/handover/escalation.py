"""The escalation sweep: chase handovers that nobody confirmed in time, acute reports with no
recorded phone call, and handovers without a reachable unit; then deliver the outbox.

Ladder of an unconfirmed handover (``orosflow.handover.lifecycle.ESCALATION_STEPS``), one step per
sweep at most, each step one deadline period after the previous one:

1. ``L-ESCALATE-REMIND``     reminder e-mail to the unit (handover notified → escalated);
2. ``L-ESCALATE-SOCIALJOUR`` a new handover to the municipality's socialjour, or, when the
   unit already is the socialjour, to the municipality's intake unit (the backup);
3. ``L-ESCALATE-COUNSELOR``  e-mail to the counselor to phone, with the number(s) to call.

Plus ``L-ESCALATE-PHONE`` (acute report, no phone contact recorded 15 minutes after
submission: counselor e-mail) and ``L-FAIL-CLOSED`` (a failed handover whose alerts are not
queued yet). Each step is decided and audited in one transaction that also queues its mail in
the outbox; a second sweep at the same moment finds nothing due and no unsent mail, so it
sends nothing. Messages carry stable Message-IDs (``<handover-id.escalate-N@domain>``,
``<handover-id@domain>`` for a new handover). The sweep is also the backstop for delivery: it
sends whatever is still queued, and it writes the audit chain's head to a file outside the
database every ``OROSFLOW_ANCHOR_INTERVAL_MINUTES`` (``orosflow.core.anchors.anchor_if_due``),
so deleting or rewriting the newest events is caught by ``orosflow audit verify``.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from models.tables import Handover, LifecycleMail, PhoneContact, Report
from orosflow.core import anchors, db_thread
from orosflow.core.audit import append_event
from orosflow.core.clock import utcnow
from orosflow.core.db import session_scope
from orosflow.handover import lifecycle
from orosflow.handover.lifecycle import H, R, apply_transition, local_text, outbox
from orosflow.handover.lifecycle.deadlines import phone_record_minutes
from orosflow.handover.lifecycle.handovers import create_handover, next_attempt, unit_decision
from routing import UnknownCodeError, get_router

SWEEP = "system:escalate-overdue"
log = logging.getLogger("orosflow.handover.escalation")


# --- planning (database only) -------------------------------------------------------------------


def _escalation_target(h: Handover) -> Any:
    """Step 2's unit: the socialjour, or the intake unit when ``h`` already is the socialjour."""
    router = get_router()
    try:
        if h.unit_kind == "socialjour":
            unit = router.intake_for(h.municipality)
        else:
            unit = router.socialjour_for(h.municipality)
    except (UnknownCodeError, KeyError):
        return None
    return None if unit.id == h.unit_id else unit


def _step(s: Session, h: Handover, report: Report, now: datetime) -> str | None:
    """Run the next due step of one handover; returns a step key or None."""
    due = lifecycle.next_step_due(h, report.urgency)
    if due is None or due > now or lifecycle.obligation_settled(s, h):
        return None
    step = h.escalation_step + 1
    ref = report.reference
    base = {"step": step, "unit_id": h.unit_id, "deadline_at": h.deadline_at.isoformat()}
    if step == 1:
        apply_transition(s, "remind", h, actor=SWEEP, reference=ref, details=base)
        outbox.enqueue_mail(s, f"{h.id}.escalate-1", "reminder", report.id, h.id)
    elif step == 2:
        unit = _escalation_target(h)
        target = None
        if unit is not None:
            decision = unit_decision(
                get_router(),
                unit,
                h,
                now,
                phone_required=(
                    h.phone_required or report.urgency == "acute" or unit.kind == "socialjour"
                ),
            )
            target = create_handover(
                s,
                report,
                decision,
                position=h.position,
                attempt=next_attempt(s, h, unit.id),
                actor=SWEEP,
                rule="L-ESCALATE-SOCIALJOUR",
                explanation=(
                    f"Eskalering: {h.unit_name} har inte bekräftat mottagandet inom tidsfristen "
                    f"({local_text(h.deadline_at)}); {unit.name} får anmälan. "
                    "Tillämpad regel: L-ESCALATE-SOCIALJOUR."
                ),
                escalated_from=h.id,
            )
        apply_transition(
            s,
            "escalate_socialjour",
            h,
            actor=SWEEP,
            reference=ref,
            details={
                **base,
                "target_handover_id": target and target.id,
                "target_unit_id": unit and unit.id,
            },
        )
        if target is None:
            outbox.enqueue_mail(
                s, f"{h.id}.unresolved-counselor", "unresolved_counselor", report.id, h.id
            )
            outbox.enqueue_mail(
                s, f"{h.id}.unresolved-operator", "unresolved_operator", report.id, h.id
            )
    else:
        apply_transition(s, "escalate_counselor", h, actor=SWEEP, reference=ref, details=base)
        outbox.enqueue_mail(s, f"{h.id}.escalate-3", "counselor_phone", report.id, h.id)
    h.escalation_step, h.last_escalated_at = step, now
    s.add(h)
    return f"{h.id}:{step}"


def _phone_step(s: Session, report: Report, now: datetime) -> str | None:
    due = lifecycle.phone_due(report)
    if due is None or due > now:
        return None
    if s.exec(select(PhoneContact.id).where(PhoneContact.report_id == report.id)).first():
        return None
    mail_id = f"{report.id}.phone-missing"
    if not outbox.enqueue_mail(s, mail_id, "phone_missing", report.id, None):
        return None
    append_event(
        s,
        actor=SWEEP,
        action="report.escalated",
        report_id=report.id,
        rule="L-ESCALATE-PHONE",
        details={"reason": "phone_contact_missing", "due_at": due.isoformat()},
    )
    return f"{report.id}:phone"


def _fail_closed_step(s: Session, h: Handover) -> str | None:
    if not outbox.enqueue_mail(
        s, f"{h.id}.unresolved-operator", "unresolved_operator", h.report_id, h.id
    ):
        return None
    outbox.enqueue_mail(
        s, f"{h.id}.unresolved-counselor", "unresolved_counselor", h.report_id, h.id
    )
    append_event(
        s,
        actor=SWEEP,
        action="handover.fail_closed",
        report_id=h.report_id,
        handover_id=h.id,
        rule="L-FAIL-CLOSED",
        details={"unit_id": h.unit_id},
    )
    return f"{h.id}:fail-closed"


def _each(ids: list[str], work: Any) -> list[str]:
    """One transaction per item, so one bad row or a lost race does not stop the sweep."""
    done = []
    for item in ids:
        try:
            with session_scope() as s:
                key = work(s, item)
        except IntegrityError:
            log.info("escalation item %s taken by a concurrent sweep", item)
            continue
        if key:
            done.append(key)
    return done


def fail_closed(report_id: str | None = None) -> list[str]:
    """Alert counselor and operator once for every failed handover (no unit can act)."""
    with session_scope() as s:
        stmt = select(Handover.id).where(Handover.status == H.FAILED)
        if report_id:
            stmt = stmt.where(Handover.report_id == report_id)
        ids = list(s.exec(stmt))

    def work(s: Session, hid: str) -> str | None:
        h = s.get(Handover, hid, with_for_update=True)
        return _fail_closed_step(s, h) if h and h.status == H.FAILED else None

    return _each(ids, work)


def plan_escalations(now: datetime | None = None) -> list[str]:
    """Decide and record every step due at ``now``; mails go to the outbox. Idempotent."""
    now = now or utcnow()
    open_reports = col(Report.status).not_in([R.CLOSED, R.ERASED])
    with session_scope() as s:
        handover_ids = list(
            s.exec(
                select(Handover.id)
                .join(Report, col(Report.id) == col(Handover.report_id))
                .where(
                    col(Handover.status).in_([H.NOTIFIED, H.ESCALATED]),
                    col(Handover.deadline_at).is_not(None),
                    col(Handover.deadline_at) <= now,
                    col(Handover.escalation_step) < lifecycle.LAST_STEP,
                    col(Handover.escalated_from).is_(None),
                    open_reports,
                )
                .order_by(col(Handover.deadline_at))
            )
        )
        phone_cutoff = now - timedelta(minutes=phone_record_minutes())
        report_ids = list(
            s.exec(
                select(Report.id).where(
                    Report.urgency == "acute",
                    col(Report.status).in_([R.RECEIVED, R.ROUTED, R.HANDED_OVER]),
                    col(Report.submitted_at) <= phone_cutoff,
                    ~exists().where(col(PhoneContact.report_id) == col(Report.id)),
                    ~exists().where(
                        col(LifecycleMail.report_id) == col(Report.id),
                        LifecycleMail.kind == "phone_missing",
                    ),
                )
            )
        )

    def handover_work(s: Session, hid: str) -> str | None:
        h = s.get(Handover, hid, with_for_update=True)
        if h is None or h.status not in (H.NOTIFIED, H.ESCALATED):
            return None
        report = s.get(Report, h.report_id, with_for_update=True)
        assert report is not None
        return _step(s, h, report, now)

    def phone_work(s: Session, rid: str) -> str | None:
        report = s.get(Report, rid, with_for_update=True)
        return _phone_step(s, report, now) if report else None

    steps = _each(handover_ids, handover_work) + _each(report_ids, phone_work)
    return steps + fail_closed()


# --- the sweep ------------------------------------------------------------------------------------


@dataclass
class SweepResult:
    steps: list[str] = field(default_factory=list)
    mails_sent: int = 0
    failed: list[str] = field(default_factory=list)
    #: The anchor file this sweep wrote (None: not due, or the chain did not verify).
    anchor: str | None = None
    #: Anchors (file names) the chain no longer matches; nothing was anchored then.
    anchor_problems: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


async def escalate_overdue(now: datetime | None = None) -> SweepResult:
    """The sweep: plan every due step at ``now`` (default: the clock), then send everything
    still queued — this sweep's steps, and anything a delivery run could not send."""
    steps = await db_thread.run(plan_escalations, now)
    delivered = await outbox.deliver()
    result = SweepResult(steps=steps, mails_sent=delivered.sent, failed=delivered.failed)
    try:
        anchored = await db_thread.run(anchors.anchor_if_due, now)
    except Exception:  # noqa: BLE001 - an anchor problem must not stop the escalation ladder
        log.exception("audit anchor not written")
    else:
        result.anchor = anchored.written
        result.anchor_problems = [p.anchor for p in anchored.problems]
        if anchored.chain_broken_at is not None:
            result.anchor_problems.append(f"chain broken at event {anchored.chain_broken_at}")
    return result
