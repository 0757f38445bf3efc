"""The escalation sweep: chase handovers that nobody confirmed in time, acute reports with no
recorded phone call, and handovers without a reachable unit; then deliver the outbox.

Ladder of an unconfirmed handover (``orosflow.handover.lifecycle.ESCALATION_STEPS``), one step per
sweep at most, each step one deadline period after the previous one:

1. ``L-ESCALATE-REMIND``     reminder e-mail to the unit (handover notified → escalated);
2. ``L-ESCALATE-SOCIALJOUR`` a new handover to the municipality's socialjour, or, when the
   unit already is the socialjour, to the municipality's intake unit (the backup);
3. ``L-ESCALATE-COUNSELOR``  e-mail to the counselor to phone, with the number(s) to call.

Plus ``L-ESCALATE-PHONE`` (acute report, no phone contact recorded 15 minutes after
submission: counselor e-mail) and ``L-FAIL-CLOSED`` (handover failed for want of a channel:
counselor and operator e-mail). Each step is decided and audited in one transaction that also
queues its mail in the outbox; a second sweep at the same moment finds nothing due and no
unsent mail, so it sends nothing. Messages carry stable Message-IDs
(``<handover-id.escalate-N@domain>``, ``<handover-id@domain>`` for a new handover).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy import exists
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from models.tables import Handover, LifecycleMail, PhoneContact, Report
from orosflow.core import mail
from orosflow.core.audit import append_event
from orosflow.core.clock import utcnow
from orosflow.core.crypto import load_keyring
from orosflow.core.db import session_scope
from orosflow.core.settings import Settings, get_settings
from orosflow.handover import delivery as handovers
from orosflow.handover import lifecycle
from orosflow.handover.content import ReportErased, read_report
from orosflow.handover.lifecycle import H, R, apply_transition, local_text
from routing import UnknownCodeError, get_router

SWEEP = "system:escalate-overdue"
MAILER = "system:lifecycle-mail"
CLAIM_SECONDS = 120
log = logging.getLogger("orosflow.handover.escalation")

#: Outbox kind → (template, recipient, rule of its mail.sent event).
MAIL_KINDS: dict[str, tuple[str, str, str]] = {
    "reminder": ("reminder", "unit", "L-ESCALATE-REMIND"),
    "counselor_phone": ("counselor_phone", "counselor", "L-ESCALATE-COUNSELOR"),
    "phone_missing": ("counselor_phone", "counselor", "L-ESCALATE-PHONE"),
    "feedback_notice": ("feedback_notice", "counselor", "L-FEEDBACK"),
    "rerouted": ("rerouted", "counselor", "L-DECLINE-REROUTE"),
    "unresolved_counselor": ("unresolved", "counselor", "L-FAIL-CLOSED"),
    "unresolved_operator": ("unresolved", "operator", "L-FAIL-CLOSED"),
}


def operator_email(settings: Settings | None = None) -> str:
    """Where fail-closed alerts go (``OROSFLOW_OPERATOR_EMAIL``, else operator@mail domain)."""
    settings = settings or get_settings()
    return settings.operator_email or f"operator@{settings.mail_domain}"


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
        lifecycle.enqueue_mail(s, f"{h.id}.escalate-1", "reminder", report.id, h.id)
    elif step == 2:
        unit = _escalation_target(h)
        target = None
        if unit is not None:
            target = lifecycle.new_handover(
                s,
                origin=h,
                unit=unit,
                router=get_router(),
                rule="L-ESCALATE-SOCIALJOUR",
                explanation=(
                    f"Eskalering: {h.unit_name} har inte bekräftat mottagandet inom tidsfristen "
                    f"({local_text(h.deadline_at)}); {unit.name} får anmälan. "
                    "Tillämpad regel: L-ESCALATE-SOCIALJOUR."
                ),
                actor=SWEEP,
                urgency=report.urgency,
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
            lifecycle.enqueue_mail(
                s, f"{h.id}.unresolved-counselor", "unresolved_counselor", report.id, h.id
            )
            lifecycle.enqueue_mail(
                s, f"{h.id}.unresolved-operator", "unresolved_operator", report.id, h.id
            )
    else:
        apply_transition(s, "escalate_counselor", h, actor=SWEEP, reference=ref, details=base)
        lifecycle.enqueue_mail(s, f"{h.id}.escalate-3", "counselor_phone", report.id, h.id)
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
    if not lifecycle.enqueue_mail(s, mail_id, "phone_missing", report.id, None):
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
    if not lifecycle.enqueue_mail(
        s, f"{h.id}.unresolved-operator", "unresolved_operator", h.report_id, h.id
    ):
        return None
    lifecycle.enqueue_mail(
        s, f"{h.id}.unresolved-counselor", "unresolved_counselor", h.report_id, h.id
    )
    append_event(
        s,
        actor=SWEEP,
        action="handover.fail_closed",
        report_id=h.report_id,
        handover_id=h.id,
        rule="L-FAIL-CLOSED",
        details={"unit_id": h.unit_id, "reason": "no_email_channel"},
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
        phone_cutoff = now - timedelta(
            minutes=int(lifecycle.deadlines()["handover"]["acute_phone_record_minutes"])
        )
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


# --- delivery -------------------------------------------------------------------------------------


def pending_handovers(report_id: str | None = None) -> list[str]:
    """Handovers the lifecycle created (escalation, re-route) that still await notification."""
    with session_scope() as s:
        stmt = select(Handover.id).where(
            Handover.status == H.CREATED,
            col(Handover.escalated_from).is_not(None) | col(Handover.rerouted_from).is_not(None),
        )
        if report_id:
            stmt = stmt.where(Handover.report_id == report_id)
        return list(s.exec(stmt.order_by(col(Handover.created_at))))


def pending_mails(report_id: str | None = None) -> list[str]:
    with session_scope() as s:
        stmt = select(LifecycleMail.id).where(col(LifecycleMail.sent_at).is_(None))
        if report_id:
            stmt = stmt.where(LifecycleMail.report_id == report_id)
        return list(s.exec(stmt.order_by(col(LifecycleMail.created_at), col(LifecycleMail.id))))


def _render(template: str, ctx: dict[str, Any]) -> tuple[str, str]:
    env = mail.template_env()
    subject = env.get_template(f"email/lifecycle_{template}_subject.txt.j2").render(ctx)
    body = env.get_template(f"email/lifecycle_{template}.txt.j2").render(ctx)
    return " ".join(subject.split()), body


def _message(
    mid: str, to: str, subject: str, body: str, created_at: datetime, reference: str
) -> EmailMessage:
    settings = get_settings()
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = settings.mail_from
    msg["To"] = to
    msg["Message-ID"] = mid
    msg["Date"] = mail.rfc2822(created_at)
    msg["X-Orosflow-Reference"] = reference
    msg.set_content(body)
    return msg


def _report_url(reference: str) -> str:
    return f"{get_settings().portal_url.rstrip('/')}/reports/{reference}"


def _calls_for(s: Session, report: Report, h: Handover | None) -> list[dict[str, str]]:
    """Units and numbers the counselor should phone, best first (no duplicates)."""
    candidates: list[Handover] = []
    if h is not None:
        candidates += list(
            s.exec(
                select(Handover)
                .where(Handover.escalated_from == h.id)
                .order_by(col(Handover.created_at).desc())
            )
        )
        candidates.append(h)
    else:
        candidates += [
            x
            for x in lifecycle.report_handovers(s, report.id)
            if x.status not in (H.DECLINED, H.FAILED)
        ]
    calls = [{"name": x.unit_name, "phone": x.phone} for x in candidates if x.phone]
    if not calls:
        municipality = h.municipality if h is not None else report.clinic_municipality
        try:
            sj = get_router().socialjour_for(municipality)
            if sj.phone:
                calls.append({"name": sj.name, "phone": sj.phone})
        except (UnknownCodeError, KeyError):
            pass
    unique = {(c["name"], c["phone"]): c for c in calls}
    return list(unique.values())


def _build(s: Session, row: LifecycleMail) -> EmailMessage:
    """Render one outbox mail; the counselor's address is read (and audited) only now."""
    template, recipient, _ = MAIL_KINDS[row.kind]
    report = s.get(Report, row.report_id)
    assert report is not None
    h = s.get(Handover, row.handover_id) if row.handover_id else None
    ctx: dict[str, Any] = {
        "reference": report.reference,
        "urgency": report.urgency,
        "report_url": _report_url(report.reference),
        "unit_name": h.unit_name if h else "",
        "kind": row.kind,
        "mail_id": row.id,
        "audience": recipient,
    }
    if h is not None:
        ctx.update(deadline=local_text(h.deadline_at), notified=local_text(h.notified_at))
    if row.kind in ("counselor_phone", "phone_missing", "unresolved_counselor"):
        ctx["calls"] = _calls_for(s, report, h)
    if row.kind == "rerouted" and h is not None:
        new = s.exec(select(Handover).where(Handover.rerouted_from == h.id)).first()
        ctx["new_unit_name"] = new.unit_name if new else ""
        ctx["new_phone"] = new.phone if new and new.phone_required else None
    if row.kind.startswith("unresolved") and h is not None:
        ctx.update(
            handover_id=h.id,
            unit_id=h.unit_id,
            municipality=h.municipality,
            municipality_name=h.municipality_name,
            reason=(
                "enheten avböjde och ingen annan mottagare kunde fastställas"
                if h.status == H.DECLINED
                else "ingen e-postkanal är konfigurerad för enheten"
                if h.status == H.FAILED
                else "ingen socialjour eller reservenhet kunde fastställas"
            ),
        )
    if recipient == "unit":
        assert h is not None and h.email
        to = h.email
    elif recipient == "operator":
        to = operator_email()
    else:
        content = read_report(
            s, report.id, keyring=load_keyring(), actor=MAILER, purpose=f"mail:{row.kind}"
        )
        to = content.form.reporter.email
    subject, body = _render(template, ctx)
    msg = _message(
        f"<{row.id}@{get_settings().mail_domain}>",
        to,
        subject,
        body,
        row.created_at,
        report.reference,
    )
    if h is not None and recipient == "unit":
        msg["In-Reply-To"] = msg["References"] = h.message_id
    return msg


def claim_and_render(mail_id: str) -> EmailMessage | None:
    """Claim one unsent outbox mail and render it; None when sent or claimed elsewhere."""
    with session_scope() as s:
        row = s.get(LifecycleMail, mail_id, with_for_update=True)
        now = utcnow()
        if row is None or row.sent_at is not None:
            return None
        if row.claimed_at and now - row.claimed_at < timedelta(seconds=CLAIM_SECONDS):
            return None
        try:
            msg = _build(s, row)
        except ReportErased:
            row.sent_at = now
            append_event(
                s,
                actor=MAILER,
                action="mail.undeliverable",
                report_id=row.report_id,
                handover_id=row.handover_id,
                rule=MAIL_KINDS[row.kind][2],
                details={"mail_id": row.id, "kind": row.kind, "reason": "report_erased"},
            )
            return None
        row.claimed_at, row.attempts = now, row.attempts + 1
        s.add(row)
        return msg


def release(mail_id: str) -> None:
    with session_scope() as s:
        row = s.get(LifecycleMail, mail_id)
        if row is not None and row.sent_at is None:
            row.claimed_at = None
            s.add(row)


def mark_sent(mail_id: str) -> None:
    with session_scope() as s:
        row = s.get(LifecycleMail, mail_id, with_for_update=True)
        if row is None or row.sent_at is not None:
            return
        row.sent_at = utcnow()
        s.add(row)
        append_event(
            s,
            actor=MAILER,
            action="mail.sent",
            report_id=row.report_id,
            handover_id=row.handover_id,
            rule=MAIL_KINDS[row.kind][2],
            details={"mail_id": row.id, "kind": row.kind, "to": MAIL_KINDS[row.kind][1]},
        )


async def send_mail(mail_id: str) -> bool:
    """Send one outbox mail; True if this call sent it. Raises (claim released) on refusal."""
    msg = await asyncio.to_thread(claim_and_render, mail_id)
    if msg is None:
        return False
    try:
        await mail.send(msg)
    except BaseException:
        await asyncio.to_thread(release, mail_id)
        raise
    await asyncio.to_thread(mark_sent, mail_id)
    return True


def _escalation_message(n: mail.Notification) -> EmailMessage:
    """The escalation target's notification: says whom it replaces and why."""
    with session_scope() as s:
        h = s.get(Handover, n.handover_id)
        parent = s.get(Handover, h.escalated_from) if h and h.escalated_from else None
    ctx = {
        **n.__dict__,
        "original_unit_name": parent.unit_name if parent else "",
        "original_deadline": local_text(parent.deadline_at) if parent else "",
    }
    subject, body = _render("escalation", ctx)
    msg = _message(
        mail.message_id(n.handover_id),
        n.to,
        subject,
        body,
        h.created_at if h else utcnow(),
        n.reference,
    )
    return msg


async def notify_handover(handover_id: str) -> bool:
    """Notify a handover the lifecycle created; True if sent now. Same Message-ID on retry."""
    n = await asyncio.to_thread(handovers.notification_for, handover_id)
    if n is None:
        return False  # already sent, or failed (fail_closed alerts)
    escalated = await asyncio.to_thread(_is_escalation, handover_id)
    msg = await asyncio.to_thread(_escalation_message, n) if escalated else mail.render(n)
    await mail.send(msg)
    await asyncio.to_thread(handovers.mark_notified, handover_id)
    return True


def _is_escalation(handover_id: str) -> bool:
    with session_scope() as s:
        h = s.get(Handover, handover_id)
        return bool(h and h.escalated_from)


@dataclass
class SweepResult:
    steps: list[str] = field(default_factory=list)
    notified: int = 0
    mails_sent: int = 0
    errors: int = 0

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


async def dispatch(report_id: str | None = None, result: SweepResult | None = None) -> SweepResult:
    """Deliver what the lifecycle queued: new handovers first, then fail-closed, then mails.
    Failures are counted and left for the next sweep (the outbox keeps them)."""
    result = result or SweepResult()
    for hid in await asyncio.to_thread(pending_handovers, report_id):
        try:
            result.notified += await notify_handover(hid)
        except Exception as exc:  # noqa: BLE001
            result.errors += 1
            log.warning("notifying handover %s failed: %s", hid, type(exc).__name__)
    result.steps += await asyncio.to_thread(fail_closed, report_id)
    for mid in await asyncio.to_thread(pending_mails, report_id):
        try:
            result.mails_sent += await send_mail(mid)
        except Exception as exc:  # noqa: BLE001
            result.errors += 1
            log.warning("sending lifecycle mail %s failed: %s", mid, type(exc).__name__)
    return result


async def escalate_overdue(now: datetime | None = None) -> SweepResult:
    """The sweep: plan every due step at ``now`` (default: the clock), then deliver."""
    steps = await asyncio.to_thread(plan_escalations, now)
    return await dispatch(result=SweepResult(steps=steps))
