"""The counselor's own reports: submitting in their name, the receipt, status, feedback, phone.

One module for the portal pages and the JSON API, so both apply the same ownership rule: a
report belongs to the counselor whose account e-mail matches its ``reporter_digest`` (the
address itself stays in the encrypted payload). Functions return ``None`` for a report that
does not exist or is not the caller's; the caller answers 404 through ``deny_report_access``,
which audits and logs the attempt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from models.tables import Report
from orosflow.core.crypto import load_keyring
from orosflow.core.db import session_scope
from orosflow.handover import lifecycle
from orosflow.handover.content import ReportErased, read_report
from orosflow.handover.delivery import routing_request_for
from orosflow.handover.lifecycle import ActionResult, reporter_digest
from orosflow.handover.submission import CallNow, Receipt, calls_for, submit
from orosflow.handover.validation import FieldError, FormInvalid, validate_form
from orosflow.identity.accounts import Principal
from orosflow.views import status
from routing import get_router

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


def submit_as(data: Any, principal: Principal) -> Receipt:
    """Submit a form in the counselor's name; the reporter's e-mail must be the account's.

    A missing reporter e-mail is filled in from the account; a different one is refused,
    because "my reports" finds reports by it. Raises ``FormInvalid`` (listing every error)
    with nothing stored.
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
    return submit(data, actor=principal.actor)


# --- the receipt ------------------------------------------------------------------------------


@dataclass
class ReceiptRow:
    """One child's report on the receipt."""

    reference: str
    child_index: int
    child_name: str | None  # None when the content has been erased
    recipient: str | None  # the unit the routing preview chose
    calls: list[CallNow] = field(default_factory=list)


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


def receipt_view(sibling_group_id: str, principal: Principal) -> ReceiptView | None:
    """The receipt of one submission (all siblings), or None if it is not the caller's.

    Whom to phone comes from a routing preview at the time of submission, which needs the
    child's data: each report is read with an audited ``read_report`` (purpose "receipt").
    """
    keyring = load_keyring()
    router = get_router()
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
            request = routing_request_for(content.child, content.form)
            decision = router.route(request.model_copy(update={"at": r.submitted_at}))
            rows.append(
                ReceiptRow(
                    r.reference,
                    r.child_index,
                    content.child.name,
                    decision.unit_name,
                    calls_for(decision),
                )
            )
        first = reports[0]
        return ReceiptView(sibling_group_id, first.submitted_at, first.urgency, rows)


# --- status, feedback, phone contact -----------------------------------------------------------


def my_reports(principal: Principal, now: datetime | None = None) -> list[dict[str, Any]]:
    """The counselor's reports, newest first (metadata only; see ``orosflow.views.status``)."""
    if not principal.email:
        return []
    return status.my_reports(principal.email, now)


def own_status(
    reference: str, principal: Principal, now: datetime | None = None
) -> dict[str, Any] | None:
    """Status of one of the counselor's reports, or None if it is not theirs."""
    with session_scope() as s:
        report = _own(s, reference, principal)
        return status.report_status(s, report, now) if report is not None else None


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
