"""What each kind of outbox mail is, whom it goes to, and how it is written: the templates'
context (reference, unit names, times, numbers; never the child) and the message, rendered
when the mail is sent (:mod:`orosflow.handover.lifecycle.outbox` queues, claims and sends)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from sqlmodel import Session, col, select

from models.tables import AuditEvent, Handover, LifecycleMail, Report
from orosflow.core import mail
from orosflow.core.crypto import CryptoError, load_keyring
from orosflow.core.settings import Settings, get_settings
from orosflow.handover.content import decrypt_report
from orosflow.handover.lifecycle.deadlines import local_text
from orosflow.handover.lifecycle.lookups import report_handovers, restarts_since_last_send
from orosflow.handover.lifecycle.states import H
from routing import UnknownCodeError, get_router
from routing.hours import describe_opens_at


@dataclass(frozen=True)
class MailKind:
    recipient: str  # "unit" | "counselor" | "operator"
    rule: str | None  # rule of the mail.sent event; None: the handover's own rule


#: Outbox kind → recipient and the rule of its ``mail.sent`` event. The template is
#: ``templates/email/<kind>`` except where :func:`_template` says otherwise.
MAIL_KINDS: dict[str, MailKind] = {
    "notification": MailKind("unit", None),
    "reminder": MailKind("unit", "L-ESCALATE-REMIND"),
    "counselor_phone": MailKind("counselor", "L-ESCALATE-COUNSELOR"),
    "phone_missing": MailKind("counselor", "L-ESCALATE-PHONE"),
    "feedback_notice": MailKind("counselor", "L-FEEDBACK"),
    "rerouted": MailKind("counselor", "L-DECLINE-REROUTE"),
    "unresolved_counselor": MailKind("counselor", "L-FAIL-CLOSED"),
    "unresolved_operator": MailKind("operator", "L-FAIL-CLOSED"),
    "stalled_operator": MailKind("operator", "L-RESTARTS-EXHAUSTED"),
}


def operator_email(settings: Settings | None = None) -> str:
    """Where fail-closed alerts go (``OROSFLOW_OPERATOR_EMAIL``, else operator@mail domain)."""
    settings = settings or get_settings()
    return settings.operator_email or f"operator@{settings.mail_domain}"


class Undeliverable(Exception):
    """The mail can never be built (content unreadable under the key ring, a header the e-mail
    package refuses): retrying cannot help, so its handover fails closed instead."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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
            x for x in report_handovers(s, report.id) if x.status not in (H.DECLINED, H.FAILED)
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


#: Why a handover failed closed (the ``reason`` of its ``handover.unresolved`` event), in the
#: words of the alert mails.
FAIL_REASONS: dict[str, str] = {
    "no_email_channel": "ingen e-postkanal är konfigurerad för enheten",
    "content_unreadable": (
        "anmälan kan inte läsas med de nycklar som finns (kontakta driften); "
        "kuratorn kan därför inte nås per e-post"
    ),
    "mail_unrenderable": "meddelandet till enheten kunde inte skapas",
    "revalidation_failed": "anmälan klarar inte längre kontrollen och skickas inte",
}


def _fail_reason(s: Session, h: Handover) -> str:
    event = s.exec(
        select(AuditEvent)
        .where(AuditEvent.handover_id == h.id, AuditEvent.action == "handover.unresolved")
        .order_by(col(AuditEvent.seq).desc())
    ).first()
    code = json.loads(event.details or "{}").get("reason") if event else None
    return FAIL_REASONS.get(code or "", FAIL_REASONS["no_email_channel"])


def _unresolved_reason(s: Session, h: Handover) -> str:
    if h.status == H.DECLINED:
        return "enheten avböjde och ingen annan mottagare kunde fastställas"
    if h.status == H.FAILED:
        return _fail_reason(s, h)
    return "ingen socialjour eller reservenhet kunde fastställas"


def _template(row: LifecycleMail, h: Handover | None) -> str:
    if row.kind == "notification":
        return "lifecycle_escalation" if h is not None and h.escalated_from else "notification"
    if row.kind.startswith("unresolved"):
        return "lifecycle_unresolved"
    if row.kind == "stalled_operator":
        return "lifecycle_stalled"
    if row.kind == "phone_missing":
        return "lifecycle_counselor_phone"
    return f"lifecycle_{row.kind}"


def _context(s: Session, row: LifecycleMail, report: Report, h: Handover | None) -> dict[str, Any]:
    """What a mail may say: reference, urgency, unit names, times, numbers; never the child."""
    recipient = MAIL_KINDS[row.kind].recipient
    ctx: dict[str, Any] = {
        "reference": report.reference,
        "urgency": report.urgency,
        "report_url": _report_url(report.reference),
        "unit_name": h.unit_name if h else "",
        "kind": row.kind,
        "mail_id": row.id,
        "handover_id": h.id if h else "",
        "audience": recipient,
        "phone_required": bool(h and h.phone_required),
        "wrong_recipient_hint": row.kind == "notification",
    }
    if h is not None:
        ctx.update(
            deadline=local_text(h.deadline_at),
            notified=local_text(h.notified_at),
            opens_at=h.opens_at,
            opens_text=describe_opens_at(h.opens_at) if h.opens_at else None,
        )
    if row.kind == "notification" and h is not None and h.escalated_from:
        parent = s.get(Handover, h.escalated_from)
        ctx.update(
            original_unit_name=parent.unit_name if parent else "",
            original_deadline=local_text(parent.deadline_at) if parent else "",
        )
    if row.kind in ("counselor_phone", "phone_missing", "unresolved_counselor"):
        ctx["calls"] = _calls_for(s, report, h)
    if row.kind == "rerouted" and h is not None:
        new = s.exec(select(Handover).where(Handover.rerouted_from == h.id)).first()
        ctx["new_unit_name"] = new.unit_name if new else ""
        ctx["new_phone"] = new.phone if new and new.phone_required else None
        ctx["new_opens_text"] = describe_opens_at(new.opens_at) if new and new.opens_at else None
    if row.kind == "stalled_operator":
        ctx.update(
            restarts=restarts_since_last_send(s, report.id),
            queued=len(
                s.exec(
                    select(LifecycleMail.id).where(
                        LifecycleMail.report_id == report.id,
                        col(LifecycleMail.sent_at).is_(None),
                        LifecycleMail.id != row.id,
                    )
                ).all()
            ),
        )
    if row.kind.startswith("unresolved"):
        ctx.update(
            unit_id=h.unit_id if h else "–",
            municipality=h.municipality if h else report.clinic_municipality,
            municipality_name=h.municipality_name if h else "mottagningens kommun",
            reason=_unresolved_reason(s, h) if h else "anmälan kunde inte dirigeras",
        )
    return ctx


def reads_content(row: LifecycleMail) -> bool:
    """The mail needs the report's content (the clinic's name; the counselor's address)."""
    return MAIL_KINDS[row.kind].recipient == "counselor" or row.kind == "notification"


def build_mail(s: Session, row: LifecycleMail) -> EmailMessage:
    """Render one outbox mail; personal addresses and the clinic are read only now (the read's
    audit event was appended when the mail was claimed)."""
    recipient = MAIL_KINDS[row.kind].recipient
    report = s.get(Report, row.report_id)
    assert report is not None
    h = s.get(Handover, row.handover_id) if row.handover_id else None
    ctx = _context(s, row, report, h)
    content = None
    if reads_content(row):
        try:
            content = decrypt_report(s, report.id, keyring=load_keyring())
        except CryptoError:
            raise Undeliverable("content_unreadable") from None
        ctx["clinic_name"] = content.form.clinic.name
    if recipient == "unit":
        assert h is not None and h.email
        to = h.email
    elif recipient == "operator":
        to = operator_email()
    else:
        assert content is not None
        to = content.form.reporter.email
    reply_to = h.message_id if h is not None and recipient == "unit" and row.id != h.id else None
    try:
        return mail.build(
            _template(row, h),
            ctx,
            to=to,
            message_id=f"<{row.id}@{get_settings().mail_domain}>",
            date=row.created_at,
            reference=report.reference,
            in_reply_to=reply_to,
        )
    except ValueError:  # e.g. a header the e-mail package refuses to write (CR/LF in it)
        raise Undeliverable("mail_unrenderable") from None
