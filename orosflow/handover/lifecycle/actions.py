"""What units and counselors do to a report: confirm, decline (re-routed at once), record the
phone contact, record and read feedback, close.

Each action changes state only through :func:`~orosflow.handover.lifecycle.states.apply_transition`
and queues every mail it causes in the outbox in its own transaction; after the commit it asks
for the report's delivery run (:func:`orosflow.handover.trigger.request_delivery`), so the
new unit or the counselor has the mail within seconds, whichever entry point acted (portal, API
or CLI). The escalation sweep is only the backstop.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from models.tables import Feedback, Handover, PhoneContact, Report, ReportKey
from models.text import text_problem
from orosflow.core.audit import append_event
from orosflow.core.clock import STOCKHOLM, utcnow
from orosflow.core.crypto import load_keyring, open_json, seal_json
from orosflow.core.db import session_scope
from orosflow.core.periodkeys import unwrap_report_key
from orosflow.handover import routing_call
from orosflow.handover.content import ReportErased, read_report
from orosflow.handover.lifecycle.deadlines import local_text, phone_due
from orosflow.handover.lifecycle.handovers import create_handover, next_attempt, unit_decision
from orosflow.handover.lifecycle.lookups import (
    handover_for_unit,
    report_by_reference,
    report_handovers,
)
from orosflow.handover.lifecycle.outbox import enqueue_mail
from orosflow.handover.lifecycle.states import (
    REPORT_LABELS,
    H,
    IllegalTransition,
    LifecycleError,
    R,
    apply_transition,
)
from orosflow.handover.trigger import request_delivery
from routing import Decision, Router, Unit, UnknownCodeError, get_router

FEEDBACK_OUTCOMES: dict[str, str] = {
    "opened": "utredning inleds",
    "not_opened": "utredning inleds inte",
    "already_ongoing": "utredning pågår redan",
}
#: Decline reasons are codes, never free text: the handover row and audit log are not encrypted.
DECLINE_REASONS: dict[str, str] = {
    "wrong_municipality": "fel kommun",
    "wrong_district": "fel stadsdelsområde",
    "not_responsible": "enheten ansvarar inte av annat skäl",
}


# --- results ----------------------------------------------------------------------------------


@dataclass
class ActionResult:
    """What an action did; ``changed`` is False for a repeat that changed nothing."""

    reference: str
    changed: bool
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _who(by: str) -> str:
    by = (by or "").strip()
    if not by or len(by) > 120:
        raise LifecycleError("by_invalid", "Ange vem som utför åtgärden (--by), högst 120 tecken.")
    return by


# --- confirm ----------------------------------------------------------------------------------


def confirm(reference: str, unit_id: str, by: str) -> ActionResult:
    """The receiving unit confirms receipt: closes its handover, and an escalated original
    with it; the report becomes handed over on its first confirmation. A repeat changes
    nothing, appends nothing and says so."""
    by = _who(by)
    with session_scope() as s:
        report = report_by_reference(s, reference, lock=True)
        h = handover_for_unit(s, report, unit_id)
        if h.status == H.CONFIRMED:
            return ActionResult(
                report.reference,
                False,
                f"Mottagandet av {report.reference} är redan bekräftat för {h.unit_name} "
                f"({h.confirmed_by}, {local_text(h.confirmed_at)}). Inget har ändrats.",
                {"handover_id": h.id, "unit_id": h.unit_id, "status": h.status},
            )
        now = utcnow()
        old = apply_transition(
            s,
            "confirm",
            h,
            actor=by,
            reference=report.reference,
            details={"unit_id": h.unit_id, "escalation_step": h.escalation_step},
        )
        h.confirmed_at, h.confirmed_by = now, by
        if h.escalated_from:
            parent = s.get(Handover, h.escalated_from, with_for_update=True)
            if parent is not None and parent.status == H.ESCALATED:
                apply_transition(
                    s,
                    "confirm_via_escalation",
                    parent,
                    actor=by,
                    reference=report.reference,
                    details={"via_handover_id": h.id, "via_unit_id": h.unit_id},
                )
                parent.confirmed_at, parent.confirmed_by = now, by
        if report.status == R.ROUTED:
            apply_transition(s, "hand_over", report, actor=by, reference=report.reference)
        return ActionResult(
            report.reference,
            True,
            f"Mottagandet av {report.reference} är bekräftat för {h.unit_name} av {by}.",
            {"handover_id": h.id, "unit_id": h.unit_id, "from": old, "status": h.status},
        )


# --- decline and re-route ---------------------------------------------------------------------


def _reroute_candidates(
    s: Session, report: Report, h: Handover, router: Router, by: str
) -> list[Decision]:
    """Written recipients to try, best first, decided anew at the moment of the decline: the
    router's answer now for the same municipality, the same without a district (Stockholm:
    the city-wide intake that forwards), the municipality's intake unit."""
    content = read_report(s, report.id, keyring=load_keyring(), actor=by, purpose="reroute")
    now = utcnow()
    req = routing_call.routing_request_for(content.child, content.form, now)
    out: list[Decision] = []
    for r in (req, req.model_copy(update={"district": None})):
        try:
            decisions = routing_call.written_decisions(router.route(r))
        except (UnknownCodeError, ValueError):
            continue
        out += [d for d in decisions if d.municipality == h.municipality]
    try:
        intake = router.intake_for(h.municipality)
        out.append(unit_decision(router, intake, h, now, phone_required=h.phone_required))
    except (UnknownCodeError, KeyError):
        pass
    return list({d.unit_id: d for d in reversed(out)}.values())[::-1]


def decline(
    reference: str, unit_id: str, by: str, reason: str, right_unit_id: str | None = None
) -> ActionResult:
    """A unit that is not the right one declines; the report is re-routed at once (to the unit
    it names, else by the router now, excluding every unit that declined), the new unit's
    notification and the counselor's notice are queued, and the delivery run is started.
    With no unit left the slot fails closed: counselor and operator are alerted."""
    by = _who(by)
    if reason not in DECLINE_REASONS:
        codes = ", ".join(f"{k} ({v})" for k, v in DECLINE_REASONS.items())
        raise LifecycleError("reason_invalid", f"Okänd orsak. Välj en av: {codes}.")
    router = get_router()
    right: Unit | None = None
    if right_unit_id:
        try:
            right = router.unit(right_unit_id.strip())
        except UnknownCodeError as exc:
            raise LifecycleError("unknown_unit", exc.message) from None
        if right.id == unit_id:
            raise LifecycleError(
                "right_unit_same", "Rätt enhet kan inte vara samma enhet som avböjer."
            )
    with session_scope() as s:
        report = report_by_reference(s, reference, lock=True)
        h = handover_for_unit(s, report, unit_id)
        apply_transition(
            s,
            "decline",
            h,
            actor=by,
            reference=report.reference,
            details={"unit_id": h.unit_id, "reason": reason, "right_unit_id": right and right.id},
        )
        h.declined_at, h.declined_by, h.decline_reason = utcnow(), by, reason
        declined = {x.unit_id for x in report_handovers(s, report.id) if x.status == H.DECLINED} | {
            h.unit_id
        }
        target: Decision | None = None
        if right is not None:
            target = unit_decision(
                router,
                right,
                h,
                utcnow(),
                phone_required=h.phone_required or report.urgency == "acute",
            )
        else:
            target = next(
                (
                    d
                    for d in _reroute_candidates(s, report, h, router, by)
                    if d.unit_id not in declined
                ),
                None,
            )
        report_id, ref = report.id, report.reference
        if target is None:
            append_event(
                s,
                actor=by,
                action="handover.reroute_failed",
                report_id=report.id,
                handover_id=h.id,
                rule="L-FAIL-CLOSED",
                details={"unit_id": h.unit_id, "reason": "no_unit_left"},
            )
            enqueue_mail(s, f"{h.id}.unresolved-counselor", "unresolved_counselor", report.id, h.id)
            enqueue_mail(s, f"{h.id}.unresolved-operator", "unresolved_operator", report.id, h.id)
            result = ActionResult(
                report.reference,
                True,
                f"{h.unit_name} har avböjt {report.reference}, men ingen annan mottagare kunde "
                "fastställas. Kuratorn och operatören har larmats.",
                {"declined_handover_id": h.id, "new_handover_id": None, "failed_closed": True},
            )
        else:
            new = create_handover(
                s,
                report,
                target,
                position=h.position,
                attempt=next_attempt(s, h, target.unit_id),
                actor=by,
                rule="L-DECLINE-REROUTE",
                explanation=(
                    f"{h.unit_name} avböjde anmälan ({DECLINE_REASONS[reason]}). "
                    + (
                        f"Enheten angav {target.unit_name} som rätt mottagare."
                        if right
                        else f"Ny dirigering gav {target.unit_name}."
                    )
                    + " Tillämpad regel: L-DECLINE-REROUTE."
                ),
                rerouted_from=h.id,
                details={"reason": reason, "right_unit_given": right is not None},
            )
            enqueue_mail(s, f"{h.id}.declined", "rerouted", report.id, h.id)
            result = ActionResult(
                report.reference,
                True,
                f"{h.unit_name} har avböjt {report.reference}; anmälan skickas nu till "
                f"{target.unit_name}. Kuratorn får besked.",
                {
                    "declined_handover_id": h.id,
                    "new_handover_id": new.id,
                    "new_unit_id": target.unit_id,
                    "failed_closed": False,
                },
            )
    return _delivered(result, report_id, ref)


def _delivered(result: ActionResult, report_id: str, reference: str) -> ActionResult:
    """After the commit: start the report's delivery run for what the action queued."""
    started = request_delivery(report_id, reference)
    result.details["delivery"] = "started" if started else "queued"
    return result


# --- phone contact ----------------------------------------------------------------------------


def record_phone_contact(
    reference: str, answered_by: str, at: datetime, by: str, unit_id: str | None = None
) -> ActionResult:
    """The counselor records the mandatory phone call (who answered, when). A repeat of the
    same call changes nothing."""
    by = _who(by)
    answered_by = (answered_by or "").strip()
    if not answered_by or len(answered_by) > 120:
        raise LifecycleError(
            "answered_by_invalid", "Ange vem som svarade i telefon, högst 120 tecken."
        )
    problem = text_problem(answered_by)
    if problem is not None:
        raise LifecycleError("answered_by_invalid", problem.message)
    if at.tzinfo is None or at.utcoffset() is None:
        raise LifecycleError("at_naive", "Tidpunkten för samtalet saknar tidszon.")
    at = at.astimezone(UTC)
    if at > utcnow() + timedelta(minutes=5):
        raise LifecycleError("at_future", "Tidpunkten för samtalet ligger i framtiden.")
    if unit_id:
        try:
            get_router().unit(unit_id)
        except UnknownCodeError as exc:
            raise LifecycleError("unknown_unit", exc.message) from None
    with session_scope() as s:
        report = report_by_reference(s, reference, lock=True)
        if report.status in (R.CLOSED, R.ERASED):
            raise IllegalTransition(
                "illegal_transition",
                f"Anmälan {report.reference} är {REPORT_LABELS[report.status]}; samtal kan inte "
                "registreras.",
            )
        if at < report.submitted_at - timedelta(days=1):
            raise LifecycleError(
                "at_too_early", "Samtalet ligger mer än ett dygn före anmälan; kontrollera datumet."
            )
        for p in s.exec(select(PhoneContact).where(PhoneContact.report_id == report.id)):
            if p.called_at == at and p.answered_by == answered_by:
                return ActionResult(
                    report.reference,
                    False,
                    f"Samtalet {local_text(at)} är redan registrerat för {report.reference}.",
                    {"phone_contact_id": p.id},
                )
        pid = str(uuid.uuid4())
        s.add(
            PhoneContact(
                id=pid,
                report_id=report.id,
                unit_id=unit_id,
                answered_by=answered_by,
                called_at=at,
                recorded_at=utcnow(),
                recorded_by=by,
            )
        )
        s.flush()
        due = phone_due(report)
        append_event(
            s,
            actor=by,
            action="phone.recorded",
            report_id=report.id,
            rule="L-PHONE",
            details={
                "phone_contact_id": pid,
                "unit_id": unit_id,
                "called_at": at.isoformat(),
                "late": bool(due and at > due),
            },
        )
        return ActionResult(
            report.reference,
            True,
            f"Telefonkontakten {local_text(at)} är registrerad för {report.reference}.",
            {"phone_contact_id": pid},
        )


# --- feedback ---------------------------------------------------------------------------------


def _data_key(s: Session, report: Report) -> bytes:
    key_row = s.get(ReportKey, report.id)
    if key_row is None:
        raise ReportErased(report.reference)
    return unwrap_report_key(
        load_keyring(), key_row.master_key_id, key_row.wrapped_key, report.id, key_row.period
    )


def record_feedback(
    reference: str, unit_id: str, outcome: str, decided_on: date, by: str
) -> ActionResult:
    """A unit that confirmed receipt records its feedback (encrypted: it is sensitive); the
    report becomes feedback_received and the counselor is told that feedback exists.

    Recorded once per handover: the same feedback again changes nothing; a different one is
    refused (``feedback_exists``), because a change is a correction (:func:`correct_feedback`),
    audited as such."""
    return _save_feedback(reference, unit_id, outcome, decided_on, by, correct=False)


def correct_feedback(
    reference: str, unit_id: str, outcome: str, decided_on: date, by: str
) -> ActionResult:
    """Correct the unit's recorded feedback: a new entry that replaces the current one (both
    stay on record), audited as ``feedback.corrected`` with the previous and the new outcome
    code; the counselor is told again. The same values as now change nothing."""
    return _save_feedback(reference, unit_id, outcome, decided_on, by, correct=True)


def feedback_rows(s: Session, report: Report, handover_id: str | None = None) -> list[Feedback]:
    """A report's feedback entries, oldest first. Per handover the newest is the current one
    and every later entry corrected the one before it."""
    stmt = select(Feedback).where(Feedback.report_id == report.id)
    if handover_id is not None:
        stmt = stmt.where(Feedback.handover_id == handover_id)
    return list(s.exec(stmt.order_by(col(Feedback.recorded_at), col(Feedback.id))))


def open_feedback(s: Session, report: Report, f: Feedback) -> dict[str, Any]:
    """One entry's sealed outcome and decision date (``ReportErased`` once the key is gone).
    The caller audits the read."""
    data = open_json(_data_key(s, report), f.data_enc, f"feedback:{report.id}:{f.id}")
    assert isinstance(data, dict)
    return data


def _save_feedback(
    reference: str, unit_id: str, outcome: str, decided_on: date, by: str, *, correct: bool
) -> ActionResult:
    by = _who(by)
    if outcome not in FEEDBACK_OUTCOMES:
        codes = ", ".join(f"{k} ({v})" for k, v in FEEDBACK_OUTCOMES.items())
        raise LifecycleError("outcome_invalid", f"Okänt utfall. Välj en av: {codes}.")
    if decided_on > utcnow().astimezone(STOCKHOLM).date():
        raise LifecycleError("date_future", "Datumet för beslutet ligger i framtiden.")
    with session_scope() as s:
        report = report_by_reference(s, reference, lock=True)
        if decided_on < report.report_date:
            raise LifecycleError("date_too_early", "Datumet ligger före anmälans datum.")
        if report.status not in (R.HANDED_OVER, R.FEEDBACK_RECEIVED):
            # Refused by the table (e.g. routed: nobody has confirmed yet; closed).
            apply_transition(s, "feedback", report, actor=by, reference=report.reference)
        h = handover_for_unit(s, report, unit_id)
        if h.status != H.CONFIRMED:
            raise IllegalTransition(
                "not_confirmed",
                f"{h.unit_name} har inte bekräftat mottagandet av {report.reference}; bekräfta "
                "först, sedan kan återkoppling registreras.",
            )
        key = _data_key(s, report)
        payload = {"outcome": outcome, "decided_on": decided_on.isoformat()}
        earlier = feedback_rows(s, report, h.id)
        current = earlier[-1] if earlier else None
        now_data = open_feedback(s, report, current) if current is not None else None
        if now_data == payload:
            return ActionResult(
                report.reference,
                False,
                f"Samma återkoppling från {h.unit_name} är redan registrerad; inget har ändrats.",
                {"feedback_id": current.id if current else None},
            )
        if correct and current is None:
            raise IllegalTransition(
                "no_feedback",
                f"{h.unit_name} har inte registrerat någon återkoppling för {report.reference} "
                "att rätta; registrera den först.",
            )
        if not correct and current is not None:
            raise IllegalTransition(
                "feedback_exists",
                f"Återkoppling från {h.unit_name} är redan registrerad för {report.reference}. "
                "En ändring görs som en rättelse (”Rätta återkopplingen”); inget har ändrats.",
            )
        fid = str(uuid.uuid4())
        at = utcnow()
        if current is not None and at <= current.recorded_at:
            # Entries are ordered by time: a correction is always after what it corrects.
            at = current.recorded_at + timedelta(milliseconds=1)
        s.add(
            Feedback(
                id=fid,
                report_id=report.id,
                handover_id=h.id,
                unit_id=h.unit_id,
                data_enc=seal_json(key, payload, f"feedback:{report.id}:{fid}"),
                recorded_at=at,
                recorded_by=by,
            )
        )
        s.flush()
        if current is not None and now_data is not None:
            # Outcome codes only (no personal data): the auditor sees what the correction did.
            append_event(
                s,
                actor=by,
                action="feedback.corrected",
                report_id=report.id,
                handover_id=h.id,
                rule="L-FEEDBACK-CORRECT",
                details={
                    "feedback_id": fid,
                    "corrects": current.id,
                    "unit_id": h.unit_id,
                    "previous_outcome": now_data.get("outcome"),
                    "outcome": outcome,
                    "decision_date_changed": now_data.get("decided_on") != payload["decided_on"],
                },
            )
            message = (
                f"Återkopplingen från {h.unit_name} är rättad; kuratorn får besked om att den "
                "finns att läsa i portalen."
            )
        else:
            append_event(
                s,
                actor=by,
                action="feedback.recorded",
                report_id=report.id,
                handover_id=h.id,
                rule="L-FEEDBACK",
                details={"feedback_id": fid, "unit_id": h.unit_id},
            )
            message = (
                f"Återkopplingen från {h.unit_name} är registrerad; kuratorn får besked om att "
                "den finns att läsa i portalen."
            )
        if report.status == R.HANDED_OVER:
            apply_transition(s, "feedback", report, actor=by, reference=report.reference)
        enqueue_mail(s, f"{h.id}.feedback-{len(earlier) + 1}", "feedback_notice", report.id, h.id)
        report_id, ref = report.id, report.reference
        result = ActionResult(
            report.reference,
            True,
            message,
            {"feedback_id": fid, "handover_id": h.id, "corrected": current is not None},
        )
    return _delivered(result, report_id, ref)


def read_feedback(reference: str, actor: str, purpose: str = "feedback") -> list[dict[str, Any]]:
    """Decrypt the feedback of a report for ``actor``; the read is an audit event.

    ``corrected``: the entry replaced an earlier one of the same unit; ``superseded``: a later
    correction replaced it (the current entry of a unit is the one not superseded)."""
    actor = _who(actor)
    with session_scope() as s:
        report = report_by_reference(s, reference)
        rows = feedback_rows(s, report)
        out = []
        seen: set[str] = set()
        for i, f in enumerate(rows):
            data = open_feedback(s, report, f)
            out.append(
                {
                    "feedback_id": f.id,
                    "unit_id": f.unit_id,
                    "outcome": data["outcome"],
                    "outcome_text": FEEDBACK_OUTCOMES[data["outcome"]],
                    "decided_on": data["decided_on"],
                    "recorded_at": f.recorded_at.isoformat(),
                    "recorded_by": f.recorded_by,
                    "corrected": f.handover_id in seen,
                    "superseded": any(g.handover_id == f.handover_id for g in rows[i + 1 :]),
                }
            )
            seen.add(f.handover_id)
        append_event(
            s,
            actor=actor,
            action="content.read",
            report_id=report.id,
            details={"purpose": purpose, "feedback_items": len(out)},
        )
        return out


def close_report(reference: str, by: str) -> ActionResult:
    """Close a report whose feedback has arrived (the counselor's case is done)."""
    by = _who(by)
    with session_scope() as s:
        report = report_by_reference(s, reference, lock=True)
        apply_transition(s, "close", report, actor=by, reference=report.reference)
        return ActionResult(report.reference, True, f"Anmälan {report.reference} är avslutad.")


def reporter_digest(email: str) -> str:
    """Lookup key for "my reports" (the address itself stays in the encrypted payload)."""
    return hashlib.sha256(f"orosflow-reporter:{email.strip().casefold()}".encode()).hexdigest()
