"""Submission: the one function every entry point uses to turn a form into durable reports.

The report rows, their encrypted content, their wrapped keys and the first audit events commit
in one transaction, and only then is a receipt returned. Starting the flow runs comes after the
commit and may fail (Prefect down): the reconciler picks such reports up later.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from models.form import ConcernForm, Urgency
from models.tables import ChildRecord, GuardianRecord, ReferenceCounter, Report, ReportKey
from orosflow.core.audit import append_event
from orosflow.core.clock import utcnow
from orosflow.core.crypto import Keyring, load_keyring, new_data_key, seal_json
from orosflow.core.db import session_scope
from orosflow.handover.delivery import routing_request_for
from orosflow.handover.lifecycle import reporter_digest
from orosflow.handover.validation import STOCKHOLM, validate_form
from routing import Decision, get_router


@dataclass
class CallNow:
    """Whom the counselor must phone now (acute, out of hours, protected identity …)."""

    unit_name: str
    phone: str | None
    rule: str
    explanation: str


@dataclass
class ReceiptItem:
    report_id: str
    reference: str
    child_index: int
    #: The first unit to phone now, if any (kept for existing clients) …
    call_now: CallNow | None = None
    #: … and every unit to phone, including further recipients (placing municipality etc.).
    calls: list[CallNow] = field(default_factory=list)


@dataclass
class Receipt:
    sibling_group_id: str
    submitted_at: str
    urgency: str
    reports: list[ReceiptItem] = field(default_factory=list)
    message: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def next_reference(session: Session, year: int) -> str:
    """Issue ``OA-<year>-<6 digits>`` from a per-year counter locked for this transaction."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(ReferenceCounter).values(year=year, last=0).on_conflict_do_nothing()  # type: ignore[attr-defined]
    )
    counter = session.exec(
        select(ReferenceCounter).where(ReferenceCounter.year == year).with_for_update()
    ).one()
    counter.last += 1
    if counter.last > 999_999:
        raise RuntimeError("reference numbers for the year are exhausted")
    session.add(counter)
    return f"OA-{year}-{counter.last:06d}"


def shared_payload(form: ConcernForm) -> dict[str, Any]:
    """The parts of the form common to every child's report (stored encrypted per report)."""
    return form.model_dump(mode="json", exclude={"children", "guardians"})


def _content_digest(*blobs: bytes) -> str:
    h = hashlib.sha256()
    for blob in blobs:
        h.update(hashlib.sha256(blob).digest())
    return h.hexdigest()


def store_form(
    session: Session,
    form: ConcernForm,
    *,
    actor: str,
    keyring: Keyring,
    now: datetime | None = None,
) -> Receipt:
    """Write one report per child into ``session`` (the caller owns the transaction)."""
    now = now or utcnow()
    group_id = str(uuid.uuid4())
    payload = shared_payload(form)
    receipt = Receipt(
        sibling_group_id=group_id,
        submitted_at=now.isoformat(),
        urgency=form.urgency.value,
    )
    for index, child in enumerate(form.children):
        report_id = str(uuid.uuid4())
        reference = next_reference(session, now.astimezone(STOCKHOLM).year)
        data_key = new_data_key()
        key_id, wrapped = keyring.wrap(data_key, report_id)
        payload_enc = seal_json(data_key, payload, f"report:{report_id}:payload")
        child_enc = seal_json(data_key, child.model_dump(mode="json"), f"child:{report_id}")
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
            payload_enc=payload_enc,
        )
        session.add(report)
        session.flush()  # the report row must exist before rows that reference it
        session.add(
            ReportKey(
                report_id=report_id, master_key_id=key_id, wrapped_key=wrapped, created_at=now
            )
        )
        session.add(ChildRecord(id=str(uuid.uuid4()), report_id=report_id, data_enc=child_enc))
        guardian_blobs = []
        for pos, guardian in enumerate(form.guardians):
            blob = seal_json(
                data_key, guardian.model_dump(mode="json"), f"guardian:{report_id}:{pos}"
            )
            guardian_blobs.append(blob)
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
                "content_sha256": _content_digest(payload_enc, child_enc, *guardian_blobs),
            },
            at=now,
        )
        receipt.reports.append(ReceiptItem(report_id, reference, index))
    return receipt


def _tell_counselor(receipt: Receipt, form: ConcernForm) -> None:
    """Whom to phone now, from a routing preview; done after the commit, outside the lock."""
    router = get_router()
    for item, child in zip(receipt.reports, form.children, strict=True):
        item.calls = calls_for(router.route(routing_request_for(child, form)))
        item.call_now = item.calls[0] if item.calls else None
    refs = ", ".join(r.reference for r in receipt.reports)
    receipt.message = f"Anmälan är mottagen och sparad: {refs}."
    calls = [
        f"{i.reference}: ring {c.unit_name} på {c.phone or 'okänt nummer'}"
        for i in receipt.reports
        for c in i.calls
    ]
    if calls:
        receipt.message += " Ring nu – " + "; ".join(calls) + "."
    if form.urgency is Urgency.ACUTE:
        receipt.message += " Vid fara för liv: ring 112."


def calls_for(decision: Decision) -> list[CallNow]:
    """Every recipient of a routing decision that must be phoned now (primary and further)."""
    todo, out = [decision], []
    while todo:
        d = todo.pop(0)
        if d.phone_required:
            out.append(CallNow(d.unit_name, d.phone, d.rule, d.explanation))
        todo.extend(d.also)
    return out


def submit(
    data: dict[str, Any] | ConcernForm,
    *,
    actor: str,
    now: datetime | None = None,
) -> Receipt:
    """Validate, store durably and return the receipt. Raises ``FormInvalid`` storing nothing."""
    form = validate_form(data, now=now)
    keyring = load_keyring()
    get_router()  # load the directory before the write lock is taken
    with session_scope() as session:  # keep the write transaction short: SQLite has one writer
        receipt = store_form(session, form, actor=actor, keyring=keyring, now=now)
    _tell_counselor(receipt, form)
    return receipt
