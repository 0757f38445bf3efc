"""Handover and report lifecycle: states, the one transition table, deadlines and the actions
that units and counselors take (confirm, decline, phone contact, feedback, close).

Handover: created → notified → confirmed | escalated → confirmed (by the escalation target);
notified/escalated → declined (re-routed at once); created → failed (no channel).
Report: received → routed → handed_over (first confirmation) → feedback_received → closed.

Every change goes through :func:`apply_transition`, which refuses what the table does not allow
with a Swedish message and appends the audit event (actor and rule) in the caller's
transaction. ``orosflow.handover.delivery`` still performs created → notified/failed and
received → routed itself; those rows are listed here so the table is complete.

E-mails are never sent from here: actions put a row in the ``lifecycle_mail`` outbox in the
same transaction and :mod:`orosflow.handover.escalation` delivers it, so a rolled-back action sends
nothing and a crashed send is retried with the same Message-ID.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlmodel import Session, col, select

from models.tables import (
    Feedback,
    Handover,
    HandoverStatus,
    LifecycleMail,
    PhoneContact,
    Report,
    ReportKey,
    ReportStatus,
)
from orosflow.core.audit import append_event
from orosflow.core.clock import utcnow
from orosflow.core.crypto import load_keyring, open_json, seal_json
from orosflow.core.db import session_scope
from orosflow.core.legal import deadlines
from orosflow.core.mail import message_id
from orosflow.handover import delivery as handovers
from orosflow.handover.content import ReportErased, read_report
from routing import Router, Unit, UnknownCodeError, get_router
from routing.hours import TZ

H = HandoverStatus
R = ReportStatus

HANDOVER_LABELS: dict[str, str] = {
    H.CREATED: "skapad",
    H.NOTIFIED: "aviserad",
    H.CONFIRMED: "bekräftad",
    H.ESCALATED: "eskalerad",
    H.DECLINED: "avböjd",
    H.FAILED: "misslyckad (ingen kanal)",
}
REPORT_LABELS: dict[str, str] = {
    R.RECEIVED: "mottagen",
    R.ROUTED: "dirigerad",
    R.HANDED_OVER: "överlämnad",
    R.FEEDBACK_RECEIVED: "återkoppling mottagen",
    R.CLOSED: "avslutad",
    R.ERASED: "raderad",
}
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
#: Escalation ladder of an unconfirmed handover (see orosflow.handover.escalation).
ESCALATION_STEPS: dict[int, str] = {
    1: "L-ESCALATE-REMIND",
    2: "L-ESCALATE-SOCIALJOUR",
    3: "L-ESCALATE-COUNSELOR",
}
LAST_STEP = max(ESCALATION_STEPS)


@dataclass(frozen=True)
class Transition:
    entity: str  # "handover" | "report"
    sources: frozenset[str]
    target: str
    action: str
    rule: str
    verb: str  # Swedish passive infinitive for the refusal message


def _t(
    entity: str, sources: set[str], target: str, action: str, rule: str, verb: str
) -> Transition:
    return Transition(entity, frozenset(sources), target, action, rule, verb)


#: The one transition table. Anything not listed is refused.
TRANSITIONS: dict[str, Transition] = {
    # Performed by orosflow.handover.delivery (its events carry the routing rule); listed so the
    # table is complete.
    "notify": _t("handover", {H.CREATED}, H.NOTIFIED, "handover.notified", "L-NOTIFY", "aviseras"),
    "fail": _t("handover", {H.CREATED}, H.FAILED, "handover.unresolved", "L-FAIL", "misslyckas"),
    "route": _t("report", {R.RECEIVED}, R.ROUTED, "report.status", "L-ROUTE", "dirigeras"),
    # Performed here and in orosflow.handover.escalation.
    "confirm": _t(
        "handover", {H.NOTIFIED, H.ESCALATED}, H.CONFIRMED, "handover.confirmed", "L-CONFIRM",
        "bekräftas",
    ),
    "confirm_via_escalation": _t(
        "handover", {H.ESCALATED}, H.CONFIRMED, "handover.confirmed", "L-CONFIRM-VIA-ESCALATION",
        "bekräftas via eskaleringen",
    ),
    "remind": _t(
        "handover", {H.NOTIFIED}, H.ESCALATED, "handover.escalated", "L-ESCALATE-REMIND",
        "påminnas",
    ),
    "escalate_socialjour": _t(
        "handover", {H.ESCALATED}, H.ESCALATED, "handover.escalated", "L-ESCALATE-SOCIALJOUR",
        "eskaleras till socialjour",
    ),
    "escalate_counselor": _t(
        "handover", {H.ESCALATED}, H.ESCALATED, "handover.escalated", "L-ESCALATE-COUNSELOR",
        "eskaleras till kuratorn",
    ),
    "decline": _t(
        "handover", {H.NOTIFIED, H.ESCALATED}, H.DECLINED, "handover.declined",
        "L-DECLINE-REROUTE", "avböjas",
    ),
    "hand_over": _t(
        "report", {R.ROUTED}, R.HANDED_OVER, "report.status", "L-CONFIRM", "markeras som överlämnad"
    ),
    "feedback": _t(
        "report", {R.HANDED_OVER}, R.FEEDBACK_RECEIVED, "report.status", "L-FEEDBACK",
        "få återkoppling",
    ),
    "close": _t("report", {R.FEEDBACK_RECEIVED}, R.CLOSED, "report.status", "L-CLOSE", "avslutas"),
}  # fmt: skip


class LifecycleError(ValueError):
    """Refused input or action; ``message`` is Swedish and shown to the user as is."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(message)

    def as_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class IllegalTransition(LifecycleError):
    """The transition table does not allow this change from the current state."""


def apply_transition(
    session: Session,
    name: str,
    obj: Handover | Report,
    *,
    actor: str,
    reference: str,
    rule: str | None = None,
    details: dict[str, Any] | None = None,
) -> str:
    """Check ``name`` against the table, change the state and append its event; returns the
    old state. Raises :class:`IllegalTransition` (nothing changed) when not allowed."""
    t = TRANSITIONS[name]
    old = obj.status
    if isinstance(obj, Handover):
        labels, what, report_id, handover_id = (
            HANDOVER_LABELS,
            f"Överlämningen av {reference} till {obj.unit_name}",
            obj.report_id,
            obj.id,
        )
    else:
        labels, what, report_id, handover_id = REPORT_LABELS, f"Anmälan {reference}", obj.id, None
    if old not in t.sources:
        allowed = " eller ".join(labels.get(s, s) for s in sorted(t.sources))
        raise IllegalTransition(
            "illegal_transition",
            f"{what} är {labels.get(old, old)} och kan inte {t.verb} "
            f"(det går bara när den är {allowed}).",
        )
    obj.status = t.target
    session.add(obj)
    append_event(
        session,
        actor=actor,
        action=t.action,
        report_id=report_id,
        handover_id=handover_id,
        rule=rule or t.rule,
        details={"transition": name, "from": old, "to": t.target, **(details or {})},
    )
    return old


# --- deadlines ------------------------------------------------------------------------------


def _handover_cfg() -> dict[str, Any]:
    return deadlines()["handover"]


def handover_deadline(urgency: str, unit_id: str, notified_at: datetime) -> datetime:
    """When the unit must have confirmed: acute N minutes after notification; otherwise a
    local time on the unit's next working day (Swedish holidays respected), both configured
    in deadlines.toml. An unknown unit falls back to 24 hours rather than no deadline."""
    cfg = _handover_cfg()
    if urgency == "acute":
        return notified_at + timedelta(minutes=int(cfg["acute_minutes"]))
    hh, mm = (int(p) for p in str(cfg["not_acute_next_working_day_at"]).split(":"))
    try:
        due = get_router().next_working_day_at(unit_id, notified_at, time(hh, mm))
    except (UnknownCodeError, ValueError):
        return notified_at + timedelta(days=1)
    return due.astimezone(UTC)


def next_step_due(h: Handover, urgency: str) -> datetime | None:
    """When the next escalation step of ``h`` is due, or ``None`` (no deadline, ladder done).

    Step 1 is due at the deadline; each later step one more deadline period after the previous
    step actually ran (acute: 60 min; not acute: 12:00 on the unit's next working day), so a
    sweep that was down does not fire several steps at once.
    """
    if h.deadline_at is None or h.escalation_step >= LAST_STEP:
        return None
    if h.escalation_step == 0 or h.last_escalated_at is None:
        return h.deadline_at
    return handover_deadline(urgency, h.unit_id, h.last_escalated_at)


def phone_due(report: Report) -> datetime | None:
    """Acute reports: the counselor's phone contact must be recorded by then."""
    if report.urgency != "acute":
        return None
    return report.submitted_at + timedelta(
        minutes=int(_handover_cfg()["acute_phone_record_minutes"])
    )


def feedback_due(handed_over_at: datetime | None) -> datetime | None:
    """Feedback deadline, counted from receipt by social services (domain.md 10.3)."""
    if handed_over_at is None:
        return None
    return handed_over_at + timedelta(days=int(deadlines()["social_services"]["feedback_days"]))


def feedback_deadline_verified() -> bool:
    return bool(deadlines()["social_services"].get("feedback_days_verified", False))


def local_text(at: datetime | None) -> str:
    """Stockholm wall-clock time for Swedish messages."""
    return at.astimezone(TZ).strftime("%Y-%m-%d %H:%M") if at else "–"


# --- lookups ----------------------------------------------------------------------------------


def report_by_reference(session: Session, reference: str, *, lock: bool = False) -> Report:
    stmt = select(Report).where(Report.reference == reference.strip().upper())
    if lock:
        stmt = stmt.with_for_update()
    report = session.exec(stmt).first()
    if report is None:
        raise LifecycleError("report_not_found", f"Det finns ingen anmälan med nummer {reference}.")
    return report


_PICK_ORDER = {H.NOTIFIED: 0, H.ESCALATED: 0, H.CREATED: 1, H.CONFIRMED: 2, H.DECLINED: 3}


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


def enqueue_mail(
    session: Session, mail_id: str, kind: str, report_id: str, handover_id: str | None
) -> bool:
    """Put a mail in the outbox once; the id makes it idempotent and is its Message-ID."""
    if session.get(LifecycleMail, mail_id) is not None:
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


def new_handover(
    session: Session,
    *,
    origin: Handover,
    unit: Unit,
    router: Router,
    rule: str,
    explanation: str,
    actor: str,
    urgency: str,
    escalated_from: str | None = None,
    rerouted_from: str | None = None,
    details: dict[str, Any] | None = None,
) -> Handover:
    """A further attempt for the same recipient slot, with its ``handover.created`` event."""
    attempts = [
        x.attempt
        for x in session.exec(
            select(Handover).where(
                Handover.report_id == origin.report_id, Handover.unit_id == unit.id
            )
        )
    ]
    attempt = max([origin.attempt, *attempts]) + 1
    if unit.municipality:
        municipality = unit.municipality
    elif origin.municipality in unit.municipalities or not unit.municipalities:
        municipality = origin.municipality
    else:
        municipality = unit.municipalities[0]
    hid = str(uuid.uuid4())
    h = Handover(
        id=hid,
        report_id=origin.report_id,
        attempt=attempt,
        position=origin.position,
        municipality=municipality,
        municipality_name=router.municipality_name(municipality),
        unit_id=unit.id,
        unit_kind=unit.kind,
        unit_name=unit.name,
        email=unit.email,
        phone=unit.phone,
        phone_required=origin.phone_required or urgency == "acute" or unit.kind == "socialjour",
        rule=rule,
        explanation=explanation[:2000],
        directory_version=router.directory_version,
        message_id=message_id(hid),
        created_at=utcnow(),
        escalated_from=escalated_from,
        rerouted_from=rerouted_from,
    )
    session.add(h)
    session.flush()
    append_event(
        session,
        actor=actor,
        action="handover.created",
        report_id=h.report_id,
        handover_id=hid,
        rule=rule,
        details={
            "unit_id": unit.id,
            "unit_kind": unit.kind,
            "municipality": municipality,
            "attempt": attempt,
            "escalated_from": escalated_from,
            "rerouted_from": rerouted_from,
            "has_email_channel": bool(unit.email),
            "directory_version": router.directory_version,
            **(details or {}),
        },
    )
    return h


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
) -> list[str]:
    """Units to try, best first: the router's answer now for the same municipality, the same
    without a district (Stockholm: the city-wide intake that forwards), the municipality's
    intake unit."""
    content = read_report(s, report.id, keyring=load_keyring(), actor=by, purpose="reroute")
    req = handovers.routing_request(content)
    out: list[str] = []
    for r in (req, req.model_copy(update={"district": None})):
        try:
            decisions = handovers._flatten(router.route(r))
        except (UnknownCodeError, ValueError):
            continue
        out += [d.unit_id for d in decisions if d.municipality == h.municipality]
    try:
        out.append(router.intake_for(h.municipality).id)
    except (UnknownCodeError, KeyError):
        pass
    return list(dict.fromkeys(out))


def decline(
    reference: str, unit_id: str, by: str, reason: str, right_unit_id: str | None = None
) -> ActionResult:
    """A unit that is not the right one declines; the report is re-routed at once (to the unit
    it names, else by the router excluding every unit that declined) and the counselor is
    told. With no unit left the slot fails closed: counselor and operator are alerted."""
    by = _who(by)
    if reason not in DECLINE_REASONS:
        codes = ", ".join(f"{k} ({v})" for k, v in DECLINE_REASONS.items())
        raise LifecycleError("reason_invalid", f"Okänd orsak {reason!r}. Välj en av: {codes}.")
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
        target = right
        if target is None:
            for uid in _reroute_candidates(s, report, h, router, by):
                if uid not in declined:
                    target = router.unit(uid)
                    break
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
            return ActionResult(
                report.reference,
                True,
                f"{h.unit_name} har avböjt {report.reference}, men ingen annan mottagare kunde "
                "fastställas. Kuratorn och operatören har larmats.",
                {"declined_handover_id": h.id, "new_handover_id": None, "failed_closed": True},
            )
        new = new_handover(
            s,
            origin=h,
            unit=target,
            router=router,
            rule="L-DECLINE-REROUTE",
            explanation=(
                f"{h.unit_name} avböjde anmälan ({DECLINE_REASONS[reason]}). "
                + (
                    f"Enheten angav {target.name} som rätt mottagare."
                    if right
                    else f"Ny dirigering gav {target.name}."
                )
                + " Tillämpad regel: L-DECLINE-REROUTE."
            ),
            actor=by,
            urgency=report.urgency,
            rerouted_from=h.id,
            details={"reason": reason, "right_unit_given": right is not None},
        )
        enqueue_mail(s, f"{h.id}.declined", "rerouted", report.id, h.id)
        return ActionResult(
            report.reference,
            True,
            f"{h.unit_name} har avböjt {report.reference}; anmälan skickas nu till {target.name}. "
            "Kuratorn får besked.",
            {
                "declined_handover_id": h.id,
                "new_handover_id": new.id,
                "new_unit_id": target.id,
                "failed_closed": False,
            },
        )


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
    return load_keyring().unwrap(key_row.master_key_id, key_row.wrapped_key, report.id)


def record_feedback(
    reference: str, unit_id: str, outcome: str, decided_on: date, by: str
) -> ActionResult:
    """A unit that confirmed receipt records its feedback (encrypted: it is sensitive); the
    report becomes feedback_received and the counselor is told that feedback exists."""
    by = _who(by)
    if outcome not in FEEDBACK_OUTCOMES:
        codes = ", ".join(f"{k} ({v})" for k, v in FEEDBACK_OUTCOMES.items())
        raise LifecycleError("outcome_invalid", f"Okänt utfall {outcome!r}. Välj en av: {codes}.")
    if decided_on > utcnow().astimezone(TZ).date():
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
        earlier = list(s.exec(select(Feedback).where(Feedback.handover_id == h.id)))
        for f in earlier:
            if open_json(key, f.data_enc, f"feedback:{report.id}:{f.id}") == payload:
                return ActionResult(
                    report.reference,
                    False,
                    f"Samma återkoppling från {h.unit_name} är redan registrerad.",
                    {"feedback_id": f.id},
                )
        fid = str(uuid.uuid4())
        s.add(
            Feedback(
                id=fid,
                report_id=report.id,
                handover_id=h.id,
                unit_id=h.unit_id,
                data_enc=seal_json(key, payload, f"feedback:{report.id}:{fid}"),
                recorded_at=utcnow(),
                recorded_by=by,
            )
        )
        s.flush()
        append_event(
            s,
            actor=by,
            action="feedback.recorded",
            report_id=report.id,
            handover_id=h.id,
            rule="L-FEEDBACK",
            details={"feedback_id": fid, "unit_id": h.unit_id},
        )
        if report.status == R.HANDED_OVER:
            apply_transition(s, "feedback", report, actor=by, reference=report.reference)
        enqueue_mail(s, f"{h.id}.feedback-{len(earlier) + 1}", "feedback_notice", report.id, h.id)
        return ActionResult(
            report.reference,
            True,
            f"Återkopplingen från {h.unit_name} är registrerad; kuratorn får besked om att den "
            "finns att läsa i portalen.",
            {"feedback_id": fid, "handover_id": h.id},
        )


def read_feedback(reference: str, actor: str, purpose: str = "feedback") -> list[dict[str, Any]]:
    """Decrypt the feedback of a report for ``actor``; the read is an audit event."""
    actor = _who(actor)
    with session_scope() as s:
        report = report_by_reference(s, reference)
        rows = list(
            s.exec(
                select(Feedback)
                .where(Feedback.report_id == report.id)
                .order_by(col(Feedback.recorded_at))
            )
        )
        key = _data_key(s, report)
        out = []
        for f in rows:
            data = open_json(key, f.data_enc, f"feedback:{report.id}:{f.id}")
            assert isinstance(data, dict)
            out.append(
                {
                    "feedback_id": f.id,
                    "unit_id": f.unit_id,
                    "outcome": data["outcome"],
                    "outcome_text": FEEDBACK_OUTCOMES[data["outcome"]],
                    "decided_on": data["decided_on"],
                    "recorded_at": f.recorded_at.isoformat(),
                    "recorded_by": f.recorded_by,
                }
            )
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
