"""The outbox: every mail Orosflow sends, queued in the transaction of the action that causes it.

A handover's notification, a reminder, the counselor's notices, fail-closed alerts: each is a
``LifecycleMail`` row written with the state change, so a rolled-back action sends nothing and
a crashed send is retried with the same Message-ID (``<row id@domain>``; a handover's
notification has the handover's id, so its Message-ID is ``<handover-id@domain>``).
:func:`deliver` sends what is queued: the report's flow run does it seconds after the action
commits (``orosflow.handover.trigger``); the escalation sweep is only the backstop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select

from models.tables import Handover, LifecycleMail, Report, ReportKey
from orosflow.core import db_thread, mail
from orosflow.core.audit import append_event
from orosflow.core.clock import utcnow
from orosflow.core.db import read_scope, session_scope
from orosflow.handover.content import ReportErased, audit_read
from orosflow.handover.lifecycle.deadlines import handover_deadline
from orosflow.handover.lifecycle.lookups import report_handovers
from orosflow.handover.lifecycle.mail_render import (
    MAIL_KINDS,
    Undeliverable,
    build_mail,
    reads_content,
)
from orosflow.handover.lifecycle.states import H, apply_transition

MAILER = "system:mailer"
CLAIM_SECONDS = 120
log = logging.getLogger("orosflow.handover.outbox")


def enqueue_mail(
    session: Session,
    mail_id: str,
    kind: str,
    report_id: str,
    handover_id: str | None,
    *,
    new_id: bool = False,
) -> bool:
    """Put a mail in the outbox once; the id makes it idempotent and is its Message-ID.
    ``new_id``: the id was minted in this transaction, so there is nothing to look up (the
    lookup flushes the session first: a receipt's transaction paid ~1 ms for it)."""
    if kind not in MAIL_KINDS:
        raise ValueError(f"unknown mail kind {kind!r}")
    if not new_id and session.get(LifecycleMail, mail_id) is not None:
        return False
    session.add(
        LifecycleMail(
            id=mail_id,
            kind=kind,
            report_id=report_id,
            handover_id=handover_id,
            created_at=utcnow(),
        )
    )
    session.flush()
    return True


def pending_mails(report_id: str | None = None) -> list[str]:
    """Unsent mails, oldest first (a handover's notification before later notices)."""
    with read_scope() as s:
        stmt = select(LifecycleMail.id).where(col(LifecycleMail.sent_at).is_(None))
        if report_id:
            stmt = stmt.where(LifecycleMail.report_id == report_id)
        return list(s.exec(stmt.order_by(col(LifecycleMail.created_at), col(LifecycleMail.id))))


def record_notified(session: Session, h: Handover, report: Report, actor: str) -> None:
    """The notification went out: created → notified, and the deadline starts."""
    now = utcnow()
    h.notified_at = now
    h.deadline_at = handover_deadline(report.urgency, h.unit_id, now, h.opens_at)
    apply_transition(
        session,
        "notify",
        h,
        actor=actor,
        reference=report.reference,
        rule=h.rule,
        details={
            "unit_id": h.unit_id,
            "message_id": h.message_id,
            "opens_at": h.opens_at.isoformat() if h.opens_at else None,
            "deadline_at": h.deadline_at.isoformat(),
        },
    )


# --- sending ----------------------------------------------------------------------------------


def _close_unsent(s: Session, row: LifecycleMail, action: str, rule: str | None, why: str) -> None:
    """Take a mail off the queue without sending it, and say why in the audit trail."""
    row.sent_at = utcnow()
    s.add(row)
    append_event(
        s,
        actor=MAILER,
        action=action,
        report_id=row.report_id,
        handover_id=row.handover_id,
        rule=rule,
        details={"mail_id": row.id, "kind": row.kind, "reason": why},
    )


class ClaimedElsewhere(Exception):
    """Another sender holds the mail's claim (it may be sending it right now)."""


def fail_closed(
    session: Session, h: Handover, *, reference: str, actor: str, reason: str, rule: str
) -> None:
    """A handover no unit can receive: created → failed, and the counselor and the operator
    alerted through the outbox (ids and unit names only; the sweep re-queues them if lost)."""
    apply_transition(
        session,
        "fail",
        h,
        actor=actor,
        reference=reference,
        rule=rule,
        details={"unit_id": h.unit_id, "reason": reason},
    )
    enqueue_mail(session, f"{h.id}.unresolved-counselor", "unresolved_counselor", h.report_id, h.id)
    enqueue_mail(session, f"{h.id}.unresolved-operator", "unresolved_operator", h.report_id, h.id)


def fail_report_closed(session: Session, report: Report, *, actor: str, reason: str) -> int:
    """Every handover of ``report`` still waiting for its notification fails closed, and the
    notifications leave the queue unsent; returns how many failed."""
    failed = 0
    for h in report_handovers(session, report.id):
        if h.status != H.CREATED:
            continue
        row = session.get(LifecycleMail, h.id)
        if row is not None and row.sent_at is None:
            _close_unsent(session, row, "mail.undeliverable", h.rule, reason)
        fail_closed(
            session, h, reference=report.reference, actor=actor, reason=reason, rule="L-FAIL-CLOSED"
        )
        failed += 1
    return failed


def claim_and_render(mail_id: str, owner: str | None = None) -> EmailMessage | None:
    """Claim one unsent outbox mail and render it; None when there is nothing to send.
    Raises :class:`ClaimedElsewhere` while another sender's claim is fresh.

    The claim is a short transaction of its own and the rendering (decryption, templates)
    only reads: on SQLite every other writer, a counselor's receipt too, waits for a write
    transaction, and rendering inside the claim held it 30–90 ms in a burst."""
    if not _claim(mail_id, owner):
        return None
    try:
        with read_scope() as s:
            row = s.get(LifecycleMail, mail_id)
            assert row is not None
            return build_mail(s, row)
    except ReportErased:
        _give_up(mail_id, "report_erased")
    except Undeliverable as exc:
        _give_up(mail_id, exc.reason)
    except BaseException:
        # Anything else (the database went away): the claim goes back, so the step's retry
        # sends now instead of finding the mail claimed for the next two minutes. If that
        # fails too, the claim runs out by itself and the first error is the one reported.
        with contextlib.suppress(Exception):
            release(mail_id)
        raise
    return None


def _claim(mail_id: str, owner: str | None) -> bool:
    """Take the mail for this sender; False when there is nothing to send. The content read
    that rendering makes is audited here, before it happens."""
    with session_scope() as s:
        row = s.get(LifecycleMail, mail_id, with_for_update=True)
        now = utcnow()
        if row is None or row.sent_at is not None:
            return False
        if row.claimed_at and now - row.claimed_at < timedelta(seconds=CLAIM_SECONDS):
            raise ClaimedElsewhere(mail_id)
        h = s.get(Handover, row.handover_id) if row.kind == "notification" else None
        if h is not None and h.status != H.CREATED:
            # Confirmed or declined from the inbox before its mail left: nothing to announce.
            _close_unsent(s, row, "mail.skipped", h.rule, f"handover_{h.status}")
            return False
        if reads_content(row):
            if s.get(ReportKey, row.report_id) is None:
                _close_unsent(
                    s, row, "mail.undeliverable", MAIL_KINDS[row.kind].rule, "report_erased"
                )
                return False
            audit_read(s, row.report_id, actor=MAILER, purpose=f"mail:{row.kind}")
        row.claimed_at, row.claimed_by, row.attempts = now, owner, row.attempts + 1
        s.add(row)
        return True


def _give_up(mail_id: str, reason: str) -> None:
    """The claimed mail can never be built: off the queue unsent. Unless the report was
    erased, its handover (a notification's) fails closed: the counselor and the operator
    hear of it."""
    erased = reason == "report_erased"
    if not erased:
        log.error("mail %s cannot be built: %s", mail_id, reason)
    with session_scope() as s:
        row = s.get(LifecycleMail, mail_id, with_for_update=True)
        if row is None or row.sent_at is not None:
            return
        _close_unsent(s, row, "mail.undeliverable", MAIL_KINDS[row.kind].rule, reason)
        h = s.get(Handover, row.handover_id) if row.kind == "notification" else None
        if h is not None and h.status == H.CREATED and not erased:
            report = s.get(Report, h.report_id)
            assert report is not None
            fail_closed(
                s, h, reference=report.reference, actor=MAILER, reason=reason, rule="L-FAIL-CLOSED"
            )


def release(mail_id: str) -> None:
    with session_scope() as s:
        row = s.get(LifecycleMail, mail_id)
        if row is not None and row.sent_at is None:
            row.claimed_at = row.claimed_by = None
            s.add(row)


def release_claims_of(owner: str) -> int:
    """A sender found dead (its flow run crashed) gives its claims back, so the restarted run
    sends now instead of waiting out the claim."""
    with session_scope() as s:
        rows = list(
            s.exec(
                select(LifecycleMail).where(
                    LifecycleMail.claimed_by == owner, col(LifecycleMail.sent_at).is_(None)
                )
            )
        )
        for row in rows:
            row.claimed_at = row.claimed_by = None
            s.add(row)
        return len(rows)


def mark_sent(mail_id: str) -> None:
    """Record the send; a handover's notification also moves it to notified (deadline set)."""
    with session_scope() as s:
        row = s.get(LifecycleMail, mail_id, with_for_update=True)
        if row is None or row.sent_at is not None:
            return
        row.sent_at = utcnow()
        s.add(row)
        h = s.get(Handover, row.handover_id, with_for_update=True) if row.handover_id else None
        rule = MAIL_KINDS[row.kind].rule or (h.rule if h else None)
        append_event(
            s,
            actor=MAILER,
            action="mail.sent",
            report_id=row.report_id,
            handover_id=row.handover_id,
            rule=rule,
            details={"mail_id": row.id, "kind": row.kind, "to": MAIL_KINDS[row.kind].recipient},
        )
        if row.kind == "notification" and h is not None and h.status == H.CREATED:
            report = s.get(Report, h.report_id)
            assert report is not None
            record_notified(s, h, report, MAILER)


async def send_mail(mail_id: str, owner: str | None = None) -> bool:
    """Send one outbox mail; True if this call sent it, False if there was nothing to send.
    Raises on refusal (claim released), and :class:`ClaimedElsewhere` while another sender
    holds it: the mail is not delivered yet, so the caller must not count it as done."""
    msg = await db_thread.run(claim_and_render, mail_id, owner)
    if msg is None:
        return False
    try:
        await mail.send(msg)
    except BaseException:
        await db_thread.run(release, mail_id)
        raise
    await _record_sent(mail_id)
    return True


#: Waits between attempts to record a sent mail while the database is unreachable (about a
#: minute in all: a PostgreSQL restart or fail-over).
RECORD_RETRY_SECONDS = (0.5, 1, 2, 4, 8, 15, 30)


async def _record_sent(mail_id: str) -> None:
    """Record a mail that has left. It must not be sent again, so the record is retried while
    the database is away rather than the send; the claim keeps other senders off meanwhile."""
    for wait in (*RECORD_RETRY_SECONDS, None):
        try:
            await db_thread.run(mark_sent, mail_id)
            return
        except OperationalError as exc:
            if wait is None:
                raise
            log.warning(
                "mail %s sent, recording it failed (%s); retrying", mail_id, type(exc).__name__
            )
            await asyncio.sleep(wait)


@dataclass
class DeliveryResult:
    sent: int = 0
    #: Refused or broken: left queued for a retry.
    failed: list[str] = field(default_factory=list)
    #: Claimed by another sender that may be sending it now: not delivered by this call.
    busy: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


async def deliver(report_id: str | None = None, owner: str | None = None) -> DeliveryResult:
    """Send every queued mail (of one report, or all); a failure or a mail claimed by another
    sender is counted and left queued, so the other mails still go out and the next run or
    sweep retries it."""
    result = DeliveryResult()
    tried: set[str] = set()
    while todo := [m for m in await db_thread.run(pending_mails, report_id) if m not in tried]:
        for mid in todo:  # a second round sends what the first queued (fail-closed alerts)
            tried.add(mid)
            try:
                result.sent += await send_mail(mid, owner)
            except ClaimedElsewhere:
                result.busy.append(mid)
            except Exception as exc:  # noqa: BLE001
                result.failed.append(mid)
                log.warning("sending mail %s failed: %s", mid, type(exc).__name__)
    return result
