"""Reconciliation: no stored report is left without a flow run that finishes its work.

Two cases, both decided from our database plus the run's state in Prefect:
1. a report with no flow run at all (Prefect was down at submission);
2. a report whose run ended without finishing (crashed, failed — e.g. SMTP down longer than the
   send retries, a killed worker — or cancelled) while it is still unrouted or has an original
   handover not yet notified.
A restart is a new run of the same flow; it skips every handover already notified, so nothing
is sent twice. Runs on a schedule and at start of ``orosflow serve``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlmodel import col, or_, select

from models.tables import Handover, HandoverStatus, Report, ReportStatus
from orosflow.clock import utcnow
from orosflow.db import session_scope
from orosflow.trigger import start_flow_runs

log = logging.getLogger("orosflow.reconcile")

Starter = Callable[[list[tuple[str, str]], dict[str, str]], Awaitable[dict[str, str | None]]]


def reports_without_run(grace: timedelta = timedelta(seconds=30)) -> list[tuple[str, str]]:
    """Received reports without flow run, older than ``grace`` (the submitter may start it)."""
    cutoff = utcnow() - grace
    with session_scope() as session:
        rows = session.exec(
            select(Report.id, Report.reference).where(
                Report.status == ReportStatus.RECEIVED,
                col(Report.flow_run_id).is_(None),
                Report.submitted_at <= cutoff,
            )
        ).all()
    return [(r[0], r[1]) for r in rows]


def unfinished_reports() -> list[tuple[str, str, str]]:
    """``(report_id, reference, flow_run_id)`` of reports whose run has work left."""
    unsent = (
        select(Handover.report_id)
        .where(
            Handover.status == HandoverStatus.CREATED,
            col(Handover.escalated_from).is_(None),
            col(Handover.rerouted_from).is_(None),
        )
        .scalar_subquery()
    )
    with session_scope() as session:
        rows = session.exec(
            select(Report.id, Report.reference, Report.flow_run_id).where(
                col(Report.flow_run_id).is_not(None),
                or_(Report.status == ReportStatus.RECEIVED, col(Report.id).in_(unsent)),
            )
        ).all()
    return [(r[0], r[1], r[2]) for r in rows if r[2]]


async def runs_needing_restart(
    candidates: list[tuple[str, str, str]],
) -> list[tuple[str, str, str]]:
    """Keep the candidates whose run is in a final state (a running run is left alone)."""
    if not candidates:
        return []
    from prefect.client.orchestration import get_client

    out = []
    async with get_client() as client:
        for rid, ref, frid in candidates:
            try:
                run = await client.read_flow_run(uuid.UUID(frid))
            except Exception:  # run unknown to this server (e.g. its database was reset)
                out.append((rid, ref, frid))
                continue
            if run.state is not None and run.state.is_final():
                out.append((rid, ref, frid))
    return out


async def reconcile_once(
    grace: timedelta = timedelta(seconds=30), starter: Starter = start_flow_runs
) -> int:
    """One round: start missing runs and restart unfinished ones; returns runs started."""
    missing = await asyncio.to_thread(reports_without_run, grace)
    restart = await runs_needing_restart(await asyncio.to_thread(unfinished_reports))
    items = missing + [(rid, ref) for rid, ref, _ in restart]
    if not items:
        return 0
    attempts = {rid: f"after:{frid}" for rid, _, frid in restart}
    started = await starter(items, attempts)
    count = sum(1 for v in started.values() if v)
    log.info(
        "reconcile: %d missing, %d unfinished, %d runs started", len(missing), len(restart), count
    )
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
