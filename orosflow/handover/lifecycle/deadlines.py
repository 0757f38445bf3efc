"""Deadlines of the handover lifecycle, all configured in ``orosflow/data/deadlines.toml``.

A unit reads written reports only in its office hours, so the confirmation deadline counts
from when it next opens (``Handover.opens_at``, decided with the route), not from when the mail
left: a report sent on Christmas Eve is due at 12:00 on the first working day after.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from models.tables import Handover, Report
from orosflow.core.clock import STOCKHOLM
from orosflow.core.legal import deadlines
from routing import UnknownCodeError, get_router

#: Escalation ladder of an unconfirmed handover (see orosflow.handover.escalation).
ESCALATION_STEPS: dict[int, str] = {
    1: "L-ESCALATE-REMIND",
    2: "L-ESCALATE-SOCIALJOUR",
    3: "L-ESCALATE-COUNSELOR",
}
LAST_STEP = max(ESCALATION_STEPS)


def _handover_cfg() -> dict[str, Any]:
    return deadlines()["handover"]


def _noon(cfg: dict[str, Any]) -> time:
    hh, mm = (int(p) for p in str(cfg["not_acute_next_working_day_at"]).split(":"))
    return time(hh, mm)


def handover_deadline(
    urgency: str, unit_id: str, notified_at: datetime, opens_at: datetime | None = None
) -> datetime:
    """When the unit must have confirmed.

    Counted from ``opens_at`` when the unit was closed at routing, else from the notification.
    Acute: N minutes after that. Not acute: the configured local time (12:00) on the day the
    unit opens if it opens before then, else on its next working day (Swedish holidays
    respected). An unknown unit falls back to 24 hours rather than no deadline.
    """
    cfg = _handover_cfg()
    start = max(notified_at, opens_at) if opens_at is not None else notified_at
    if urgency == "acute":
        return start + timedelta(minutes=int(cfg["acute_minutes"]))
    at = _noon(cfg)
    if opens_at is not None and start == opens_at:
        local = opens_at.astimezone(STOCKHOLM)
        if local.time() < at:
            naive = datetime.combine(local.date(), at)
            return naive.replace(tzinfo=STOCKHOLM).astimezone(UTC)
    try:
        due = get_router().next_working_day_at(unit_id, start, at)
    except (UnknownCodeError, ValueError):
        return start + timedelta(days=1)
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


def phone_record_minutes() -> int:
    return int(_handover_cfg()["acute_phone_record_minutes"])


def feedback_due(handed_over_at: datetime | None) -> datetime | None:
    """Feedback deadline, counted from receipt by social services (domain.md 10.3)."""
    if handed_over_at is None:
        return None
    return handed_over_at + timedelta(days=int(deadlines()["social_services"]["feedback_days"]))


def feedback_deadline_verified() -> bool:
    return bool(deadlines()["social_services"].get("feedback_days_verified", False))


def local_text(at: datetime | None) -> str:
    """Stockholm wall-clock time for Swedish messages."""
    return at.astimezone(STOCKHOLM).strftime("%Y-%m-%d %H:%M") if at else "–"
