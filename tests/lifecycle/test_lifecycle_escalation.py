"""Deadlines and the escalation sweep with a driven clock and a real SMTP server: not before
the deadline, exactly after it, one step per period, nothing twice, nothing after
confirmation. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, timedelta

import pytest
from helpers_lifecycle import (
    COUNSELOR,
    Clock,
    assert_no_child_data,
    body,
    details,
    events,
    frozen_clock,
    hand_over,
    handovers_of,
    local,
    mails_to,
    mid,
    report,
    submit_report,
)

from models.tables import HandoverStatus, ReportStatus
from orosflow.core.smtp_capture import MailCapture
from orosflow.handover.escalation import escalate_overdue
from orosflow.handover.lifecycle import confirm, record_phone_contact

# Friday 29 December 2028, 15:00: office hours; Monday 1 January 2029 is a public holiday.
FRIDAY_BEFORE_HOLIDAY_MONDAY = local(2028, 12, 29, 15, 0)
# Monday 23 November 2026, 10:00: an ordinary working day.
MONDAY = local(2026, 11, 23, 10, 0)


@pytest.fixture
def clock() -> Iterator[Clock]:
    with frozen_clock(MONDAY) as c:
        yield c


async def test_not_acute_friday_before_holiday_monday_escalates_at_noon_tuesday(
    db: str, smtp: MailCapture, clock: Clock
) -> None:
    clock.set(FRIDAY_BEFORE_HOLIDAY_MONDAY)
    ref = submit_report(clock)
    [hid] = await hand_over(ref)
    [h] = handovers_of(ref)
    assert h.unit_id == "sdf-sodermalm" and h.status == HandoverStatus.NOTIFIED
    assert h.deadline_at == local(2029, 1, 2, 12, 0).astimezone(UTC)  # Tuesday, not Monday
    unit_mail = "sdf-sodermalm@example.se"
    assert len(mails_to(smtp, unit_mail)) == 1  # the notification

    for moment in (local(2029, 1, 1, 12, 5), local(2029, 1, 2, 11, 59)):
        clock.set(moment)
        result = await escalate_overdue()
        assert result.steps == [] and result.mails_sent == 0
    assert len(mails_to(smtp, unit_mail)) == 1
    assert events(ref, "handover.escalated") == []

    clock.set(local(2029, 1, 2, 12, 1))
    result = await escalate_overdue()
    assert result.steps == [f"{hid}:1"] and result.mails_sent == 1
    reminder = mails_to(smtp, unit_mail)[-1]
    assert mid(reminder) == f"<{hid}.escalate-1@orosflow.example.se>"
    assert str(reminder["In-Reply-To"]).strip() == h.message_id
    assert "Påminnelse" in str(reminder["Subject"]) and ref in str(reminder["Subject"])
    [event] = events(ref, "handover.escalated")
    assert (event.rule, event.actor) == ("L-ESCALATE-REMIND", "system:escalate-overdue")
    assert details(event)["step"] == 1
    assert handovers_of(ref)[0].status == HandoverStatus.ESCALATED

    # The same moment again: nothing more is decided, audited or sent.
    before = (len(smtp.messages()), len(events()))
    again = await escalate_overdue()
    assert again.steps == [] and again.mails_sent == 0
    assert (len(smtp.messages()), len(events())) == before
    assert_no_child_data(smtp.messages())


async def test_acute_escalates_after_one_hour_then_socialjour_then_counselor(
    db: str, smtp: MailCapture, clock: Clock
) -> None:
    ref = submit_report(clock, urgency="acute")
    record_phone_contact(ref, "Sam Socionom", clock.now, by="test:counselor")
    clock.advance(minutes=1)
    [hid] = await hand_over(ref)
    notified = clock.now
    assert handovers_of(ref)[0].deadline_at == notified + timedelta(hours=1)

    clock.set(notified + timedelta(minutes=59))
    assert (await escalate_overdue()).steps == []
    clock.set(notified + timedelta(minutes=60, seconds=1))
    assert (await escalate_overdue()).steps == [f"{hid}:1"]
    # Step 2 is one more deadline period (60 min) after the reminder, not before.
    clock.advance(minutes=59)
    assert (await escalate_overdue()).steps == []
    clock.advance(minutes=2)
    step2 = await escalate_overdue()
    assert step2.steps == [f"{hid}:2"] and step2.mails_sent == 1  # the socialjour's notice
    original, target = handovers_of(ref)
    assert (target.unit_id, target.escalated_from, target.attempt) == ("sj-0180", hid, 2)
    assert target.status == HandoverStatus.NOTIFIED and target.phone_required
    [sj_mail] = mails_to(smtp, "sj-0180@example.se")
    assert mid(sj_mail) == f"<{target.id}@orosflow.example.se>"
    assert "Eskalerad" in str(sj_mail["Subject"]) and original.unit_name in body(sj_mail)

    clock.advance(minutes=61)
    step3 = await escalate_overdue()
    assert step3.steps == [f"{hid}:3"]
    [to_counselor] = mails_to(smtp, COUNSELOR)
    assert mid(to_counselor) == f"<{hid}.escalate-3@orosflow.example.se>"
    assert "Socialjouren för Stockholm: 000-000 00 00" in body(to_counselor)
    rules = [e.rule for e in events(ref, "handover.escalated")]
    assert rules == ["L-ESCALATE-REMIND", "L-ESCALATE-SOCIALJOUR", "L-ESCALATE-COUNSELOR"]

    # The ladder is done; later sweeps do nothing.
    clock.advance(hours=5)
    assert (await escalate_overdue()).steps == []

    # The escalation target confirms: the original is confirmed with it, the report handed over.
    result = confirm(ref, "sj-0180", by="jour:Alex")
    assert result.changed
    original, target = handovers_of(ref)
    assert original.status == target.status == HandoverStatus.CONFIRMED
    assert report(ref).status == ReportStatus.HANDED_OVER
    via = [e for e in events(ref, "handover.confirmed") if e.handover_id == hid]
    assert via[0].rule == "L-CONFIRM-VIA-ESCALATION" and via[0].actor == "jour:Alex"
    assert_no_child_data(smtp.messages())


async def test_confirmation_stops_escalation_and_a_second_one_changes_nothing(
    db: str, smtp: MailCapture, clock: Clock
) -> None:
    ref = submit_report(clock)
    [hid] = await hand_over(ref)
    clock.advance(hours=2)
    first = confirm(ref, "sdf-sodermalm", by="handlaggare:Eva")
    assert first.changed and "bekräftat" in first.message
    assert report(ref).status == ReportStatus.HANDED_OVER

    second = confirm(ref, "sdf-sodermalm", by="handlaggare:Olle")
    assert not second.changed and "redan bekräftat" in second.message
    assert "Inget har ändrats" in second.message
    [event] = events(ref, "handover.confirmed")
    assert (event.rule, event.actor) == ("L-CONFIRM", "handlaggare:Eva")
    assert handovers_of(ref)[0].confirmed_by == "handlaggare:Eva"

    for days in (1, 2, 3, 7):
        clock.set(local(2026, 11, 23, 13, 0) + timedelta(days=days))
        assert (await escalate_overdue()).steps == []
    assert len(smtp.messages()) == 1  # only the original notification
    assert events(ref, "handover.escalated") == []


async def test_acute_without_phone_record_alerts_counselor_after_15_minutes(
    db: str, smtp: MailCapture, clock: Clock
) -> None:
    start = clock.now
    ref = submit_report(clock, urgency="acute")
    called = submit_report(clock, urgency="acute")
    await hand_over(ref)
    await hand_over(called)
    clock.set(start + timedelta(minutes=10))
    record_phone_contact(called, "Sam Socionom", clock.now, by="test:counselor")

    clock.set(start + timedelta(minutes=14))
    assert (await escalate_overdue()).steps == []
    clock.set(start + timedelta(minutes=15, seconds=1))
    result = await escalate_overdue()
    assert len(result.steps) == 1 and result.steps[0].endswith(":phone")
    [alert] = mails_to(smtp, COUNSELOR)
    assert ref in str(alert["Subject"]) and "telefonkontakt" in str(alert["Subject"])
    assert "Socialtjänsten" in body(alert) or "stadsdelsförvaltning" in body(alert)
    assert "000-000 00 00" in body(alert)
    [event] = events(ref, "report.escalated")
    assert (event.rule, event.actor) == ("L-ESCALATE-PHONE", "system:escalate-overdue")
    assert events(called, "report.escalated") == []

    clock.advance(minutes=5)
    assert (await escalate_overdue()).steps == []
    assert len(mails_to(smtp, COUNSELOR)) == 1
