"""The intake officer's inbox: which reports an officer may see, the inbox list, opening a
report (an audited read) and the actions confirm, decline and feedback.

Both the portal pages and the JSON API call this module, so the access rule lives in one place:
a report is visible to an intake officer when it has a handover to one of the officer's routing
units (``Principal.units``). Anything else — another unit's report or a reference that does not
exist — raises :class:`NotVisible`, which the callers turn into the same 404 and an
``access.denied`` audit event. The list is metadata only (it is often on screen in open
offices); content is decrypted only when a report is opened, and every opening is audited by
:func:`orosflow.handover.content.read_report`.

A unit that declined a report is not its receiver: once every one of the officer's handovers
of a report is declined, opening it shows metadata only (the reference, the unit's own decline,
times), nothing is decrypted, and the attempt is audited as ``access.denied`` like any other
refused content access.
"""

from __future__ import annotations

import json
import logging
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from models.accounts import Role
from models.form import ConcernForm, categories
from models.tables import Handover, Report
from orosflow.core.audit import append_event
from orosflow.core.clock import utcnow
from orosflow.core.crypto import load_keyring
from orosflow.core.db import session_scope
from orosflow.handover import lifecycle
from orosflow.handover.content import ReportErased, read_report
from orosflow.handover.lifecycle import (
    FEEDBACK_OUTCOMES,
    REPORT_LABELS,
    ActionResult,
    H,
    IllegalTransition,
    LifecycleError,
    R,
)
from orosflow.identity.accounts import Principal
from orosflow.views import names
from orosflow.views.handover_summary import OPEN, handover_summary, is_overdue
from routing import UnknownCodeError, get_router
from routing.hours import TZ

URGENCY_LABELS: dict[str, str] = {"acute": "Akut", "not_acute": "Inte akut"}
CONSULTATION_LABELS: dict[str, str] = {
    "colleague": "Kollega",
    "manager": "Chef",
    "anonymous_social_services": "Anonym konsultation med socialtjänsten",
}
#: Which of an officer's handovers of one report is "theirs" for the list and for actions:
#: open before not yet notified before confirmed before declined/failed, newest attempt first.
_PICK_ORDER = {H.NOTIFIED: 0, H.ESCALATED: 0, H.CREATED: 1, H.CONFIRMED: 2, H.DECLINED: 3}
MAX_REFERENCE = 40
#: Shown instead of the content once the officer's unit has declined the report.
DECLINED_NOTICE = (
    "Er enhet har avböjt anmälan och den har skickats vidare till en annan mottagare. "
    "Därför kan ni inte längre läsa innehållet; bara ärendeuppgifterna och ert avböjande "
    "visas. Försöket att öppna innehållet har loggats."
)

log = logging.getLogger(__name__)


class InboxFilter(StrEnum):
    OPEN = "open"
    FEEDBACK = "feedback"
    DECLINED = "declined"
    ALL = "all"


FILTER_LABELS: dict[InboxFilter, str] = {
    InboxFilter.OPEN: "Att bekräfta",
    InboxFilter.FEEDBACK: "Att återkoppla",
    InboxFilter.DECLINED: "Avböjda",
    InboxFilter.ALL: "Alla",
}
DEFAULT_FILTER = InboxFilter.OPEN


class NotVisible(LookupError):
    """The report does not exist or is not routed to the officer's units (callers answer 404)."""

    def __init__(self, reference: str) -> None:
        super().__init__("not visible")
        self.reference = reference[:MAX_REFERENCE]


# --- response shapes (shared by the pages and the API) -----------------------------------------


class HandoverInfo(BaseModel):
    """One handover of the report to one of the officer's units (metadata only)."""

    handover_id: str
    unit_id: str
    unit_name: str
    unit_kind: str
    municipality: str
    municipality_name: str
    attempt: int
    status: str = Field(description="created, notified, confirmed, escalated, declined, failed")
    status_text: str
    rule: str = Field(description="Id of the routing or lifecycle rule that chose this unit.")
    explanation: str = Field(description="Why this unit received the report (Swedish).")
    phone_required: bool
    phone: str | None
    created_at: datetime
    notified_at: datetime | None
    opens_at: datetime | None = Field(
        None,
        description="When the unit next reads written reports; the deadline counts from then "
        "(null: the unit was open when the report was routed).",
    )
    opens_at_text: str | None = Field(
        None, description='The same in Swedish words: "läses tidigast måndag 28 december …".'
    )
    deadline_at: datetime | None = Field(description="Confirm receipt by this time.")
    overdue: bool = Field(description="Open, past its deadline and nobody else has confirmed.")
    escalation_step: int
    confirmed_at: datetime | None
    confirmed_by: str | None
    declined_at: datetime | None
    decline_reason: str | None
    decline_reason_text: str | None


class InboxItem(BaseModel):
    """One row of the inbox: no child data, so the list can be on screen in an open office."""

    reference: str
    urgency: str = Field(description="acute or not_acute")
    urgency_text: str
    report_state: str
    report_state_text: str
    submitted_at: datetime
    received_at: datetime = Field(description="When the unit was notified (else created).")
    priority: bool = Field(description="Still to confirm and acute or overdue: shown on top.")
    handover: HandoverInfo


class InboxList(BaseModel):
    status: InboxFilter
    counts: dict[str, int] = Field(description="Number of reports per filter.")
    items: list[InboxItem]


class FeedbackInfo(BaseModel):
    """Feedback the officer's unit recorded: when, by whom, and (decrypted for the unit that
    gave it, with the audited opening) the outcome. A later entry of the same unit is a
    correction of the one before it."""

    unit_id: str
    recorded_at: datetime
    recorded_by: str
    recorded_by_name: str = Field(description="The recorder's display name.")
    outcome: str | None = Field(
        None, description="opened, not_opened or already_ongoing; null when not readable."
    )
    outcome_text: str | None = None
    decided_on: date | None = None
    corrected: bool = Field(False, description="This entry corrected an earlier one.")
    superseded: bool = Field(False, description="A later correction replaced this entry.")


class SiblingInfo(BaseModel):
    """A linked report of the same sibling group: its reference and municipality only."""

    reference: str
    municipality: str | None
    municipality_name: str
    visible: bool = Field(description="Routed to one of the caller's units (it can be opened).")


class ReportView(BaseModel):
    """An opened report: its metadata, the officer's handovers and (unless erased) its content."""

    reference: str
    urgency: str
    urgency_text: str
    report_state: str
    report_state_text: str
    report_date: date
    submitted_at: datetime
    handover: HandoverInfo = Field(description="The handover the actions apply to.")
    handovers: list[HandoverInfo] = Field(description="All handovers to the officer's units.")
    feedback: list[FeedbackInfo]
    siblings: list[SiblingInfo] = Field(
        default_factory=list,
        description="The other children's reports from the same form (reference and "
        "municipality only; none when the content is withheld).",
    )
    erased: bool = Field(description="Retention has erased the content; only metadata is left.")
    withheld: bool = Field(
        False,
        description="The caller's unit declined the report: no content access any more "
        "(the attempt is audited as access.denied).",
    )
    content_notice: str | None = Field(
        None, description="Why the content is not shown (Swedish), when withheld."
    )
    content: ConcernForm | None = Field(
        description="The report's content; null when erased or withheld."
    )
    category_labels: dict[str, str]
    can_confirm: bool
    can_decline: bool
    can_feedback: bool


class ActionOut(BaseModel):
    reference: str
    changed: bool = Field(description="False when the action was already done (nothing changed).")
    message: str


# --- access -----------------------------------------------------------------------------------


def _pick(hs: list[Handover], prefer: frozenset[str] | None = None) -> Handover:
    def key(h: Handover) -> tuple[int, int, int]:
        preferred = 0 if prefer and h.status in prefer else 1
        return (preferred, _PICK_ORDER.get(h.status, 4), -h.attempt)

    return min(hs, key=key)


def _own(s: Session, principal: Principal, reference: str) -> tuple[Report, list[Handover]]:
    """The report and the officer's handovers of it, or :class:`NotVisible`."""
    if principal.role != Role.INTAKE or not principal.units or len(reference) > MAX_REFERENCE:
        raise NotVisible(reference)
    try:
        report = lifecycle.report_by_reference(s, reference)
    except LifecycleError:
        raise NotVisible(reference) from None
    hs = [h for h in lifecycle.report_handovers(s, report.id) if h.unit_id in principal.units]
    if not hs:
        raise NotVisible(reference)
    return report, hs


def declined_all(hs: list[Handover]) -> bool:
    """Every one of the officer's handovers is declined: the unit is no longer a receiver and
    may not read the content (a later handover back to the unit opens it again)."""
    return all(h.status == H.DECLINED for h in hs)


def _deny_content(s: Session, principal: Principal, report: Report, *, via: str) -> None:
    """Audit (and log, without personal data) a refused content read by a declining unit."""
    append_event(
        s,
        actor=principal.actor,
        action="access.denied",
        report_id=report.id,
        details={
            "reference": report.reference,
            "via": via,
            "role": principal.role,
            "reason": "declined",
        },
    )
    log.warning(
        "access denied: %s (%s) to %s via %s (unit declined)",
        principal.actor,
        principal.role,
        report.reference,
        via,
    )


def _handover_info(s: Session, h: Handover, now: datetime) -> HandoverInfo:
    """The officer's fields of the handover summary, times in Stockholm."""
    return HandoverInfo.model_validate(handover_summary(h, overdue=is_overdue(s, h, now)))


def _item(s: Session, report: Report, h: Handover, now: datetime) -> InboxItem:
    info = _handover_info(s, h, now)
    return InboxItem(
        reference=report.reference,
        urgency=report.urgency,
        urgency_text=URGENCY_LABELS.get(report.urgency, report.urgency),
        report_state=report.status,
        report_state_text=REPORT_LABELS.get(report.status, report.status),
        submitted_at=report.submitted_at.astimezone(TZ),
        received_at=info.notified_at or info.created_at,
        priority=h.status in OPEN and (report.urgency == "acute" or info.overdue),
        handover=info,
    )


def _matches(item: InboxItem, f: InboxFilter) -> bool:
    status = item.handover.status
    if f is InboxFilter.OPEN:
        return status in OPEN
    if f is InboxFilter.FEEDBACK:
        return status == H.CONFIRMED and item.report_state == R.HANDED_OVER
    if f is InboxFilter.DECLINED:
        return status == H.DECLINED
    return True


def parse_filter(value: str | None) -> InboxFilter:
    """The filter from a query string; an unknown value falls back to the default."""
    try:
        return InboxFilter(value or DEFAULT_FILTER)
    except ValueError:
        return DEFAULT_FILTER


# --- the list ---------------------------------------------------------------------------------


def inbox(principal: Principal, status: InboxFilter = DEFAULT_FILTER) -> InboxList:
    """The reports routed to the officer's units, one row per report: still-to-confirm acute or
    overdue ones on top, then by the time the unit was notified, newest first."""
    if principal.role != Role.INTAKE or not principal.units:
        return InboxList(status=status, counts={f.value: 0 for f in InboxFilter}, items=[])
    now = utcnow()
    with session_scope() as s:
        rows = s.exec(
            select(Handover, Report)
            .join(Report, col(Report.id) == col(Handover.report_id))
            .where(col(Handover.unit_id).in_(sorted(principal.units)))
        ).all()
        per_report: dict[str, tuple[Report, list[Handover]]] = {}
        for h, report in rows:
            per_report.setdefault(report.id, (report, []))[1].append(h)
        items = [_item(s, report, _pick(hs), now) for report, hs in per_report.values()]
    counts = {f.value: sum(1 for i in items if _matches(i, f)) for f in InboxFilter}
    shown = [i for i in items if _matches(i, status)]
    shown.sort(key=lambda i: (not i.priority, -i.received_at.timestamp(), i.reference))
    return InboxList(status=status, counts=counts, items=shown)


# --- opening ----------------------------------------------------------------------------------


def open_report(principal: Principal, reference: str, *, purpose: str) -> ReportView:
    """Metadata and content of one of the officer's reports; the content read is audited
    (``content.read`` with the officer as actor and ``purpose``) in the same transaction.
    A unit that declined the report gets metadata only and an ``access.denied`` event."""
    now = utcnow()
    with session_scope() as s:
        report, hs = _own(s, principal, reference)
        withheld = declined_all(hs)
        content: ConcernForm | None = None
        erased = False
        if withheld:
            _deny_content(s, principal, report, via=purpose)
        else:
            try:
                # Never shown for a protected child (page, print view, API), also for a
                # report stored before they were refused at submission.
                content = read_report(
                    s, report.id, keyring=load_keyring(), actor=principal.actor, purpose=purpose
                ).form.without_protected_details()
            except ReportErased:
                erased = True
        feedback = _feedback_infos(s, principal, report, readable=not withheld and not erased)
        siblings = [] if withheld else _siblings(s, principal, report)
        current = _pick(hs)
        infos = [_handover_info(s, h, now) for h in hs]
        main = next(i for i in infos if i.handover_id == current.id)
        known = categories()
        labels = {
            c: known[c].label if c in known else c
            for c in (content.concern.categories if content else [])
        }
        return ReportView(
            reference=report.reference,
            urgency=report.urgency,
            urgency_text=URGENCY_LABELS.get(report.urgency, report.urgency),
            report_state=report.status,
            report_state_text=REPORT_LABELS.get(report.status, report.status),
            report_date=report.report_date,
            submitted_at=report.submitted_at.astimezone(TZ),
            handover=main,
            handovers=infos,
            feedback=feedback,
            siblings=siblings,
            erased=erased,
            withheld=withheld,
            content_notice=DECLINED_NOTICE if withheld else None,
            content=content,
            category_labels=labels,
            can_confirm=any(h.status in OPEN for h in hs),
            can_decline=any(h.status in OPEN for h in hs) and not erased,
            can_feedback=(
                any(h.status == H.CONFIRMED for h in hs)
                and report.status in (R.HANDED_OVER, R.FEEDBACK_RECEIVED)
                and not erased
            ),
        )


def _feedback_infos(
    s: Session, principal: Principal, report: Report, *, readable: bool
) -> list[FeedbackInfo]:
    """The feedback of the officer's units, oldest first; the outcome is decrypted only when
    the content may be read (the opening that calls this is the audited read)."""
    rows = [f for f in lifecycle.feedback_rows(s, report) if f.unit_id in principal.units]
    out: list[FeedbackInfo] = []
    seen: set[str] = set()
    for i, f in enumerate(rows):
        data: dict[str, Any] = {}
        if readable:
            try:
                data = lifecycle.open_feedback(s, report, f)
            except ReportErased:
                data = {}
        outcome = data.get("outcome")
        out.append(
            FeedbackInfo(
                unit_id=f.unit_id,
                recorded_at=f.recorded_at.astimezone(TZ),
                recorded_by=f.recorded_by,
                recorded_by_name=names.actor_name(f.recorded_by, s),
                outcome=outcome,
                outcome_text=FEEDBACK_OUTCOMES.get(outcome or ""),
                decided_on=date.fromisoformat(data["decided_on"]) if data else None,
                corrected=f.handover_id in seen,
                superseded=any(g.handover_id == f.handover_id for g in rows[i + 1 :]),
            )
        )
        seen.add(f.handover_id)
    return out


def _sibling_municipality(s: Session, report: Report) -> str | None:
    """The municipality a sibling's report went to: its active handover's, else the stored
    routing decision's (metadata; nothing is decrypted)."""
    hs = lifecycle.report_handovers(s, report.id)
    active = [h for h in hs if h.status not in (H.DECLINED, H.FAILED)]
    if active or hs:
        h = min(active or hs, key=lambda h: (h.position, -h.attempt))
        return h.municipality
    if report.decision_json:
        code = json.loads(report.decision_json).get("municipality")
        return code if isinstance(code, str) else None
    return None


def _siblings(s: Session, principal: Principal, report: Report) -> list[SiblingInfo]:
    """The other reports of the report's sibling group (one form, one report per child): the
    reference and municipality only, never their content. Showing them to an officer of
    another unit is metadata only; ``visible`` says whether the officer may open one."""
    others = s.exec(
        select(Report)
        .where(Report.sibling_group_id == report.sibling_group_id, Report.id != report.id)
        .order_by(col(Report.child_index))
    ).all()
    out = []
    for other in others:
        code = _sibling_municipality(s, other)
        own = s.exec(
            select(Handover.id).where(
                Handover.report_id == other.id,
                col(Handover.unit_id).in_(sorted(principal.units)),
            )
        ).first()
        out.append(
            SiblingInfo(
                reference=other.reference,
                municipality=code,
                municipality_name=municipality_name(code),
                visible=own is not None,
            )
        )
    return out


# --- actions ----------------------------------------------------------------------------------


def _action_unit(principal: Principal, reference: str, prefer: frozenset[str]) -> str:
    """The unit whose handover an action applies to (the officer may have several units)."""
    with session_scope() as s:
        _, hs = _own(s, principal, reference)
        return _pick(hs, prefer).unit_id


def _erased(reference: str) -> IllegalTransition:
    return IllegalTransition(
        "report_erased",
        f"Innehållet i anmälan {reference} är raderat enligt gallringsreglerna; åtgärden "
        "kan inte utföras.",
    )


def correct_feedback(
    principal: Principal, reference: str, outcome: str, decided_on: date | None = None
) -> ActionResult:
    """Correct the unit's recorded feedback (an audited ``feedback.corrected``)."""
    unit_id = _action_unit(principal, reference, frozenset({H.CONFIRMED}))
    try:
        return lifecycle.correct_feedback(
            reference, unit_id, outcome, decided_on or today(), by=principal.actor
        )
    except ReportErased:
        raise _erased(reference) from None


def confirm(principal: Principal, reference: str) -> ActionResult:
    """Confirm receipt for the officer's unit. A repeat returns ``changed=False``."""
    unit_id = _action_unit(principal, reference, OPEN)
    return lifecycle.confirm(reference, unit_id, by=principal.actor)


def decline(
    principal: Principal, reference: str, reason: str, right_unit_id: str | None = None
) -> ActionResult:
    """Decline for the officer's unit with a reason code; the report is re-routed at once."""
    unit_id = _action_unit(principal, reference, OPEN)
    try:
        return lifecycle.decline(
            reference, unit_id, by=principal.actor, reason=reason, right_unit_id=right_unit_id
        )
    except ReportErased:
        raise _erased(reference) from None


def record_feedback(
    principal: Principal, reference: str, outcome: str, decided_on: date | None = None
) -> ActionResult:
    """Record the unit's feedback (investigation opened, not opened, already ongoing)."""
    unit_id = _action_unit(principal, reference, frozenset({H.CONFIRMED}))
    try:
        return lifecycle.record_feedback(
            reference, unit_id, outcome, decided_on or today(), by=principal.actor
        )
    except ReportErased:
        raise _erased(reference) from None


def unit_names(principal: Principal) -> dict[str, str]:
    """The officer's units by id, with names from the directory (the id if unknown)."""
    router = get_router()
    out: dict[str, str] = {}
    for uid in sorted(principal.units):
        try:
            out[uid] = router.unit(uid).name
        except UnknownCodeError:
            out[uid] = uid
    return out


#: Swedish alphabetical order: å, ä, ö after z.
_SV_ORDER = str.maketrans({"å": "{", "ä": "|", "ö": "}", "é": "e", "ü": "u"})


def _sv_key(text: str) -> str:
    return text.casefold().translate(_SV_ORDER)


UnitGroup = tuple[str, list[tuple[str, str]]]


def decline_choices(principal: Principal, exclude: str | None = None) -> list[UnitGroup]:
    """The units an officer may name as the right receiver, by name, in groups for a
    ``<select>``: the units of the officer's own municipality first (Stockholm's districts,
    the municipality's intake and its socialjour), then Stockholm's district administrations,
    then every municipality's intake unit. Values are unit ids (what the API accepts); names
    come from the routing directory. ``exclude`` is the declining unit itself."""
    router = get_router()
    directory = router.directory
    units = directory.units
    own_codes: list[str] = []
    for uid in sorted(principal.units):
        unit = units.get(uid)
        for code in unit.municipalities if unit else ():
            if code not in own_codes:
                own_codes.append(code)
    listed: set[str] = {exclude} if exclude else set()
    groups: list[UnitGroup] = []

    def take(uids: list[str]) -> list[tuple[str, str]]:
        out = [(uid, units[uid].name) for uid in uids if uid in units and uid not in listed]
        listed.update(uid for uid, _ in out)
        return out

    districts = sorted(
        (u for u in units.values() if u.kind == "district"), key=lambda u: _sv_key(u.name)
    )
    for code in sorted(own_codes, key=lambda c: _sv_key(router.municipality_name(c))):
        own = [u.id for u in districts if u.municipality == code]
        own += [directory.intake_of[code], directory.socialjour_of[code]]
        options = take(own)
        if options:
            groups.append((f"Er kommun: {router.municipality_name(code)}", options))
    options = take([u.id for u in districts])
    if options:
        groups.append(("Stockholms stad: stadsdelsförvaltningar", options))
    ordered = sorted(router.municipalities(), key=lambda m: _sv_key(m.name))
    options = take([directory.intake_of[m.code] for m in ordered])
    groups.append(("Alla kommuner: mottagningen för barn och unga", options))
    return groups


def municipality_name(code: str | None) -> str:
    """``"Nacka (0182)"`` for display; the bare code when the directory does not know it."""
    if not code:
        return "–"
    try:
        return f"{get_router().municipality_name(code)} ({code})"
    except UnknownCodeError:
        return code


def today() -> date:
    """Today in Stockholm (the default decision date)."""
    return utcnow().astimezone(TZ).date()


def action_out(result: ActionResult) -> dict[str, Any]:
    return {"reference": result.reference, "changed": result.changed, "message": result.message}
