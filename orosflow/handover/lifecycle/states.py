"""States of reports and handovers, and the one transition table that changes them.

Handover: created → notified → confirmed | escalated → confirmed (by the escalation target);
created/notified/escalated → declined (re-routed at once); created → failed (no written
channel). A unit may confirm or decline a created handover before its mail went out: it is in
its inbox from the moment the report was routed.
Report: received → routed → handed_over (first confirmation) → feedback_received → closed;
any state → erased (retention or a decision to erase).

:func:`apply_transition` is the only code that assigns a status (``tests/test_state_owner.py``
fails if another module does): it refuses what the table does not allow with a Swedish message
and appends the audit event (actor and rule) in the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from models.tables import Handover, HandoverStatus, Report, ReportStatus
from orosflow.core.audit import append_event

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


_LIVE_REPORT = {R.RECEIVED, R.ROUTED, R.HANDED_OVER, R.FEEDBACK_RECEIVED, R.CLOSED}

#: The one transition table. Anything not listed is refused.
TRANSITIONS: dict[str, Transition] = {
    "route": _t("report", {R.RECEIVED}, R.ROUTED, "report.status", "L-ROUTE", "dirigeras"),
    "notify": _t("handover", {H.CREATED}, H.NOTIFIED, "handover.notified", "L-NOTIFY", "aviseras"),
    "fail": _t("handover", {H.CREATED}, H.FAILED, "handover.unresolved", "L-FAIL", "misslyckas"),
    "confirm": _t(
        "handover", {H.CREATED, H.NOTIFIED, H.ESCALATED}, H.CONFIRMED, "handover.confirmed",
        "L-CONFIRM", "bekräftas",
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
        "handover", {H.CREATED, H.NOTIFIED, H.ESCALATED}, H.DECLINED, "handover.declined",
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
    "erase": _t("report", _LIVE_REPORT, R.ERASED, "report.erased", "L-ERASE", "raderas"),
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
    if t.entity != ("handover" if isinstance(obj, Handover) else "report"):
        raise TypeError(f"transition {name} applies to a {t.entity}")
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
