"""Phone contact, feedback to the counselor, status and "my reports", and the audit chain
over a full lifecycle. Runs on SQLite and PostgreSQL with a real SMTP server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from helpers_lifecycle import (
    COUNSELOR,
    SECRETS,
    Clock,
    assert_no_child_data,
    body,
    events,
    frozen_clock,
    hand_over,
    handovers_of,
    local,
    mails_to,
    report,
    submit_report,
)
from sqlmodel import select

from models.tables import Feedback, ReportStatus
from orosflow.core.audit import verify_chain
from orosflow.core.db import session_scope
from orosflow.core.smtp_capture import MailCapture
from orosflow.handover.escalation import escalate_overdue
from orosflow.handover.lifecycle import (
    close_report,
    confirm,
    read_feedback,
    record_feedback,
    record_phone_contact,
)
from orosflow.handover.lifecycle.outbox import deliver
from orosflow.handover.submission import submit
from orosflow.views.counselor import reports_by_reporter, status

from factories import form

MONDAY = local(2026, 11, 23, 10, 0)


@pytest.fixture
def clock() -> Iterator[Clock]:
    with frozen_clock(MONDAY) as c:
        yield c


async def test_feedback_reaches_counselor_mailbox_without_content(
    db: str, smtp: MailCapture, clock: Clock
) -> None:
    ref = submit_report(clock)
    await hand_over(ref)
    confirm(ref, "sdf-sodermalm", by="handlaggare:Eva")
    clock.advance(days=5)
    result = record_feedback(
        ref, "sdf-sodermalm", "opened", date(2026, 11, 27), by="handlaggare:Eva"
    )
    assert result.changed and report(ref).status == ReportStatus.FEEDBACK_RECEIVED
    assert (await deliver()).sent == 1

    [notice] = mails_to(smtp, COUNSELOR)
    assert str(notice["Subject"]) == f"Återkoppling finns för orosanmälan {ref}"
    text = body(notice)
    assert "Södermalm" in text and f"/reports/{ref}" in text
    for content in ("opened", "utredning inleds", "2026-11-27"):
        assert content not in text
    with session_scope() as s:
        [row] = s.exec(select(Feedback)).all()
    assert b"opened" not in row.data_enc  # sensitive: encrypted at rest

    # Same feedback again: nothing new, no second mail.
    again = record_feedback(ref, "sdf-sodermalm", "opened", date(2026, 11, 27), by="x")
    assert not again.changed
    assert (await deliver()).sent == 0
    [event] = events(ref, "feedback.recorded")
    assert (event.rule, event.actor) == ("L-FEEDBACK", "handlaggare:Eva")

    [item] = read_feedback(ref, actor="kurator:Kim")
    assert (item["outcome"], item["decided_on"]) == ("opened", "2026-11-27")
    read = events(ref, "content.read")[-1]
    assert read.actor == "kurator:Kim" and json.loads(read.details)["purpose"] == "feedback"
    assert_no_child_data(smtp.messages())


async def test_overdue_feedback_is_visible_in_status(
    db: str, smtp: MailCapture, clock: Clock
) -> None:
    ref = submit_report(clock)
    await hand_over(ref)
    confirm(ref, "sdf-sodermalm", by="handlaggare:Eva")
    confirmed_at = clock.now
    clock.set(confirmed_at + timedelta(days=14) - timedelta(minutes=1))
    st = status(ref)
    assert not st["feedback"]["overdue"] and not st["overdue"]
    assert st["feedback"]["deadline_verified"] is False
    clock.set(confirmed_at + timedelta(days=14, minutes=1))
    st = status(ref)
    assert st["feedback"]["overdue"] and st["overdue"]
    assert any("Återkopplingen är försenad" in w for w in st["warnings"])
    # The counselor's warning carries no "inte verifierad" disclaimer (issue 12); the flag
    # stays in the data.
    assert not any("verifierad" in w for w in st["warnings"])
    assert st["feedback"]["deadline_verified"] is False


async def test_status_and_my_reports_carry_no_child_data(
    db: str, smtp: MailCapture, clock: Clock
) -> None:
    mine = submit_report(clock, urgency="acute")
    second = submit_report(clock)
    other = form()
    other["reporter"] = {**other["reporter"], "email": "annan.kurator@example.se"}
    submit(other, actor="test", now=clock.now)
    await hand_over(mine)
    clock.advance(minutes=61)

    st = status(mine)
    [h] = st["handovers"]
    assert st["state"] == "routed" and h["status"] == "notified" and h["overdue"]
    assert st["phone"]["required"] and st["phone"]["overdue"]
    assert len(st["warnings"]) == 2
    mine_list = reports_by_reporter(COUNSELOR.upper())
    assert {r["reference"] for r in mine_list} == {mine, second}
    assert len(reports_by_reporter("annan.kurator@example.se")) == 1
    assert reports_by_reporter("okand@example.se") == []
    dumped = json.dumps(mine_list, ensure_ascii=False)
    for secret in SECRETS:
        assert secret not in dumped

    record_phone_contact(mine, "Sam Socionom", clock.now - timedelta(minutes=30), by="kurator:Kim")
    assert not status(mine)["phone"]["overdue"]


async def test_full_lifecycle_keeps_the_audit_chain_whole(
    db: str, smtp: MailCapture, clock: Clock
) -> None:
    ref = submit_report(clock, urgency="acute")
    record_phone_contact(ref, "Sam Socionom", clock.now + timedelta(minutes=3), by="kurator:Kim")
    clock.advance(minutes=5)
    await hand_over(ref)
    clock.advance(minutes=61)
    await escalate_overdue()
    confirm(ref, "sdf-sodermalm", by="handlaggare:Eva")
    clock.advance(days=2)
    record_feedback(
        ref, "sdf-sodermalm", "already_ongoing", date(2026, 11, 24), by="handlaggare:Eva"
    )
    await deliver()
    close_report(ref, by="kurator:Kim")
    assert report(ref).status == ReportStatus.CLOSED
    assert handovers_of(ref)[0].status == "confirmed"

    with session_scope() as s:
        chain = verify_chain(s)
    assert chain.ok, chain.reason
    lifecycle_events = [e for e in events(ref) if e.rule and e.rule.startswith("L-")]
    assert {e.rule for e in lifecycle_events} >= {
        "L-PHONE",
        "L-ESCALATE-REMIND",
        "L-CONFIRM",
        "L-FEEDBACK",
        "L-CLOSE",
    }
    for e in lifecycle_events:
        assert e.actor and e.rule
    report_steps = [
        (json.loads(e.details)["to"], e.rule, e.actor) for e in events(ref, "report.status")
    ]
    assert report_steps[1:] == [
        ("handed_over", "L-CONFIRM", "handlaggare:Eva"),
        ("feedback_received", "L-FEEDBACK", "handlaggare:Eva"),
        ("closed", "L-CLOSE", "kurator:Kim"),
    ]
    assert len(mails_to(smtp, COUNSELOR)) == 1  # feedback notice only; phone was recorded
