"""Submission: the one function every entry point uses to turn a form into durable reports.

The report rows, their encrypted content, their wrapped keys, the routing decision (made here,
once, with the submission time), the handovers it names with their notifications in the
outbox, and the audit events commit in one transaction; only then is a receipt returned, and
it shows that stored decision. Starting the flow runs comes after the commit and may fail
(Prefect down): the reconciler picks such reports up later, and they still go where the
receipt said.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from models.form import Child, ConcernForm, Urgency
from models.tables import ChildRecord, GuardianRecord, ReferenceCounter, Report, ReportKey
from orosflow.core.audit import append_event
from orosflow.core.clock import STOCKHOLM, utcnow
from orosflow.core.crypto import KeyMismatch, Keyring, load_keyring
from orosflow.core.db import session_scope, write_coming
from orosflow.handover import routing_call
from orosflow.handover.content import SealedReport, check_readable, seal_report
from orosflow.handover.duplicates import SubmitOnce
from orosflow.handover.lifecycle import apply_transition, create_handover, reporter_digest
from orosflow.handover.lifecycle.outbox import enqueue_mail
from orosflow.handover.routing_call import CallNow, Recipient, calls_for
from orosflow.handover.validation import validate_form
from routing import Decision, get_router

log = logging.getLogger("orosflow.handover.submission")
__all__ = [
    "CallNow",
    "Receipt",
    "ReceiptItem",
    "Recipient",
    "SubmitOnce",
    "calls_for",
    "seal_form",
    "store_form",
    "stored_receipt",
    "submit",
]


@dataclass
class ReceiptItem:
    report_id: str
    reference: str
    child_index: int
    #: The first unit to phone now, if any (kept for existing clients) …
    call_now: CallNow | None = None
    #: … and every unit to phone, including further recipients (placing municipality etc.).
    calls: list[CallNow] = field(default_factory=list)
    #: Where the written report goes (the handovers), with ``opens_at``.
    recipients: list[Recipient] = field(default_factory=list)


@dataclass
class Receipt:
    sibling_group_id: str
    submitted_at: str
    urgency: str
    reports: list[ReceiptItem] = field(default_factory=list)
    message: str = ""
    #: True when this answers a retry (same idempotency key): nothing new was stored.
    replayed: bool = False

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def next_reference(session: Session, year: int) -> str:
    """Issue ``OA-<year>-<6 digits>`` from a per-year counter, locked for this transaction (its
    row on PostgreSQL, the write lock on SQLite). One statement once the year has a counter."""
    bump = (
        update(ReferenceCounter)
        .where(col(ReferenceCounter.year) == year)
        .values(last=col(ReferenceCounter.last) + 1)
        .returning(col(ReferenceCounter.last))
        .execution_options(synchronize_session=False)
    )
    last = session.execute(bump).scalar_one_or_none()
    if last is None:  # the year's first report
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        session.execute(
            insert(ReferenceCounter).values(year=year, last=0).on_conflict_do_nothing()  # type: ignore[attr-defined]
        )
        last = session.execute(bump).scalar_one()
    if last > 999_999:
        raise RuntimeError("reference numbers for the year are exhausted")
    return f"OA-{year}-{last:06d}"


def shared_payload(form: ConcernForm) -> dict[str, Any]:
    """The parts of the form common to every child's report (stored encrypted per report)."""
    return form.model_dump(mode="json", exclude={"children", "guardians"})


def _content_digest(*blobs: bytes) -> str:
    h = hashlib.sha256()
    for blob in blobs:
        h.update(hashlib.sha256(blob).digest())
    return h.hexdigest()


def seal_form(form: ConcernForm, keyring: Keyring, at: datetime) -> list[SealedReport]:
    """Each child's report encrypted for storage (before the write transaction)."""
    payload = shared_payload(form)
    # Validation refuses a protected child's address and district; dropping them here too
    # keeps them out of storage whatever the entry point.
    return [
        seal_report(
            keyring, str(uuid.uuid4()), payload, child.without_protected_details(), form, at
        )
        for child in form.children
    ]


def store_form(
    session: Session,
    form: ConcernForm,
    *,
    actor: str,
    keyring: Keyring,
    now: datetime | None = None,
    sealed: list[SealedReport] | None = None,
    group_id: str | None = None,
) -> Receipt:
    """Write one report per child into ``session`` (the caller owns the transaction), from
    ``sealed`` when the caller encrypted them already (:func:`seal_form`)."""
    now = now or utcnow()
    sealed = sealed if sealed is not None else seal_form(form, keyring, now)
    group_id = group_id or str(uuid.uuid4())
    receipt = Receipt(
        sibling_group_id=group_id,
        submitted_at=now.isoformat(),
        urgency=form.urgency.value,
    )
    for index, (child, part) in enumerate(zip(form.children, sealed, strict=True)):
        report_id = part.report_id
        reference = next_reference(session, now.astimezone(STOCKHOLM).year)
        report = Report(
            id=report_id,
            reference=reference,
            sibling_group_id=group_id,
            child_index=index,
            urgency=form.urgency.value,
            report_date=form.report_date or now.astimezone(STOCKHOLM).date(),
            submitted_at=now,
            submitted_by=actor,
            clinic_municipality=form.clinic.municipality,
            reporter_digest=reporter_digest(form.reporter.email),
            categories=",".join(form.concern.categories),
            payload_enc=part.payload_enc,
        )
        session.add(report)
        session.flush()  # the report row must exist before rows that reference it
        session.add(
            ReportKey(
                report_id=report_id,
                master_key_id=part.master_key_id,
                wrapped_key=part.wrapped_key,
                created_at=now,
                period=part.period,
            )
        )
        session.add(ChildRecord(id=str(uuid.uuid4()), report_id=report_id, data_enc=part.child_enc))
        for pos, blob in enumerate(part.guardian_blobs):
            session.add(
                GuardianRecord(
                    id=str(uuid.uuid4()), report_id=report_id, position=pos, data_enc=blob
                )
            )
        append_event(
            session,
            actor=actor,
            action="report.received",
            report_id=report_id,
            rule="R-INTAKE",
            details={
                "reference": reference,
                "sibling_group_id": group_id,
                "children_in_group": len(form.children),
                "urgency": form.urgency.value,
                "content_sha256": _content_digest(
                    part.payload_enc, part.child_enc, *part.guardian_blobs
                ),
            },
            at=now,
        )
        item = ReceiptItem(report_id, reference, index)
        _route(session, report, child, form, actor, now, item)
        receipt.reports.append(item)
    return receipt


def route_report(
    session: Session, report: Report, child: Child, form: ConcernForm, actor: str, at: datetime
) -> Decision | None:
    """Decide the route once, as of ``at`` (the submission time); store it, move the report to
    routed and create the handovers it names, with their notifications queued. None when
    routing failed: the report is kept, the failure audited and the operator alerted."""
    try:
        decision = routing_call.decide(child, form, at)
    except Exception as exc:  # noqa: BLE001 - the report is kept whatever routing does
        # Validation has checked every code, so this is a broken directory or a bug: keep the
        # report, record it and alert the operator; nothing the counselor sent is lost.
        log.error("routing failed for report %s: %s", report.id, type(exc).__name__)
        append_event(
            session,
            actor=actor,
            action="report.routing_failed",
            report_id=report.id,
            rule="L-FAIL-CLOSED",
            details={"error": type(exc).__name__},
        )
        mail_id = f"{report.id}.unrouted-operator"
        enqueue_mail(session, mail_id, "unresolved_operator", report.id, None)
        return None
    report.decision_json = decision.model_dump_json()
    apply_transition(
        session, "route", report, actor=actor, reference=report.reference, rule=decision.rule
    )
    for position, d in enumerate(routing_call.written_decisions(decision)):
        create_handover(session, report, d, position=position, actor=actor)
    return decision


def _route(
    session: Session,
    report: Report,
    child: Child,
    form: ConcernForm,
    actor: str,
    now: datetime,
    item: ReceiptItem,
) -> None:
    """Route at submission and put the decision on the receipt."""
    decision = route_report(session, report, child, form, actor, now)
    if decision is None:
        return
    item.recipients = routing_call.recipients(decision)
    item.calls = calls_for(decision)
    item.call_now = item.calls[0] if item.calls else None


def _tell_counselor(receipt: Receipt) -> None:
    """The receipt's message, from the decision stored with each report."""
    refs = ", ".join(r.reference for r in receipt.reports)
    receipt.message = f"Anmälan är mottagen och sparad: {refs}."
    later = [
        f"{i.reference} till {r.unit_name} {r.opens_text}"
        for i in receipt.reports
        for r in i.recipients
        if r.opens_at
    ]
    if later:
        receipt.message += " Skickad utanför kontorstid: " + "; ".join(later) + "."
    calls = [
        f"{i.reference}: ring {c.unit_name} på {c.phone or 'okänt nummer'}"
        for i in receipt.reports
        for c in i.calls
    ]
    if calls:
        receipt.message += " Ring nu – " + "; ".join(calls) + "."
    if receipt.urgency == Urgency.ACUTE.value:
        receipt.message += " Vid fara för liv: ring 112."


def submit(
    data: dict[str, Any] | ConcernForm,
    *,
    actor: str,
    now: datetime | None = None,
    once: SubmitOnce | None = None,
) -> Receipt:
    """Validate, store durably and return the receipt. Raises ``FormInvalid`` storing nothing,
    and ``KeyMismatch`` (storing nothing) when the server cannot decrypt what it wrote.

    With ``once`` (API and portal) a retry with the same key gets the first receipt back
    (``replayed``), and a report for a child the counselor reported within a day raises
    ``DuplicateSuspected`` unless confirmed; see ``orosflow.handover.duplicates``.
    """
    with write_coming():  # from here on, flow runs wait for this receipt's transaction
        receipt = _validate_and_store(data, actor=actor, now=now, once=once)
    _tell_counselor(receipt)
    return receipt


def _validate_and_store(
    data: dict[str, Any] | ConcernForm,
    *,
    actor: str,
    now: datetime | None,
    once: SubmitOnce | None,
) -> Receipt:
    form = validate_form(data, now=now)
    keyring = load_keyring()
    get_router()  # load the directory before the write lock is taken
    at = now or utcnow()
    # Encrypt, and open again with the key as configured now, before the write transaction
    # (which then holds the lock only for the rows): a receipt only for what can be opened.
    sealed = seal_form(form, keyring, at)
    try:
        check_readable(sealed, load_keyring())
    except KeyMismatch:
        log.error(
            "submission refused: the configured master key cannot decrypt "
            "what was just encrypted; nothing stored"
        )
        raise
    group_id = str(uuid.uuid4())
    for attempt in (1, 2):
        try:
            with session_scope() as session:  # keep the write transaction short (one writer)
                replay = (
                    once.claim(session, form, form.reporter.email, at, group_id) if once else None
                )
                if replay:
                    receipt = stored_receipt(session, replay)
                else:
                    receipt = store_form(
                        session,
                        form,
                        actor=actor,
                        keyring=keyring,
                        now=at,
                        sealed=sealed,
                        group_id=group_id,
                    )
                    if once:
                        once.record(session, [r.reference for r in receipt.reports], at)
            break
        except IntegrityError:
            if once is None or attempt == 2:
                raise
            # A concurrent twin claimed the same key first; the retry finds its receipt.
            log.info("idempotency key claimed by a concurrent request; answering with its receipt")
    return receipt


# --- a stored submission's receipt (answers a retried idempotency key) -------------------------


def stored_receipt(session: Session, sibling_group_id: str) -> Receipt:
    """The receipt of a stored submission, rebuilt from its reports' stored decisions: the same
    references, recipients and calls that the first answer gave."""
    reports = session.exec(
        select(Report)
        .where(Report.sibling_group_id == sibling_group_id)
        .order_by(col(Report.child_index))
    ).all()
    first = reports[0]
    receipt = Receipt(
        sibling_group_id=sibling_group_id,
        submitted_at=first.submitted_at.isoformat(),
        urgency=first.urgency,
        replayed=True,
    )
    for report in reports:
        item = ReceiptItem(report.id, report.reference, report.child_index)
        decision = routing_call.stored_decision(report)
        if decision is not None:
            item.recipients = routing_call.recipients(decision)
            item.calls = calls_for(decision)
            item.call_now = item.calls[0] if item.calls else None
        receipt.reports.append(item)
    return receipt
