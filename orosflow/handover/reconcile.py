"""Reconciliation: no stored report is left without a flow run that finishes its work.

Three cases, all decided from our database plus the run's state in Prefect:
1. a report with mail queued in the outbox (or not routed yet) and no flow run at all
   (Prefect was down at submission or when an action queued it);
2. a report whose run ended (crashed, failed — e.g. SMTP down longer than the send retries —
   or cancelled) with mail still queued;
3. a report whose run still says RUNNING or PENDING but whose process is gone (its worker or
   machine was killed: nothing will ever move that run on). Such a run is marked CRASHED once
   it has shown no sign of life for ``stale_after`` — no state change and no event about it
   (the engine sends a ``prefect.flow-run.heartbeat`` every ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY``
   seconds, 180 by default and 30 in our processes, and every task state change is an event
   too) — and then restarted like case 2.
A restart is a new run of the same flow with the idempotency key ``after:<old run id>``, so two
reconcilers create one run; it sends only what is still queued, so nothing is sent twice.
Runs at start of ``orosflow serve`` and every 30 s in it; where no ``orosflow serve`` runs
(Prefect server + workers), run ``python -m orosflow.handover.reconcile`` as one long-lived process
(two are harmless: the idempotency keys make them start the same runs).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import col, or_, select

from models.tables import LifecycleMail, Report, ReportStatus
from orosflow.core.clock import utcnow
from orosflow.core.db import session_scope
from orosflow.handover.lifecycle import outbox

log = logging.getLogger("orosflow.handover.reconcile")

Starter = Callable[[list[tuple[str, str]], dict[str, str]], Awaitable[dict[str, str | None]]]

#: A RUNNING/PENDING run with no state change and no event for this long has lost its process.
#: Our flow runs take seconds (minutes while SMTP retries, with heartbeats all along).
STALE_AFTER = timedelta(minutes=10)
CRASH_MESSAGE = (
    "Körningens process finns inte längre (inget livstecken på {seconds:.0f} s); "
    "markerad som kraschad av Orosflows avstämning, som startar om anmälan."
)


def _queued() -> object:
    """Reports with an unsent mail in the outbox: work a delivery run has still to do."""
    return (
        select(LifecycleMail.report_id)
        .where(col(LifecycleMail.sent_at).is_(None))
        .scalar_subquery()
    )


def reports_without_run(grace: timedelta = timedelta(seconds=30)) -> list[tuple[str, str]]:
    """Reports with queued mail and no flow run, older than ``grace`` (the submitter or the
    action that queued it may still be starting one)."""
    cutoff = utcnow() - grace
    with session_scope() as session:
        rows = session.exec(
            select(Report.id, Report.reference).where(
                col(Report.flow_run_id).is_(None),
                or_(col(Report.id).in_(_queued()), Report.status == ReportStatus.RECEIVED),
                Report.submitted_at <= cutoff,
            )
        ).all()
    return [(r[0], r[1]) for r in rows]


def unfinished_reports() -> list[tuple[str, str, str]]:
    """``(report_id, reference, flow_run_id)`` of reports whose last run left mail queued."""
    with session_scope() as session:
        rows = session.exec(
            select(Report.id, Report.reference, Report.flow_run_id).where(
                col(Report.flow_run_id).is_not(None),
                or_(col(Report.id).in_(_queued()), Report.status == ReportStatus.RECEIVED),
            )
        ).all()
    return [(r[0], r[1], r[2]) for r in rows if r[2]]


async def _shows_no_life(client: Any, run: Any, stale_after: timedelta) -> bool:
    """No state change and no event about ``run`` within ``stale_after`` (Prefect's clock)."""
    from prefect.events.filters import EventAnyResourceFilter, EventFilter, EventOccurredFilter

    now = datetime.now(UTC)  # not orosflow.core.clock: Prefect's timestamps are wall-clock time
    since = now - stale_after
    if run.state.timestamp is None or run.state.timestamp > since:
        return False
    page = await client.read_events(
        filter=EventFilter(
            occurred=EventOccurredFilter(since=since, until=now + timedelta(minutes=5)),
            any_resource=EventAnyResourceFilter(id=[f"prefect.flow-run.{run.id}"]),
        ),
        limit=1,
    )
    return not page.events


async def runs_needing_restart(
    candidates: list[tuple[str, str, str]], stale_after: timedelta = STALE_AFTER
) -> list[tuple[str, str, str]]:
    """Keep the candidates whose run is over: in a final state, unknown to the server, or
    RUNNING/PENDING without a sign of life for ``stale_after`` (then marked CRASHED here).
    A live run is left alone, and so is one we could not ask about (next round)."""
    if not candidates:
        return []
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.exceptions import ObjectNotFound
    from prefect.states import Crashed

    out = []
    async with get_client() as client:
        for rid, ref, frid in candidates:
            try:
                run = await client.read_flow_run(uuid.UUID(frid))
            except ObjectNotFound:  # run unknown to this server (e.g. its database was reset)
                out.append((rid, ref, frid))
                continue
            except Exception as exc:  # noqa: BLE001 - Prefect unreachable: ask next round
                log.warning("reconcile: run %s not readable: %s", frid, type(exc).__name__)
                continue
            state = run.state
            if state is None:
                continue
            if state.is_final():
                await asyncio.to_thread(outbox.release_claims_of, frid)
                out.append((rid, ref, frid))
            elif state.type in (StateType.RUNNING, StateType.PENDING) and await _shows_no_life(
                client, run, stale_after
            ):
                message = CRASH_MESSAGE.format(seconds=stale_after.total_seconds())
                await client.set_flow_run_state(run.id, Crashed(message=message), force=True)
                log.warning(
                    "reconcile: run %s of report %s was %s with no sign of life for %.0f s; "
                    "marked crashed",
                    frid,
                    rid,
                    state.type.value,
                    stale_after.total_seconds(),
                )
                await asyncio.to_thread(outbox.release_claims_of, frid)
                out.append((rid, ref, frid))
    return out


async def reconcile_once(
    grace: timedelta = timedelta(seconds=30),
    starter: Starter | None = None,
    stale_after: timedelta = STALE_AFTER,
) -> int:
    """One round: start missing runs and restart unfinished ones; returns runs started."""
    if starter is None:
        from orosflow.handover.trigger import start_flow_runs as starter
    missing = await asyncio.to_thread(reports_without_run, grace)
    restart = await runs_needing_restart(await asyncio.to_thread(unfinished_reports), stale_after)
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


async def reconcile_loop(interval: float = 30.0, stale_after: timedelta = STALE_AFTER) -> None:
    """At start (no grace: nothing is being submitted yet) and then every ``interval`` s."""
    try:
        await reconcile_once(grace=timedelta(0), stale_after=stale_after)
    except Exception as exc:  # Prefect not up yet: the next round tries again
        log.warning("reconcile round failed: %s", type(exc).__name__)
    while True:
        await asyncio.sleep(interval)
        try:
            await reconcile_once(stale_after=stale_after)
        except Exception as exc:  # keep serving; the next round tries again
            log.warning("reconcile round failed: %s", type(exc).__name__)


def main(argv: list[str] | None = None) -> int:
    """``python -m orosflow.handover.reconcile [--once] [--interval S] [--stale-after S]``."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m orosflow.handover.reconcile",
        description="Avstämning: startar körningar som saknas och startar om avbrutna.",
    )
    parser.add_argument("--once", action="store_true", help="en runda, sedan avsluta")
    parser.add_argument("--interval", type=float, default=30.0, help="sekunder mellan rundor")
    parser.add_argument(
        "--stale-after",
        type=float,
        default=STALE_AFTER.total_seconds(),
        help="sekunder utan livstecken innan en körning räknas som död",
    )
    args = parser.parse_args(argv)

    from orosflow.core import prefect_env, redaction

    prefect_env.configure()  # before Prefect is imported (by orosflow.handover.trigger)
    redaction.install()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    stale_after = timedelta(seconds=args.stale_after)
    if args.once:
        started = asyncio.run(reconcile_once(grace=timedelta(0), stale_after=stale_after))
        print(f"Avstämning klar: {started} körningar startade.")
        return 0
    try:
        asyncio.run(reconcile_loop(args.interval, stale_after))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
