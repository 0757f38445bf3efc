"""Reconciliation: reports that are stored but have no flow run get one.

This is what makes "the receipt never waits for Prefect" safe: a report submitted while
Prefect was down (or whose run was never created) is started when the engine is back.
Handovers already sent are not sent again: the flow itself skips notified handovers.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlmodel import select

from models.tables import Report, ReportStatus
from orosflow.clock import utcnow
from orosflow.db import session_scope
from orosflow.trigger import start_flow_runs

log = logging.getLogger("orosflow.reconcile")


def reports_without_run(grace: timedelta = timedelta(seconds=30)) -> list[tuple[str, str]]:
    """Received reports without flow run, older than ``grace`` (the submitter may start it)."""
    cutoff = utcnow() - grace
    with session_scope() as session:
        rows = session.exec(
            select(Report.id, Report.reference).where(
                Report.status == ReportStatus.RECEIVED,
                Report.flow_run_id.is_(None),  # type: ignore[union-attr]
                Report.submitted_at <= cutoff,
            )
        ).all()
    return [(r[0], r[1]) for r in rows]


async def reconcile_once(grace: timedelta = timedelta(seconds=30)) -> int:
    items = await asyncio.to_thread(reports_without_run, grace)
    if not items:
        return 0
    started = await start_flow_runs(items)
    count = sum(1 for v in started.values() if v)
    log.info("reconcile: %d of %d reports without flow run started", count, len(items))
    return count


async def reconcile_loop(interval: float = 30.0) -> None:
    """At start (no grace: nothing is being submitted yet) and then every ``interval`` s."""
    await reconcile_once(grace=timedelta(0))
    while True:
        await asyncio.sleep(interval)
        try:
            await reconcile_once()
        except Exception as exc:  # keep serving; the next round tries again
            log.warning("reconcile round failed: %s", type(exc).__name__)
