"""The ``escalate-overdue`` flow against a real Prefect server and a real SMTP server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers_lifecycle import Clock, frozen_clock, hand_over, local, mails_to, mid, submit_report

from flows.escalate_overdue import escalate_overdue
from orosflow.core.smtp_capture import MailCapture
from orosflow.handover.lifecycle import record_phone_contact


@pytest.fixture
def clock() -> Iterator[Clock]:
    with frozen_clock(local(2026, 11, 23, 10, 0)) as c:
        yield c


@pytest.mark.prefect_server
async def test_escalate_overdue_flow_runs_on_prefect_server(
    prefect_server: Path, sqlite_db: str, smtp: MailCapture, clock: Clock
) -> None:
    ref = submit_report(clock, urgency="acute")
    record_phone_contact(ref, "Sam Socionom", clock.now, by="kurator:Kim")
    [hid] = await hand_over(ref)
    clock.advance(minutes=61)

    result = await escalate_overdue()
    assert result == {"steps": 1, "mails_sent": 1}
    [reminder] = mails_to(smtp, "sdf-sodermalm@example.se")[1:]
    assert mid(reminder) == f"<{hid}.escalate-1@orosflow.example.se>"

    # A second run at the same moment sends nothing.
    assert await escalate_overdue() == {"steps": 0, "mails_sent": 0}
    assert len(smtp.messages()) == 2
