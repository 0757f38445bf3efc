"""Reconciliation against a real Prefect server: a run that failed while SMTP was down is
restarted once, and the restart notifies exactly once; running runs are left alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from models.tables import Handover, HandoverStatus, Report
from orosflow.core.clock import set_clock
from orosflow.core.db import session_scope
from orosflow.core.settings import reset_settings
from orosflow.handover.reconcile import reconcile_once
from orosflow.handover.submission import submit

from factories import form
from support import free_port

OFFICE_HOURS = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


class RecordingStarter:
    """Stands in for run creation only; the test then runs the flow itself, as a worker would."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[tuple[str, str]], dict[str, str]]] = []

    async def __call__(self, items, attempts):  # noqa: ANN001, ANN204
        self.calls.append((items, attempts))
        return {rid: "started" for rid, _ in items}


async def test_failed_run_is_restarted_once_and_notifies_once(
    sqlite_db: str, smtp, prefect_server: Path, office_hours: None, monkeypatch
) -> None:
    import flows.concern_report as cr

    receipt = submit(form(), actor="t")
    rid, ref = receipt.reports[0].report_id, receipt.reports[0].reference

    # SMTP is down and the send gives up: the run fails, the handover stays unsent.
    monkeypatch.setenv("OROSFLOW_SMTP_PORT", str(free_port()))
    reset_settings()
    monkeypatch.setattr(cr, "send_mail", cr.send_mail.with_options(retries=0))
    with pytest.raises(Exception):  # noqa: B017 - whatever the SMTP client raises
        await cr.concern_report(rid)
    with session_scope() as s:
        report = s.exec(select(Report).where(Report.id == rid)).one()
        failed_run = report.flow_run_id
        assert s.exec(select(Handover)).one().status == HandoverStatus.CREATED
    assert failed_run

    starter = RecordingStarter()
    assert await reconcile_once(grace=timedelta(0), starter=starter) == 1
    assert starter.calls == [([(rid, ref)], {rid: f"after:{failed_run}"})]

    # SMTP is back; the restarted run notifies; nothing is left to reconcile.
    monkeypatch.setenv("OROSFLOW_SMTP_PORT", str(smtp.port))
    reset_settings()
    await cr.concern_report(rid)
    assert len(smtp.messages()) == 1
    again = RecordingStarter()
    assert await reconcile_once(grace=timedelta(0), starter=again) == 0
    assert again.calls == []


async def test_a_run_that_finished_after_the_listing_is_not_restarted(
    sqlite_db: str, smtp, prefect_server: Path, office_hours: None
) -> None:
    """The reconciler lists reports with mail queued, then reads each run's state: a run that
    sent the mail and completed in between is done. Under load this race restarted 10 runs in
    3000 reports (benchmarks/sustained.py), each a wasted run counted against max_restarts."""
    import flows.concern_report as cr
    from orosflow.handover.reconcile import runs_needing_restart, unfinished_reports

    receipt = submit(form(), actor="t")
    rid, ref = receipt.reports[0].report_id, receipt.reports[0].reference
    await cr.concern_report(rid)  # as if it ran right after the listing below
    with session_scope() as s:
        frid = s.get(Report, rid).flow_run_id
    assert len(smtp.messages()) == 1 and frid
    assert unfinished_reports() == []

    listed_before = [(rid, ref, frid)]  # what the listing saw while the run was still going
    assert await runs_needing_restart(listed_before) == []


async def test_report_without_run_is_started_after_grace(
    sqlite_db: str, prefect_server: Path, office_hours: None
) -> None:
    rid = submit(form(), actor="t").reports[0].report_id
    starter = RecordingStarter()
    assert await reconcile_once(grace=timedelta(minutes=5), starter=starter) == 0
    set_clock(lambda: OFFICE_HOURS + timedelta(minutes=6))
    assert await reconcile_once(grace=timedelta(minutes=5), starter=starter) == 1
    assert starter.calls[0][0][0][0] == rid and starter.calls[0][1] == {}


async def test_running_run_is_left_alone_until_it_shows_no_life_then_crashed_and_restarted(
    sqlite_db: str, prefect_server: Path, office_hours: None
) -> None:
    """A run the server still calls RUNNING is someone's live work — until it has had no state
    change and no event (heartbeat, task state) for ``stale_after``: then its process is gone."""
    import asyncio
    import uuid

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.states import Running

    import flows.concern_report as cr

    receipt = submit(form(), actor="t")
    rid, ref = receipt.reports[0].report_id, receipt.reports[0].reference
    async with get_client() as client:
        run = await client.create_flow_run(
            cr.concern_report, parameters={"report_id": rid}, state=Running()
        )
    with session_scope() as s:
        report = s.get(Report, rid)
        report.flow_run_id = str(run.id)
        s.add(report)

    starter = RecordingStarter()
    assert await reconcile_once(grace=timedelta(0), starter=starter) == 0  # 2 min default
    await asyncio.sleep(3)
    assert await reconcile_once(grace=timedelta(0), starter=starter) == 0
    assert starter.calls == []

    assert (
        await reconcile_once(grace=timedelta(0), starter=starter, stale_after=timedelta(seconds=2))
        == 1
    )
    assert starter.calls == [([(rid, ref)], {rid: f"after:{run.id}"})]
    async with get_client() as client:
        crashed = await client.read_flow_run(uuid.UUID(str(run.id)))
    assert crashed.state_type == StateType.CRASHED
    assert "avstämning" in (crashed.state.message or "")


def test_reconciler_log_has_no_line_per_http_request() -> None:
    """The reconciler's logging (issue 16): httpx logged one INFO line per Prefect API call."""
    import subprocess
    import sys

    script = (
        "import logging, httpx\n"
        "from orosflow.handover.reconcile import configure_logging\n"
        "configure_logging()\n"
        "client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200)))\n"
        "for _ in range(3): client.get('http://prefect.test/api/health')\n"
        "logging.getLogger('orosflow.handover.reconcile').info('Avstämning klar')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "Avstämning klar" in out.stderr
    assert "HTTP Request" not in out.stderr


class SlowPrefect:
    """A flow-run creation as an overloaded server answers it: each creation takes ``seconds``
    (or hangs); counts the creations in flight at once."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.in_flight, self.most, self.calls = seconds, 0, 0, 0

    async def __call__(self, **kwargs):  # noqa: ANN003, ANN204 - create_in_prefect keywords
        import asyncio
        import uuid
        from types import SimpleNamespace

        self.calls += 1
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await asyncio.sleep(self.seconds)
        finally:
            self.in_flight -= 1
        return SimpleNamespace(id=uuid.uuid4())


def _limit(monkeypatch, limit: int, trigger_timeout: float = 5.0) -> None:  # noqa: ANN001
    monkeypatch.setenv("OROSFLOW_RECONCILE_START_LIMIT", str(limit))
    monkeypatch.setenv("OROSFLOW_TRIGGER_TIMEOUT", str(trigger_timeout))
    reset_settings()


async def test_a_round_creates_at_most_the_limit_of_runs_at_once(
    sqlite_db: str, office_hours: None, monkeypatch
) -> None:
    """12 reports without a run: the real starter creates them 3 at a time, not 12 at once,
    and every report gets its run."""
    slow = SlowPrefect(0.05)
    monkeypatch.setattr("orosflow.handover.trigger.create_in_prefect", slow)
    _limit(monkeypatch, 3)
    rids = [submit(form(), actor="t").reports[0].report_id for _ in range(12)]

    assert await reconcile_once(grace=timedelta(0)) == 12
    assert slow.most == 3
    with session_scope() as s:
        assert all(s.get(Report, rid).flow_run_id for rid in rids)


async def test_a_round_gives_up_after_the_limit_of_timeouts_in_a_row(
    sqlite_db: str, office_hours: None, monkeypatch
) -> None:
    """A server that does not answer: the round stops after 2 timed-out creations (the limit)
    instead of waiting out all 10; the next round tries again."""
    hung = SlowPrefect(60)
    monkeypatch.setattr("orosflow.handover.trigger.create_in_prefect", hung)
    _limit(monkeypatch, 2, trigger_timeout=0.2)
    for _ in range(10):
        submit(form(), actor="t")

    assert await reconcile_once(grace=timedelta(0)) == 0
    assert hung.calls == 2
    assert await reconcile_once(grace=timedelta(0)) == 0
    assert hung.calls == 4
