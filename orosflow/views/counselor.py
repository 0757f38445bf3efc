"""The counselor's read model: submitting in their name, the receipt, status, feedback, phone.

One module for the portal pages, the JSON API and the CLI's status command, so all apply the
same ownership rule: a report belongs to the counselor whose account e-mail matches its
``reporter_digest`` (the address itself stays in the encrypted payload). Functions return
``None`` for a report that does not exist or is not the caller's; the caller answers 404
through ``deny_report_access``, which audits and logs the attempt.

Status is metadata only: the report's state, handovers with deadlines, the phone step and
feedback, with overdue flags and Swedish warnings; nothing about the child, and not the
feedback's content (that is read, and logged, with ``lifecycle.read_feedback``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from models.tables import Feedback, Handover, PhoneContact, Report
from orosflow.core.clock import utcnow
from orosflow.core.crypto import load_keyring
from orosflow.core.db import session_scope
from orosflow.handover import lifecycle
from orosflow.handover.content import ReportErased, read_report
from orosflow.handover.lifecycle import ActionResult, R, local_text, reporter_digest
from orosflow.handover.routing_call import (
    CallNow,
    Recipient,
    calls_for,
    decide,
    recipients,
    stored_decision,
    written_decisions,
)
from orosflow.handover.submission import Receipt, SubmitOnce, submit
from orosflow.handover.validation import FieldError, FormInvalid, validate_form
from orosflow.identity.accounts import Principal
from orosflow.views.handover_summary import handover_summary, is_overdue
from routing import Decision
from routing.hours import TZ

RECEIPT_PURPOSE = "receipt"
FEEDBACK_PURPOSE = "counselor-feedback"


def owns(report: Report, email: str | None) -> bool:
    """Whether the report was made with this e-mail as the reporter's address."""
    return bool(email) and report.reporter_digest == reporter_digest(email or "")


def _find(s: Session, reference: str) -> Report | None:
    try:
        return lifecycle.report_by_reference(s, reference)
    except lifecycle.LifecycleError:
        return None


def _own(s: Session, reference: str, principal: Principal) -> Report | None:
    report = _find(s, reference)
    return report if report is not None and owns(report, principal.email) else None


# --- submitting ------------------------------------------------------------------------------


def submit_as(
    data: Any,
    principal: Principal,
    *,
    idempotency_key: str | None = None,
    confirm_duplicate: bool = False,
) -> Receipt:
    """Submit a form in the counselor's name; the reporter's e-mail must be the account's.

    A missing reporter e-mail is filled in from the account; a different one is refused,
    because "my reports" finds reports by it. Raises ``FormInvalid`` (listing every error)
    with nothing stored. Stored once: the same ``idempotency_key`` and body give the first
    receipt (``replayed``), another body ``IdempotencyConflict``; a child this counselor
    reported within a day gives ``DuplicateSuspected`` unless ``confirm_duplicate``.
    """
    if not isinstance(data, dict):
        raise FormInvalid([FieldError("", "model_type", "Ange formuläret som ett JSON-objekt.")])
    own: list[FieldError] = []
    reporter = data.get("reporter")
    if isinstance(reporter, dict):
        sent = reporter.get("email")
        if not principal.email:
            own.append(
                FieldError(
                    "reporter.email",
                    "account_email_missing",
                    "Ditt konto saknar e-postadress; be en administratör lägga till den.",
                )
            )
        elif sent is None or (isinstance(sent, str) and not sent.strip()):
            data = {**data, "reporter": {**reporter, "email": principal.email}}
        elif not isinstance(sent, str) or sent.strip().casefold() != principal.email.casefold():
            own.append(
                FieldError(
                    "reporter.email",
                    "reporter_email_mismatch",
                    "Anmälarens e-postadress måste vara ditt kontos e-postadress; det är med "
                    "den som du hittar dina anmälningar och får återkoppling.",
                )
            )
    if own:
        try:
            validate_form(data)
        except FormInvalid as exc:
            own = [e for e in exc.errors if e.field != "reporter.email"] + own
        raise FormInvalid(own)
    once = SubmitOnce(
        actor=principal.actor,
        keyring=load_keyring(),
        key=idempotency_key,
        body=data,
        confirm_duplicate=confirm_duplicate,
    )
    return submit(data, actor=principal.actor, once=once)


# --- the receipt ------------------------------------------------------------------------------


@dataclass
class ReceiptRow:
    """One child's report on the receipt."""

    reference: str
    child_index: int
    child_name: str | None  # None when the content has been erased
    recipient: str | None  # the unit the written report goes to (first one)
    calls: list[CallNow] = field(default_factory=list)
    written: list[Recipient] = field(default_factory=list)


@dataclass
class ReceiptView:
    sibling_group_id: str
    submitted_at: datetime
    urgency: str
    rows: list[ReceiptRow]

    @property
    def acute(self) -> bool:
        return self.urgency == "acute"

    @property
    def call_now(self) -> bool:
        return self.acute or any(r.calls for r in self.rows)


def _receipt_row(report: Report, child_name: str, decision: Decision) -> ReceiptRow:
    written = written_decisions(decision)
    return ReceiptRow(
        report.reference,
        report.child_index,
        child_name,
        written[0].unit_name if written else decision.unit_name,
        calls_for(decision),
        recipients(decision),
    )


def receipt_view(sibling_group_id: str, principal: Principal) -> ReceiptView | None:
    """The receipt of one submission (all siblings), or None if it is not the caller's.

    Recipients and whom to phone are the routing decision stored at submission, so the receipt
    says what the flow delivers. Reports stored before decisions were kept are routed again as
    of their submission time. The child's name needs the content: each report is read with an
    audited ``read_report`` (purpose "receipt").
    """
    keyring = load_keyring()
    with session_scope() as s:
        reports = list(
            s.exec(
                select(Report)
                .where(Report.sibling_group_id == sibling_group_id)
                .order_by(col(Report.child_index))
            )
        )
        if not reports or not all(owns(r, principal.email) for r in reports):
            return None
        rows = []
        for r in reports:
            try:
                content = read_report(
                    s, r.id, keyring=keyring, actor=principal.actor, purpose=RECEIPT_PURPOSE
                )
            except ReportErased:
                rows.append(ReceiptRow(r.reference, r.child_index, None, None))
                continue
            decision = stored_decision(r) or decide(content.child, content.form, r.submitted_at)
            rows.append(_receipt_row(r, content.child.name, decision))
        first = reports[0]
        return ReceiptView(sibling_group_id, first.submitted_at, first.urgency, rows)


# --- status ------------------------------------------------------------------------------------

#: The handover summary's fields the counselor sees (times as ISO text, Stockholm).
HANDOVER_FIELDS = (
    "handover_id",
    "position",
    "attempt",
    "unit_id",
    "unit_name",
    "unit_kind",
    "municipality",
    "status",
    "status_text",
    "rule",
    "phone_required",
    "phone",
    "notified_at",
    "opens_at",
    "opens_at_text",
    "deadline_at",
    "overdue",
    "escalation_step",
    "escalated_from",
    "rerouted_from",
    "confirmed_at",
    "confirmed_by",
    "declined_at",
    "decline_reason",
)


def _iso(at: datetime | None) -> str | None:
    return at.astimezone(TZ).isoformat() if at else None


def _handover_json(s: Session, h: Handover, now: datetime) -> dict[str, Any]:
    summary = handover_summary(h, overdue=is_overdue(s, h, now))
    shown = {k: summary[k] for k in HANDOVER_FIELDS}
    return {k: _iso(v) if isinstance(v, datetime) else v for k, v in shown.items()}


def report_status(s: Session, report: Report, now: datetime | None = None) -> dict[str, Any]:
    """Status of one report inside an open session."""
    now = now or utcnow()
    hs = lifecycle.report_handovers(s, report.id)
    handovers = [_handover_json(s, h, now) for h in hs]
    confirmed = [h.confirmed_at for h in hs if h.confirmed_at]
    handed_over_at = min(confirmed) if confirmed else None

    calls = list(
        s.exec(
            select(PhoneContact)
            .where(PhoneContact.report_id == report.id)
            .order_by(col(PhoneContact.called_at))
        )
    )
    phone_due = lifecycle.phone_due(report)
    phone_open = report.status not in (R.CLOSED, R.ERASED)
    phone = {
        "required": report.urgency == "acute" or any(h.phone_required for h in hs),
        "due_at": _iso(phone_due),
        "recorded": [
            {
                "unit_id": p.unit_id,
                "answered_by": p.answered_by,
                "called_at": _iso(p.called_at),
                "recorded_by": p.recorded_by,
            }
            for p in calls
        ],
        "overdue": bool(phone_due and phone_open and not calls and phone_due <= now),
    }

    fb_rows = list(
        s.exec(
            select(Feedback)
            .where(Feedback.report_id == report.id)
            .order_by(col(Feedback.recorded_at))
        )
    )
    names = {h.id: h.unit_name for h in hs}
    fb_due = lifecycle.feedback_due(handed_over_at)
    feedback = {
        "due_at": _iso(fb_due),
        "deadline_verified": lifecycle.feedback_deadline_verified(),
        "received": [
            {
                "unit_id": f.unit_id,
                "unit_name": names.get(f.handover_id, f.unit_id),
                "recorded_at": _iso(f.recorded_at),
            }
            for f in fb_rows
        ],
        "overdue": bool(
            fb_due and not fb_rows and report.status == R.HANDED_OVER and fb_due <= now
        ),
    }

    warnings = [
        f"{h['unit_name']} har inte bekräftat mottagandet; tidsfristen gick ut "
        f"{local_text(datetime.fromisoformat(h['deadline_at']))}."
        for h in handovers
        if h["overdue"]
    ]
    if phone["overdue"]:
        warnings.append(
            f"Akut ärende: ingen telefonkontakt är registrerad (skulle ske senast "
            f"{local_text(phone_due)})."
        )
    if feedback["overdue"]:
        note = "" if feedback["deadline_verified"] else " (tidsfristen är inte verifierad i lag)"
        warnings.append(
            f"Återkopplingen är försenad: den skulle ha kommit senast {local_text(fb_due)}{note}."
        )
    return {
        "reference": report.reference,
        "state": report.status,
        "state_text": lifecycle.REPORT_LABELS.get(report.status, report.status),
        "urgency": report.urgency,
        "submitted_at": _iso(report.submitted_at),
        "handed_over_at": _iso(handed_over_at),
        "handovers": handovers,
        "phone": phone,
        "feedback": feedback,
        "overdue": bool(warnings),
        "warnings": warnings,
    }


def status(reference: str, now: datetime | None = None) -> dict[str, Any]:
    """Status of the report with this reference (``LifecycleError`` if there is none)."""
    with session_scope() as s:
        return report_status(s, lifecycle.report_by_reference(s, reference), now)


def reports_by_reporter(reporter_email: str, now: datetime | None = None) -> list[dict[str, Any]]:
    """The reports made with this reporter e-mail, newest first, each as :func:`status` returns
    it. Old rows got their ``reporter_digest`` from migration 0006."""
    digest = lifecycle.reporter_digest(reporter_email)
    with session_scope() as s:
        reports = s.exec(
            select(Report)
            .where(Report.reporter_digest == digest)
            .order_by(col(Report.submitted_at).desc())
        ).all()
        return [report_status(s, r, now) for r in reports]


# --- the counselor's own reports: status, feedback, phone contact ------------------------------


def my_reports(principal: Principal, now: datetime | None = None) -> list[dict[str, Any]]:
    """The counselor's reports, newest first (metadata only, as :func:`report_status`)."""
    if not principal.email:
        return []
    return reports_by_reporter(principal.email, now)


def own_status(
    reference: str, principal: Principal, now: datetime | None = None
) -> dict[str, Any] | None:
    """Status of one of the counselor's reports, or None if it is not theirs."""
    with session_scope() as s:
        report = _own(s, reference, principal)
        return report_status(s, report, now) if report is not None else None


def owns_reference(reference: str, principal: Principal) -> bool:
    with session_scope() as s:
        return _own(s, reference, principal) is not None


def own_feedback(reference: str, principal: Principal) -> list[dict[str, Any]] | None:
    """The feedback's content (an audited read), or None if the report is not the caller's."""
    if not owns_reference(reference, principal):
        return None
    return lifecycle.read_feedback(reference, actor=principal.actor, purpose=FEEDBACK_PURPOSE)


def record_phone(
    reference: str,
    principal: Principal,
    *,
    answered_by: str,
    at: datetime,
    unit_id: str | None = None,
) -> ActionResult | None:
    """Record the counselor's phone call to social services; None if not the caller's report.

    Raises ``LifecycleError`` (Swedish message) for refused input.
    """
    if not owns_reference(reference, principal):
        return None
    return lifecycle.record_phone_contact(
        reference, answered_by, at, by=principal.actor, unit_id=unit_id or None
    )
