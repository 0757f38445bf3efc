"""Declining and re-routing, failing closed to a person, and refused transitions. Runs on
SQLite and PostgreSQL with a real SMTP server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from helpers_lifecycle import (
    COUNSELOR,
    Clock,
    assert_no_child_data,
    body,
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
from orosflow.handover.lifecycle import (
    IllegalTransition,
    LifecycleError,
    close_report,
    confirm,
    decline,
    record_feedback,
)
from orosflow.handover.lifecycle.outbox import deliver
from routing import clear_router_cache
from routing.channels import EXAMPLE_CHANNELS

MONDAY = local(2026, 11, 23, 10, 0)
OPERATOR = "operator@orosflow.example.se"


@pytest.fixture
def clock() -> Iterator[Clock]:
    with frozen_clock(MONDAY) as c:
        yield c


async def test_decline_with_right_unit_reroutes_and_keeps_both_handovers(
    db: str, smtp: MailCapture, clock: Clock
) -> None:
    ref = submit_report(clock)
    [first_id] = await hand_over(ref)
    clock.advance(minutes=30)
    result = decline(
        ref,
        "sdf-sodermalm",
        by="handlaggare:Eva",
        reason="wrong_district",
        right_unit_id="sdf-bromma",
    )
    assert result.changed and result.details["new_unit_id"] == "sdf-bromma"
    assert "Bromma" in result.message
    sent = await deliver()  # the new unit's notification and the counselor's notice
    assert sent.sent == 2 and sent.failed == []

    first, second = handovers_of(ref)
    assert (first.id, first.status, first.decline_reason) == (
        first_id,
        HandoverStatus.DECLINED,
        "wrong_district",
    )
    assert (second.unit_id, second.attempt, second.rerouted_from) == ("sdf-bromma", 2, first_id)
    assert second.status == HandoverStatus.NOTIFIED and second.deadline_at is not None
    assert second.rule == "L-DECLINE-REROUTE"
    [to_bromma] = mails_to(smtp, "sdf-bromma@example.se")
    assert mid(to_bromma) == second.message_id
    [told] = mails_to(smtp, COUNSELOR)
    assert "Bromma" in body(told) and ref in str(told["Subject"])
    [declined] = events(ref, "handover.declined")
    assert (declined.rule, declined.actor) == ("L-DECLINE-REROUTE", "handlaggare:Eva")
    created = events(ref, "handover.created")
    assert [e.rule for e in created][-1] == "L-DECLINE-REROUTE"

    # The right unit confirms; the slot is settled and the sweep leaves it alone.
    assert confirm(ref, "sdf-bromma", by="handlaggare:Bo").changed
    assert report(ref).status == ReportStatus.HANDED_OVER
    clock.advance(days=3)
    assert (await escalate_overdue()).steps == []
    assert_no_child_data(smtp.messages())


async def test_decline_without_right_unit_reroutes_by_router(
    db: str, smtp: MailCapture, clock: Clock
) -> None:
    ref = submit_report(clock)
    await hand_over(ref)
    result = decline(ref, "sdf-sodermalm", by="handlaggare:Eva", reason="wrong_district")
    # Stockholm without a district: the city-wide intake, which forwards.
    assert result.details["new_unit_id"] == "intake-0180"
    await deliver()
    assert len(mails_to(smtp, "intake-0180@example.se")) == 1
    assert [h.status for h in handovers_of(ref)] == [
        HandoverStatus.DECLINED,
        HandoverStatus.NOTIFIED,
    ]


async def test_decline_with_no_unit_left_fails_closed_to_counselor_and_operator(
    db: str, smtp: MailCapture, clock: Clock
) -> None:
    ref = submit_report(clock, municipality="1980", district=None)
    await hand_over(ref)
    result = decline(ref, "intake-1980", by="handlaggare:Eva", reason="wrong_municipality")
    assert result.details["failed_closed"] and result.details["new_handover_id"] is None
    assert "larmats" in result.message
    await deliver()
    [to_counselor] = mails_to(smtp, COUNSELOR)
    [to_operator] = mails_to(smtp, OPERATOR)
    assert "ÅTGÄRD KRÄVS" in str(to_counselor["Subject"])
    assert "Ring socialtjänsten nu" in body(to_counselor)
    assert "intake-1980" in body(to_operator)
    [event] = events(ref, "handover.reroute_failed")
    assert (event.rule, event.actor) == ("L-FAIL-CLOSED", "handlaggare:Eva")
    assert len(handovers_of(ref)) == 1
    # Nothing is sent twice.
    assert (await deliver()).sent == 0
    assert_no_child_data(smtp.messages())


async def test_handover_without_channel_fails_closed(
    db: str, smtp: MailCapture, clock: Clock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    channels = tmp_path / "channels.toml"
    text = EXAMPLE_CHANNELS.read_text(encoding="utf-8")
    text = text.replace('email = "sdf-sodermalm@example.se"\n', "")
    channels.write_text(text, encoding="utf-8")
    monkeypatch.setenv("OROSFLOW_CHANNELS_FILE", str(channels))
    clear_router_cache()
    try:
        ref = submit_report(clock)
        # Failed closed when it was created, with both alerts queued in that transaction.
        [h] = handovers_of(ref)
        assert h.status == HandoverStatus.FAILED
        await hand_over(ref)
        assert len(mails_to(smtp, COUNSELOR)) == len(mails_to(smtp, OPERATOR)) == 1
        result = await escalate_overdue()
        assert result.steps == [] and result.mails_sent == 0
        assert "ingen e-postkanal" in body(mails_to(smtp, OPERATOR)[0])
        assert (await escalate_overdue()).mails_sent == 0
    finally:
        monkeypatch.delenv("OROSFLOW_CHANNELS_FILE")
        clear_router_cache()


async def test_illegal_transitions_are_refused_in_swedish(
    db: str, smtp: MailCapture, clock: Clock
) -> None:
    ref = submit_report(clock)
    with pytest.raises(LifecycleError) as exc:
        confirm(ref, "sdf-bromma", by="x")
    assert exc.value.code == "no_handover"
    await hand_over(ref)
    with pytest.raises(IllegalTransition) as exc:
        close_report(ref, by="kurator:Kim")
    assert "dirigerad och kan inte avslutas" in exc.value.message
    with pytest.raises(IllegalTransition) as exc:
        record_feedback(ref, "sdf-sodermalm", "opened", date(2026, 11, 23), by="x")
    assert "kan inte få återkoppling" in exc.value.message
    decline(ref, "sdf-sodermalm", by="x", reason="wrong_district", right_unit_id="sdf-bromma")
    before = len(events())
    with pytest.raises(IllegalTransition) as exc:
        confirm(ref, "sdf-sodermalm", by="x")
    assert "är avböjd och kan inte bekräftas" in exc.value.message
    with pytest.raises(IllegalTransition):
        decline(ref, "sdf-sodermalm", by="x", reason="wrong_district")
    assert len(events()) == before  # refused means nothing written
    with pytest.raises(LifecycleError) as exc:
        decline(ref, "sdf-bromma", by="x", reason="vet inte")
    assert exc.value.code == "reason_invalid"
    with pytest.raises(LifecycleError) as exc:
        confirm("OA-2026-999999", "sdf-bromma", by="x")
    assert exc.value.code == "report_not_found"
