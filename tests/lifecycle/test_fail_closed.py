"""A handover that can never be delivered fails closed at once, and a report whose delivery
keeps failing is restarted a bounded number of times, then the operator is told.

Attacks this reproduces (issue 11, finding 1): a report stored under another master key, and a
mail header that cannot be written, each left the handover ``created`` with no deadline and
made the reconciler restart the run forever."""

from __future__ import annotations

from datetime import timedelta

import pytest
from helpers_lifecycle import (
    COUNSELOR,
    assert_no_child_data,
    body,
    details,
    events,
    frozen_clock,
    handovers_of,
    local,
    mails_to,
    report_id,
    submit_report,
)
from sqlmodel import select

from models.tables import Handover, HandoverStatus, LifecycleMail, Report, ReportKey
from orosflow.core.db import session_scope
from orosflow.core.settings import reset_settings
from orosflow.handover import delivery, reconcile
from orosflow.handover.lifecycle import outbox

OPERATOR = "operator@orosflow.example.se"
MONDAY_10 = local(2026, 11, 23, 10, 0)


def _store_under_another_key(reference: str) -> None:
    """As a report written by an instance with another master key."""
    with session_scope() as s:
        key = s.get(ReportKey, report_id(reference))
        assert key is not None
        key.master_key_id = "0123456789abcdef"
        s.add(key)


def _undeliverable(reference: str) -> list[str]:
    return [details(e)["reason"] for e in events(reference, "mail.undeliverable")]


async def test_report_that_cannot_be_decrypted_fails_closed_and_the_operator_is_told(
    db: str, smtp
) -> None:
    with frozen_clock(MONDAY_10) as clock:
        ref = submit_report(clock)
        _store_under_another_key(ref)
        rid = report_id(ref)

        delivery.load_and_revalidate(rid)  # no exception: nothing a restart could fix
        result = await outbox.deliver(rid)

    assert [h.status for h in handovers_of(ref)] == [HandoverStatus.FAILED]
    assert result.failed == [] and outbox.pending_mails(rid) == []
    # The unit's notification and the counselor's alert cannot be built without the content.
    assert sorted(_undeliverable(ref)) == ["content_unreadable", "content_unreadable"]
    [alert] = mails_to(smtp, OPERATOR)
    assert ref in str(alert["Subject"])
    assert "kan inte läsas" in body(alert) and "kuratorn kan därför inte nås" in body(alert)
    assert mails_to(smtp, COUNSELOR) == []
    assert_no_child_data(smtp.messages())
    [undeliverable] = events(ref, "report.undeliverable")
    assert details(undeliverable)["reason"] == "content_unreadable"


async def test_a_header_that_cannot_be_written_fails_the_handover_closed(db: str, smtp) -> None:
    with frozen_clock(MONDAY_10) as clock:
        ref = submit_report(clock)
        with session_scope() as s:
            h = s.exec(select(Handover).where(Handover.report_id == report_id(ref))).one()
            h.email = "intag@kommun.example.se\r\nBcc: spion@example.com"
            s.add(h)
        result = await outbox.deliver(report_id(ref))

    assert [h.status for h in handovers_of(ref)] == [HandoverStatus.FAILED]
    assert result.failed == []
    assert _undeliverable(ref) == ["mail_unrenderable"]
    assert not [m for m in smtp.messages() if "spion" in str(m["To"]) + str(m.get("Bcc"))]
    [to_counselor], [to_operator] = mails_to(smtp, COUNSELOR), mails_to(smtp, OPERATOR)
    assert "kunde inte skapas" in body(to_counselor)
    assert "Ring socialtjänsten" in body(to_counselor)
    assert "kunde inte skapas" in body(to_operator)
    assert_no_child_data(smtp.messages())


class Starter:
    def __init__(self) -> None:
        self.started: list[str] = []

    async def __call__(self, items, attempts):  # noqa: ANN001, ANN204
        self.started += [rid for rid, _ in items]
        return {rid: f"run-{len(self.started)}" for rid, _ in items}


async def test_restarts_are_bounded_then_the_operator_is_alerted_once(
    db: str, smtp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OROSFLOW_MAX_RESTARTS", "3")
    reset_settings()
    with frozen_clock(MONDAY_10) as clock:
        ref = submit_report(clock)
    rid = report_id(ref)

    # Every run of this report ends unfinished (e.g. SMTP refuses it for hours).
    async def every_run_over(candidates, stale_after, orphaned_before):  # noqa: ANN001, ANN202
        return [(r, f, "run-last") for r, f, _ in candidates]

    monkeypatch.setattr(reconcile, "runs_needing_restart", every_run_over)
    with session_scope() as s:
        s.get(Report, rid).flow_run_id = "run-0"
    starter = Starter()
    for _ in range(6):
        await reconcile.reconcile_once(grace=timedelta(0), starter=starter)

    assert starter.started == [rid, rid, rid]  # three restarts, then no more
    assert len(events(ref, "flow_run.restarted")) == 3
    [exhausted] = events(ref, "report.restarts_exhausted")
    assert details(exhausted)["restarts"] == 3
    [alert] = mails_to(smtp, OPERATOR)
    assert ref in str(alert["Subject"]) and "fastnat" in str(alert["Subject"])
    assert "startats om 3 gånger" in body(alert)
    assert "Meddelanden som väntar: 1" in body(alert)
    assert_no_child_data([alert])
    # The notification itself stays queued for the sweep: nothing the counselor sent is lost.
    with session_scope() as s:
        queued = s.exec(
            select(LifecycleMail).where(
                LifecycleMail.report_id == rid, LifecycleMail.kind == "notification"
            )
        ).one()
        assert queued.sent_at is None
