"""One handover, summarised once for every role's read model.

A handover row turns into the same fields everywhere (labels, local times, the time the unit
next reads written reports, whether it is overdue), so a new column is added here once. Each
role's view then takes only what it may show: the counselor's status and the intake officer's
inbox take the unit and the times; the auditor's chain and export also take the rule id, the
explanation, the directory version and who declined. Metadata only: nothing here decrypts.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from sqlmodel import Session

from models.tables import Handover
from orosflow.handover import lifecycle
from orosflow.handover.lifecycle import DECLINE_REASONS, HANDOVER_LABELS, H
from routing.hours import TZ, describe_opens_at

#: Handover states in which the unit still has to confirm (or decline).
OPEN = frozenset({H.NOTIFIED, H.ESCALATED})


def minutes_between(start: datetime | None, end: datetime | None) -> float | None:
    """Minutes from ``start`` to ``end`` (two decimals); None when either is missing."""
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() / 60, 2)


def is_overdue(s: Session, h: Handover, now: datetime) -> bool:
    """Open, past its deadline, and nobody else (an escalation, a sibling unit) has settled it."""
    return bool(
        h.status in OPEN
        and h.deadline_at
        and h.deadline_at <= now
        and not lifecycle.obligation_settled(s, h)
    )


def opens_at_text(opens_at: datetime | None) -> str | None:
    """ "läses tidigast måndag 28 december kl. 08:00", or None when the unit read it at once.

    ``describe_opens_at(None)`` says "during today's office hours", which is true at routing
    time only; a status page read days later must not say it, so None stays None here.
    """
    return describe_opens_at(opens_at) if opens_at is not None else None


def handover_summary(
    h: Handover, *, overdue: bool | None = None, zone: tzinfo = TZ
) -> dict[str, Any]:
    """Every field a role may see of one handover, times as aware datetimes in ``zone``.

    ``overdue`` is computed by the caller (:func:`is_overdue` needs a session and a "now");
    None means "not asked". Role models pick fields by name and ignore the rest.
    """

    def at(value: datetime | None) -> datetime | None:
        return value.astimezone(zone) if value is not None else None

    return {
        "handover_id": h.id,
        "position": h.position,
        "attempt": h.attempt,
        "unit_id": h.unit_id,
        "unit_name": h.unit_name,
        "unit_kind": h.unit_kind,
        "municipality": h.municipality,
        "municipality_name": h.municipality_name,
        "rule": h.rule,
        "explanation": h.explanation,
        "status": h.status,
        "status_text": HANDOVER_LABELS.get(h.status, h.status),
        "phone_required": h.phone_required,
        "phone": h.phone,
        "directory_version": h.directory_version,
        "created_at": at(h.created_at),
        "notified_at": at(h.notified_at),
        "opens_at": at(h.opens_at),
        "opens_at_text": opens_at_text(h.opens_at),
        "deadline_at": at(h.deadline_at),
        "overdue": overdue,
        "escalation_step": h.escalation_step,
        "last_escalated_at": at(h.last_escalated_at),
        "escalated_from": h.escalated_from,
        "rerouted_from": h.rerouted_from,
        "confirmed_at": at(h.confirmed_at),
        "confirmed_by": h.confirmed_by,
        "minutes_to_confirmation": minutes_between(h.notified_at, h.confirmed_at),
        "declined_at": at(h.declined_at),
        "declined_by": h.declined_by,
        "decline_reason": h.decline_reason,
        "decline_reason_text": DECLINE_REASONS.get(h.decline_reason or ""),
    }
