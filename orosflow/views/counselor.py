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
    all_decisions,
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


#: Why the counselor must phone, in the counselor's words (rule codes stay with the auditor).
CALL_REASONS: dict[str, str] = {
    "R-ACUTE-PHONE": "Ärendet är akut och enheten har öppet nu: ring och berätta om oron.",
    "R-OUT-OF-HOURS": "Ärendet är akut och kontoret har stängt: socialjouren tar akuta ärenden "
    "per telefon.",
    "R-SOCIALJOUR-CLOSED-112": "Socialjouren har stängt nu: ring 112 och be att få tala med "
    "socialjouren.",
    "R-PROTECTED-IDENTITY": "Barnet har skyddade personuppgifter: adress och stadsdelsområde "
    "lämnas per telefon, inte i den skriftliga anmälan.",
    "R-STOCKHOLM-DISTRICT-UNKNOWN": "Stadsdelsområdet är inte känt: berätta per telefon var "
    "barnet bor, så att anmälan kommer till rätt stadsdelsförvaltning.",
}
DEFAULT_CALL_REASON = "Rutinen kräver telefonkontakt för den här anmälan."


def call_reason(rule: str) -> str:
    return CALL_REASONS.get(rule, DEFAULT_CALL_REASON)


@dataclass
class Delivery:
    """Where the written report of one child goes, and whether it has been sent."""

    unit_id: str
    unit_name: str
    sent_at: datetime | None  # when the unit was notified; None: not yet
    opens_text: str | None  # "läses tidigast måndag …" when the unit was closed at submission


@dataclass
class PhoneDone:
    """A recorded call: when, to which unit (by name), who answered."""

    called_at: datetime
    unit_id: str | None
    unit_name: str | None
    answered_by: str


@dataclass
class ReceiptRow:
    """One child's report on the receipt."""

    reference: str
    child_index: int
    child_name: str | None  # None when the content has been erased
    recipient: str | None  # the unit the written report goes to (first one)
    calls: list[CallNow] = field(default_factory=list)
    written: list[Recipient] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    phone_done: list[PhoneDone] = field(default_factory=list)
    #: From the stored content, for the journal note: what the counselor answered.
    child_told: bool | None = None
    guardians_informed: list[tuple[bool, str | None]] = field(default_factory=list)

    def call_done(self, call: CallNow) -> PhoneDone | None:
        """The recorded call to this unit (a call without a unit counts for a single call)."""
        for p in self.phone_done:
            if p.unit_id == call.unit_id:
                return p
        if len(self.calls) == 1:
            return next((p for p in self.phone_done if not p.unit_id), None)
        return None

    @property
    def calls_open(self) -> list[CallNow]:
        return [c for c in self.calls if self.call_done(c) is None]


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

    @property
    def calls_open(self) -> bool:
        """Some call is still to be made (or, acute without a named unit, none is recorded)."""
        if any(r.calls_open for r in self.rows):
            return True
        return self.acute and not any(r.calls or r.phone_done for r in self.rows)


def _unit_names(s: Session, report: Report, decision: Decision | None) -> dict[str, str]:
    names = {d.unit_id: d.unit_name for d in all_decisions(decision)} if decision else {}
    names.update({h.unit_id: h.unit_name for h in lifecycle.report_handovers(s, report.id)})
    return names


def _phone_done(s: Session, report: Report, names: dict[str, str]) -> list[PhoneDone]:
    calls = s.exec(
        select(PhoneContact)
        .where(PhoneContact.report_id == report.id)
        .order_by(col(PhoneContact.called_at))
    )
    return [
        PhoneDone(p.called_at, p.unit_id, names.get(p.unit_id or ""), p.answered_by) for p in calls
    ]


def _deliveries(s: Session, report: Report, written: list[Recipient]) -> list[Delivery]:
    """Each written recipient with the time its notification went out (None: not yet)."""
    sent: dict[str, datetime] = {}
    for h in lifecycle.report_handovers(s, report.id):
        if h.notified_at and h.unit_id not in sent:
            sent[h.unit_id] = h.notified_at
    return [Delivery(w.unit_id, w.unit_name, sent.get(w.unit_id), w.opens_text) for w in written]


def _receipt_row(s: Session, report: Report, content: Any, decision: Decision) -> ReceiptRow:
    written = written_decisions(decision)
    shown = recipients(decision)
    names = _unit_names(s, report, decision)
    form = content.form
    return ReceiptRow(
        report.reference,
        report.child_index,
        content.child.name,
        written[0].unit_name if written else decision.unit_name,
        calls_for(decision),
        shown,
        _deliveries(s, report, shown),
        _phone_done(s, report, names),
        form.child_told,
        [(g.informed, g.not_informed_reason) for g in form.guardians],
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
            rows.append(_receipt_row(s, r, content, decision))
        first = reports[0]
        return ReceiptView(sibling_group_id, first.submitted_at, first.urgency, rows)


def _yes_no(value: bool | None) -> str:
    return "–" if value is None else ("ja" if value else "nej")


def _guardians_text(guardians: list[tuple[bool, str | None]]) -> str:
    """ "ja" / "nej, skäl: …" / per guardian when they differ; no names."""

    def one(informed: bool, reason: str | None) -> str:
        if informed:
            return "ja"
        return f"nej, skäl: {' '.join(reason.split())}" if reason else "nej"

    if not guardians:
        return "inga vårdnadshavare angivna"
    texts = [one(informed, reason) for informed, reason in guardians]
    if len(set(texts)) == 1:
        return texts[0]
    return "; ".join(f"vårdnadshavare {i}: {t}" for i, t in enumerate(texts, 1))


def journal_note(view: ReceiptView, row: ReceiptRow) -> str:
    """A short text for the clinic's patient record: when, to whom, the reference, and what
    the counselor answered about informing the young person and the guardians. Nothing else
    from the report (no name, no personnummer, no concern text)."""
    at = view.submitted_at.astimezone(TZ)
    units = " och ".join(dict.fromkeys(d.unit_name for d in row.deliveries)) or (
        row.recipient or "socialtjänsten"
    )
    parts = [
        f"Orosanmälan gjord {at:%Y-%m-%d} kl. {at:%H:%M} till {units}, referens {row.reference}",
        f"den unge informerad: {_yes_no(row.child_told)}",
        f"vårdnadshavare informerade: {_guardians_text(row.guardians_informed)}",
    ]
    return "; ".join(parts) + "."


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


def state_words(state: str, handovers: list[dict[str, Any]]) -> str:
    """The report's state as a counselor would say it (not the bare state label)."""
    open_units = [h["unit_name"] for h in handovers if h["status"] in ("notified", "escalated")]
    confirmed = [h["unit_name"] for h in handovers if h["status"] == "confirmed"]
    if state == R.RECEIVED or (state == R.ROUTED and not handovers):
        return "Sparad – skickas till socialtjänsten inom kort"
    if state == R.ROUTED:
        if open_units:
            return f"Skickad till {' och '.join(dict.fromkeys(open_units))} – väntar på bekräftelse"
        pending = [h["unit_name"] for h in handovers if h["status"] == "created"]
        if pending:
            return f"Skickas till {' och '.join(dict.fromkeys(pending))} inom några minuter"
        return "Skickas till socialtjänsten"
    if state == R.HANDED_OVER:
        unit = " och ".join(dict.fromkeys(confirmed)) or "socialtjänsten"
        return f"Mottagen av {unit} – väntar på återkoppling"
    if state == R.FEEDBACK_RECEIVED:
        return "Återkoppling har kommit"
    if state == R.CLOSED:
        return "Avslutad"
    if state == R.ERASED:
        return "Raderad"
    return lifecycle.REPORT_LABELS.get(state, state)


def phone_step(phone: dict[str, Any]) -> str:
    """The phone step in words: done (when, with whom), to do (whom, by when), or not needed."""
    if phone["recorded"]:
        last = phone["recorded"][-1]
        when = local_text(datetime.fromisoformat(last["called_at"]))
        unit = f" med {last['unit_name']}" if last.get("unit_name") else ""
        return f"Samtal registrerat {when}{unit}"
    if not phone["required"]:
        return "Telefonsamtal krävs inte"
    who = " eller ".join(c["unit_name"] for c in phone["to_call"]) or "socialtjänsten"
    due = (
        f" – registrera senast {local_text(datetime.fromisoformat(phone['due_at']))}"
        if phone["due_at"]
        else ""
    )
    late = " (försenat)" if phone["overdue"] else ""
    return f"Ring {who}: ej registrerat än{due}{late}"


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
    decision = stored_decision(report)
    names = _unit_names(s, report, decision)
    to_call = (
        [
            {"unit_id": c.unit_id, "unit_name": c.unit_name, "phone": c.phone}
            for c in calls_for(decision)
        ]
        if decision
        else [
            {"unit_id": h.unit_id, "unit_name": h.unit_name, "phone": h.phone}
            for h in hs
            if h.phone_required
        ]
    )
    phone = {
        "required": report.urgency == "acute" or any(h.phone_required for h in hs),
        "due_at": _iso(phone_due),
        "to_call": list({c["unit_id"]: c for c in to_call}.values()),
        "recorded": [
            {
                "unit_id": p.unit_id,
                "unit_name": names.get(p.unit_id or ""),
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
        warnings.append(
            f"Återkopplingen är försenad: den skulle ha kommit senast {local_text(fb_due)}."
        )
    return {
        "reference": report.reference,
        "state": report.status,
        "state_text": lifecycle.REPORT_LABELS.get(report.status, report.status),
        "state_words": state_words(report.status, handovers),
        "phone_step": phone_step(phone),
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
