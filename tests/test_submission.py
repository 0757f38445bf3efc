"""Submission: durable before the receipt, one report per child, encrypted at rest, nothing
stored on bad input. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import text
from sqlmodel import func, select

from models.tables import (
    AuditEvent,
    ChildRecord,
    GuardianRecord,
    Handover,
    LifecycleMail,
    Report,
    ReportKey,
)
from orosflow.core.crypto import load_keyring
from orosflow.core.db import get_engine, session_scope
from orosflow.handover.content import ReportErased, read_report
from orosflow.handover.submission import submit
from orosflow.handover.validation import FormInvalid

from factories import SECRET_ADDRESS, SECRET_CONCERN, SECRET_NAME, child, form, pnr

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def counts() -> dict[str, int]:
    with session_scope() as s:
        return {
            t.__name__: s.exec(select(func.count()).select_from(t)).one()
            for t in (Report, ReportKey, ChildRecord, GuardianRecord, AuditEvent)
        }


def test_receipt_comes_after_commit_with_reference(db: str) -> None:
    """One transaction holds the report, its content, the route decided at submission, the
    handover it names and that handover's notification, queued in the outbox."""
    receipt = submit(form(), actor="test:counselor", now=NOW)
    assert len(receipt.reports) == 1
    assert re.fullmatch(r"OA-2026-\d{6}", receipt.reports[0].reference)
    assert counts() == {
        "Report": 1,
        "ReportKey": 1,
        "ChildRecord": 1,
        "GuardianRecord": 1,
        "AuditEvent": 3,
    }
    with session_scope() as s:
        events = s.exec(select(AuditEvent).order_by(AuditEvent.seq)).all()
        [handover] = s.exec(select(Handover)).all()
        [queued] = s.exec(select(LifecycleMail)).all()
        report = s.exec(select(Report)).one()
    assert [e.action for e in events] == ["report.received", "report.status", "handover.created"]
    assert {e.actor for e in events} == {"test:counselor"}
    assert report.status == "routed" and report.decision_json
    assert (queued.kind, queued.id, queued.sent_at) == ("notification", handover.id, None)
    [recipient] = receipt.reports[0].recipients
    assert recipient.unit_id == handover.unit_id and recipient.opens_at is None


def test_siblings_become_one_report_each_linked_by_group(db: str) -> None:
    sibling = child(
        name="Syster Barnsson",
        personal_number=pnr(date(2014, 6, 7)),
        municipality="1980",
        district=None,
    )
    receipt = submit(form(children=[child(), sibling]), actor="test", now=NOW)
    refs = [r.reference for r in receipt.reports]
    assert len(set(refs)) == 2
    with session_scope() as s:
        reports = s.exec(select(Report).order_by(Report.child_index)).all()
    assert {r.sibling_group_id for r in reports} == {receipt.sibling_group_id}
    assert [r.reference for r in reports] == refs
    assert counts()["ReportKey"] == 2  # one data key per report


def test_reference_numbers_are_sequential_and_unique(db: str) -> None:
    refs = [submit(form(), actor="t", now=NOW).reports[0].reference for _ in range(5)]
    numbers = [int(r.rsplit("-", 1)[1]) for r in refs]
    assert numbers == sorted(numbers) and len(set(numbers)) == 5


@pytest.mark.parametrize(
    "bad",
    [
        {"urgency": "later"},
        {"children": [child(personal_number="20120315-1237")]},
        {"children": [child(personal_number="20081123-1234")]},
        {"clinic": {"name": "UM", "municipality": "0999"}},
    ],
    ids=["urgency", "checksum", "adult-or-invalid", "unknown-municipality"],
)
def test_invalid_input_stores_nothing(db: str, bad: dict) -> None:
    before = counts()
    with pytest.raises(FormInvalid):
        submit(form(**bad), actor="t", now=NOW)
    assert counts() == before


def test_personal_data_is_encrypted_at_rest(db: str) -> None:
    data = form(
        children=[child(name=SECRET_NAME, address=SECRET_ADDRESS)],
        concern={"categories": ["neglect"], "observations": SECRET_CONCERN},
    )
    receipt = submit(data, actor="t", now=NOW)
    dump = []
    with get_engine().connect() as conn:
        for table in ("report", "child", "guardian", "audit_event", "report_key"):
            for row in conn.execute(text(f"SELECT * FROM {table}")):
                dump.append(repr(tuple(row)))
    blob = "\n".join(dump)
    for secret in (SECRET_NAME, SECRET_ADDRESS, SECRET_CONCERN, "201203151236"):
        assert secret not in blob
        assert secret.encode().hex() not in blob
    with session_scope() as s:
        content = read_report(
            s,
            receipt.reports[0].report_id,
            keyring=load_keyring(),
            actor="test:reader",
            purpose="test",
        )
    assert content.child.name == SECRET_NAME
    assert content.form.concern.observations == SECRET_CONCERN


def test_every_read_is_audited_and_erasing_the_key_erases_the_content(db: str) -> None:
    rid = submit(form(), actor="t", now=NOW).reports[0].report_id
    with session_scope() as s:
        read_report(s, rid, keyring=load_keyring(), actor="test:officer", purpose="inbox")
    with session_scope() as s:
        reads = s.exec(select(AuditEvent).where(AuditEvent.action == "content.read")).all()
        assert [(e.actor, e.report_id) for e in reads] == [("test:officer", rid)]
        s.delete(s.get(ReportKey, rid))
    with session_scope() as s, pytest.raises(ReportErased):
        read_report(s, rid, keyring=load_keyring(), actor="t", purpose="t")


def test_acute_receipt_tells_counselor_whom_to_phone_now(db: str) -> None:
    from orosflow.core.clock import set_clock

    set_clock(lambda: NOW)  # Monday 11:00: office hours, so the intake unit by phone
    try:
        receipt = submit(
            form(urgency="acute", children=[child(municipality="1980", district=None)]), actor="t"
        )
    finally:
        set_clock(None)
    call = receipt.reports[0].call_now
    assert call is not None and call.phone and call.rule == "R-ACUTE-PHONE"
    assert call.phone in receipt.message and "112" in receipt.message
    calm = submit(form(), actor="t", now=NOW)
    assert calm.reports[0].call_now is None or calm.reports[0].call_now.rule != "R-ACUTE-PHONE"


def test_receipt_names_every_unit_to_phone_including_the_placing_municipality(
    sqlite_db: str,
) -> None:
    """An acute report on a placed child: its own socialjour and the placing one, both phoned."""
    receipt = submit(
        form(urgency="acute", children=[child(placed_by="0182")]),
        actor="t",
        now=datetime(2026, 11, 23, 20, 0, tzinfo=UTC),  # 21:00 in Stockholm: out of hours
    )
    rules = [c.rule for c in receipt.reports[0].calls]
    assert "R-PLACED-BY" in rules and len(rules) == 2
    for call in receipt.reports[0].calls:
        assert call.unit_name in receipt.message
