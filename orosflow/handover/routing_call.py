"""The one call into ``routing/``: the decision is made once, at submission, and stored.

``decide`` routes one child at the submission time; ``store_form`` keeps the result on the
report (``Report.decision_json``) and creates the handovers from it in the same transaction.
Everything after that (the flow, the receipt page, the counselor's call list) reads the stored
decision, so a flow run that starts an hour late still delivers where the receipt said.
Only a decline decides anew, at the moment of the decline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from models.form import Child, ConcernForm
from models.tables import Report
from routing import Decision, RoutingRequest, get_router
from routing.hours import describe_opens_at


@dataclass
class CallNow:
    """Whom the counselor must phone (acute, out of hours, protected identity …)."""

    unit_name: str
    phone: str | None
    rule: str
    explanation: str
    unit_id: str = ""


@dataclass
class Recipient:
    """A unit that receives the written report, and when it will first read it."""

    unit_id: str
    unit_name: str
    #: ISO 8601 with offset; None when the unit was open when the report was routed.
    opens_at: str | None
    #: "läses tidigast måndag 28 december kl. 08:00"; None with ``opens_at``.
    opens_text: str | None


def routing_request_for(child: Child, form: ConcernForm, at: datetime) -> RoutingRequest:
    """The router's view of one child: codes and flags only, never name or address.

    Protected identity: no district is taken (validation refuses it; one stored before that
    is dropped here). The municipality still decides, the counselor's or else the clinic's
    (R-PROTECTED-IDENTITY). In Stockholm city (0180), where the district would choose the
    unit, the report goes to the city-wide intake (the unit that forwards to the right
    district), and every recipient requires a phone call: the counselor gives the address
    and district by phone (routing/rules.py ``_choose_office``)."""
    return RoutingRequest(
        municipality=child.municipality,
        district=None if child.protected_identity else child.district,
        staying_municipality=child.staying_municipality,
        clinic_municipality=form.clinic.municipality,
        urgency=form.urgency.value,
        protected_identity=child.protected_identity,
        placed_by=child.placed_by,
        unaccompanied=child.unaccompanied,
        assigned_municipality=child.assigned_municipality,
        arrival_municipality=child.arrival_municipality,
        at=at,
    )


def decide(child: Child, form: ConcernForm, at: datetime) -> Decision:
    return get_router().route(routing_request_for(child, form, at))


def all_decisions(decision: Decision) -> list[Decision]:
    """The decision and its further recipients, depth first, in order."""
    out = [decision]
    for extra in decision.also:
        out += all_decisions(extra)
    return out


def written_decisions(decision: Decision) -> list[Decision]:
    """The recipients of the written report (one handover each), first per unit only."""
    seen: set[str] = set()
    out = []
    for d in all_decisions(decision):
        if d.written and d.unit_id not in seen:
            seen.add(d.unit_id)
            out.append(d)
    return out


def recipients(decision: Decision) -> list[Recipient]:
    """The written recipients as the receipt shows them."""
    return [
        Recipient(
            d.unit_id,
            d.unit_name,
            d.opens_at.isoformat() if d.opens_at else None,
            describe_opens_at(d.opens_at) if d.opens_at else None,
        )
        for d in written_decisions(decision)
    ]


def calls_for(decision: Decision) -> list[CallNow]:
    """Every recipient that must be phoned now (primary and further), once per unit."""
    seen: set[str] = set()
    out = []
    for d in all_decisions(decision):
        if d.phone_required and d.unit_id not in seen:
            seen.add(d.unit_id)
            out.append(CallNow(d.unit_name, d.phone, d.rule, d.explanation, d.unit_id))
    return out


def stored_decision(report: Report) -> Decision | None:
    """The decision made at submission (None for reports stored before decisions were kept)."""
    if not report.decision_json:
        return None
    return Decision.model_validate_json(report.decision_json)
