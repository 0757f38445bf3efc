"""Route once: the route is decided at submission, with the submission time, stored and shown on
the receipt; the flow delivers exactly that, however late it runs. And a written report sent
out of office hours names when the unit will first read it, in the receipt and the mail, and
its confirmation deadline counts from then."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlmodel import select

from models.tables import Handover
from orosflow.core.clock import STOCKHOLM, set_clock
from orosflow.core.db import session_scope
from orosflow.core.smtp_capture import MailCapture
from orosflow.handover import delivery
from orosflow.handover.lifecycle import outbox
from orosflow.handover.submission import submit

from factories import form


class Clock:
    def __init__(self, at: datetime) -> None:
        self.now = at


@pytest.fixture
def clock() -> Iterator[Clock]:
    c = Clock(datetime(2026, 11, 23, 16, 29, tzinfo=STOCKHOLM))  # a Monday
    set_clock(lambda: c.now)
    yield c
    set_clock(None)


def _body(msg) -> str:  # noqa: ANN001
    return msg.get_body(preferencelist=("plain",)).get_content()


@pytest.mark.prefect_server
async def test_report_submitted_at_1629_whose_run_starts_at_1631_goes_where_the_receipt_said(
    sqlite_db: str, smtp: MailCapture, prefect_server: Path, clock: Clock
) -> None:
    import flows.concern_report as cr

    # Acute at 16:29: the district is open, so it is called and gets the written report.
    receipt = submit(form(urgency="acute"), actor="test:counselor")
    item = receipt.reports[0]
    assert [r.unit_id for r in item.recipients] == ["sdf-sodermalm"]
    assert [c.unit_id for c in item.calls] == ["sdf-sodermalm"]

    # Prefect was slow: the run starts at 16:31, after the office closed. Routing again now
    # would pick the socialjour; the run delivers the stored decision instead.
    clock.now = datetime(2026, 11, 23, 16, 31, tzinfo=STOCKHOLM)
    await cr.concern_report(item.report_id)

    [mail] = smtp.messages()
    assert mail["To"] == "sdf-sodermalm@example.se"
    with session_scope() as s:
        [h] = s.exec(select(Handover).where(Handover.report_id == item.report_id)).all()
    assert (h.unit_id, h.status) == ("sdf-sodermalm", "notified")
    assert outbox.pending_mails(item.report_id) == []


async def test_written_report_out_of_hours_names_its_opening_and_counts_the_deadline_from_it(
    sqlite_db: str, smtp: MailCapture, clock: Clock
) -> None:
    # Monday 21 December 2026, 06:30: not acute, so the district's written channel, read at
    # 08:00; no phone call, no socialjour.
    clock.now = datetime(2026, 12, 21, 6, 30, tzinfo=STOCKHOLM)
    receipt = submit(form(), actor="test:counselor")
    item = receipt.reports[0]
    [recipient] = item.recipients
    assert recipient.unit_id == "sdf-sodermalm" and item.calls == []
    assert recipient.opens_at == "2026-12-21T08:00:00+01:00"
    assert "läses tidigast måndag 21 december kl. 08:00" in receipt.message
    assert "Ring nu" not in receipt.message

    await delivery_now(item.report_id)
    [mail] = smtp.messages()
    assert "läses tidigast måndag 21 december kl. 08:00" in _body(mail)
    with session_scope() as s:
        [h] = s.exec(select(Handover).where(Handover.report_id == item.report_id)).all()
    # Confirm by 12:00 on the day it is first read (counted from the mail at 06:30 it would
    # have been 12:00 on the next working day).
    assert h.deadline_at.astimezone(STOCKHOLM) == datetime(2026, 12, 21, 12, 0, tzinfo=STOCKHOLM)


async def delivery_now(report_id: str) -> None:
    delivery.load_and_revalidate(report_id)
    assert not (await outbox.deliver(report_id)).failed


async def test_routing_failure_keeps_the_report_alerts_the_operator_and_the_run_routes_it_later(
    sqlite_db: str, smtp: MailCapture, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orosflow.handover import routing_call

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("directory unreadable")

    working = routing_call.decide
    monkeypatch.setattr(routing_call, "decide", broken)
    receipt = submit(form(), actor="test:counselor")  # still a receipt: nothing is lost
    item = receipt.reports[0]
    assert item.recipients == [] and "mottagen och sparad" in receipt.message
    with session_scope() as s:
        assert s.exec(select(Handover)).all() == []
    await outbox.deliver(item.report_id)
    [alert] = smtp.messages()
    assert alert["To"] == "operator@orosflow.example.se" and "kunde inte dirigeras" in _body(alert)

    # Routing works again; the report's next run routes it as of its submission time (16:29,
    # so the district, although the run is later) and delivers.
    monkeypatch.setattr(routing_call, "decide", working)
    clock.now = datetime(2026, 11, 23, 20, 0, tzinfo=STOCKHOLM)
    await delivery_now(item.report_id)
    with session_scope() as s:
        [h] = s.exec(select(Handover).where(Handover.report_id == item.report_id)).all()
    assert (h.unit_id, h.status, h.opens_at) == ("sdf-sodermalm", "notified", None)
    assert smtp.messages()[-1]["To"] == "sdf-sodermalm@example.se"
