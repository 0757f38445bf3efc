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
   too; a PENDING run, which has no heartbeat yet, after ``PENDING_AFTER``) — and then
   restarted like case 2. At the start of ``orosflow serve`` every run of the serve before it
   is known dead (its runs end with it: ``orosflow.core.lifetime``) and restarted at once.
A report restarted ``max_restarts`` times without a mail going out is not restarted again: the
operator gets one alert and the queued mail is left to the escalation sweep. A mail that can
never be built (content unreadable, a header that cannot be written) is not retried at all: its
handover fails closed (``outbox.fail_closed``).
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
from orosflow.core import db_thread
from orosflow.core.audit import append_event
from orosflow.core.clock import utcnow
from orosflow.core.db import session_scope
from orosflow.core.settings import get_settings
from orosflow.handover.lifecycle import outbox
from orosflow.handover.lifecycle.lookups import last_progress, restarts_since_last_send

log = logging.getLogger("orosflow.handover.reconcile")
RECONCILER = "system:reconciler"

Starter = Callable[[list[tuple[str, str]], dict[str, str]], Awaitable[dict[str, str | None]]]

#: A RUNNING run with no state change and no event for this long has lost its process: our
#: runs send a heartbeat every 30 s (PREFECT_FLOWS_HEARTBEAT_FREQUENCY, set by prefect_env), so
#: this is four missed heartbeats.
STALE_AFTER = timedelta(minutes=2)
#: A PENDING run sends no heartbeat; its process turns it RUNNING within seconds of starting.
#: One still PENDING this long with no event was claimed by a worker that died before or while
#: starting it.
PENDING_AFTER = timedelta(seconds=75)
CRASH_MESSAGE = (
    "Körningens process finns inte längre; markerad som kraschad av Orosflows avstämning, "
    "som startar om anmälan."
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


def _still_unfinished(report_id: str) -> bool:
    """The report still has mail queued or is not routed yet (as :func:`unfinished_reports`)."""
    with session_scope() as session:
        return (
            session.exec(
                select(Report.id).where(
                    Report.id == report_id,
                    or_(col(Report.id).in_(_queued()), Report.status == ReportStatus.RECEIVED),
                )
            ).first()
            is not None
        )


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


def _orphaned(run: Any, orphaned_before: datetime | None) -> bool:
    """A run of an earlier ``orosflow serve``: its processes ended with that serve."""
    started = run.start_time or run.expected_start_time or run.created
    return orphaned_before is not None and started is not None and started < orphaned_before


async def runs_needing_restart(
    candidates: list[tuple[str, str, str]],
    stale_after: timedelta = STALE_AFTER,
    orphaned_before: datetime | None = None,
) -> list[tuple[str, str, str]]:
    """Keep the candidates whose run is over: in a final state, unknown to the server, or
    RUNNING/PENDING with no process left — one of an earlier serve (``orphaned_before``) or one
    without a sign of life for ``stale_after`` (PENDING: ``PENDING_AFTER``) — then marked
    CRASHED here. A live run is
    left alone, and so is one we could not ask about (next round)."""
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
                # The candidates were listed before the run was read: a run that sent its mail
                # and finished in between is done, not unfinished (restarting it cost a run and
                # a restart against max_restarts, 10 times in 3000 reports under load).
                if not await db_thread.run(_still_unfinished, rid):
                    continue
                await db_thread.run(outbox.release_claims_of, frid)
                out.append((rid, ref, frid))
            elif state.type in (StateType.RUNNING, StateType.PENDING) and (
                _orphaned(run, orphaned_before)
                or await _shows_no_life(
                    client,
                    run,
                    PENDING_AFTER if state.type == StateType.PENDING else stale_after,
                )
            ):
                message = CRASH_MESSAGE
                await client.set_flow_run_state(run.id, Crashed(message=message), force=True)
                log.warning(
                    "reconcile: run %s of report %s was %s without a live process; marked crashed",
                    frid,
                    rid,
                    state.type.value,
                )
                await db_thread.run(outbox.release_claims_of, frid)
                out.append((rid, ref, frid))
    return out


async def reconcile_once(
    grace: timedelta = timedelta(seconds=30),
    starter: Starter | None = None,
    stale_after: timedelta = STALE_AFTER,
    orphaned_before: datetime | None = None,
) -> int:
    """One round: start missing runs and restart unfinished ones; returns runs started."""
    if starter is None:
        from orosflow.handover.trigger import start_flow_runs as starter
    missing = await db_thread.run(reports_without_run, grace)
    over = await runs_needing_restart(
        await db_thread.run(unfinished_reports), stale_after, orphaned_before
    )
    restart, stalled = await db_thread.run(bound_restarts, over)
    for mail_id in stalled:
        await _send_now(mail_id)
    items = missing + [(rid, ref) for rid, ref, _ in restart]
    if not items:
        return 0
    attempts = {rid: f"after:{frid}" for rid, _, frid in restart}
    started = await start_capped(starter, items, attempts, get_settings().reconcile_start_limit)
    await db_thread.run(
        _record_restarts, [(rid, frid, started.get(rid)) for rid, _, frid in restart]
    )
    count = sum(1 for v in started.values() if v)
    log.info(
        "reconcile: %d missing, %d unfinished, %d runs started", len(missing), len(restart), count
    )
    return count


async def start_capped(
    starter: Starter, items: list[tuple[str, str]], attempts: dict[str, str], limit: int
) -> dict[str, str | None]:
    """Create the runs at most ``limit`` at a time, and give up the round after ``limit``
    failures in a row.

    Under load the portal's own creations time out (``trigger_timeout``) and the next round
    finds every one of them missing: started all at once they made the server slower still,
    and all timed out again. A Prefect server that does not answer at all would otherwise hold
    the round for ``len(items) / limit`` timeouts; what is not tried waits for the next round.
    """
    gate = asyncio.Semaphore(limit)
    failed_in_a_row = 0

    async def one(rid: str, ref: str) -> dict[str, str | None]:
        nonlocal failed_in_a_row
        async with gate:
            if failed_in_a_row >= limit:
                return {rid: None}
            got = await starter([(rid, ref)], {rid: attempts[rid]} if rid in attempts else {})
            failed_in_a_row = 0 if got.get(rid) else failed_in_a_row + 1
            return got

    started: dict[str, str | None] = {}
    for got in await asyncio.gather(*(one(rid, ref) for rid, ref in items)):
        started.update(got)
    if failed_in_a_row >= limit:
        log.warning(
            "reconcile: %d run creations failed in a row; the rest wait for the next round",
            failed_in_a_row,
        )
    return started


def bound_restarts(
    candidates: list[tuple[str, str, str]],
) -> tuple[list[tuple[str, str, str]], list[str]]:
    """Split the runs to restart from the reports restarted ``max_restarts`` times since a
    mail last went out. Those are not restarted again: the operator gets one alert (ids only)
    and their mail stays queued for the sweep. Returns (to restart, alert mails queued now)."""
    limit = get_settings().max_restarts
    keep: list[tuple[str, str, str]] = []
    alerts: list[str] = []
    for rid, ref, frid in candidates:
        with session_scope() as s:
            restarts = restarts_since_last_send(s, rid)
            if restarts < limit:
                keep.append((rid, ref, frid))
                continue
            mail_id = f"{rid}.stalled-{last_progress(s, rid) or 0}"
            if outbox.enqueue_mail(s, mail_id, "stalled_operator", rid, None):
                append_event(
                    s,
                    actor=RECONCILER,
                    action="report.restarts_exhausted",
                    report_id=rid,
                    rule="L-RESTARTS-EXHAUSTED",
                    details={"restarts": restarts, "last_flow_run_id": frid},
                )
                log.error(
                    "reconcile: report %s restarted %d times without finishing; not restarted "
                    "again, operator alerted",
                    rid,
                    restarts,
                )
                alerts.append(mail_id)
    return keep, alerts


def _record_restarts(restarts: list[tuple[str, str, str | None]]) -> None:
    """One ``flow_run.restarted`` event per restart that got a run (what the bound counts)."""
    for rid, previous, new in restarts:
        if new is None:
            continue
        with session_scope() as s:
            append_event(
                s,
                actor=RECONCILER,
                action="flow_run.restarted",
                report_id=rid,
                details={"previous": previous, "flow_run_id": new},
            )


async def _send_now(mail_id: str) -> None:
    """The stalled alert goes out from here (no run will); if SMTP is down the sweep sends it."""
    try:
        await outbox.send_mail(mail_id, owner=RECONCILER)
    except Exception as exc:  # noqa: BLE001 - left queued for the sweep
        log.warning("reconcile: alert %s not sent now: %s", mail_id, type(exc).__name__)


async def reconcile_loop(
    interval: float = 30.0,
    stale_after: timedelta = STALE_AFTER,
    orphaned_before: datetime | None = None,
) -> None:
    """At start (no grace: nothing is being submitted yet; runs started before
    ``orphaned_before`` are known dead) and then every ``interval`` s."""
    try:
        await reconcile_once(
            grace=timedelta(0), stale_after=stale_after, orphaned_before=orphaned_before
        )
    except Exception as exc:  # Prefect not up yet: the next round tries again
        log.warning("reconcile round failed: %s", type(exc).__name__)
    while True:
        await asyncio.sleep(interval)
        try:
            await reconcile_once(stale_after=stale_after)
        except Exception as exc:  # keep serving; the next round tries again
            log.warning("reconcile round failed: %s", type(exc).__name__)


#: Libraries whose INFO lines are one per HTTP request (every Prefect API call): without this
#: they were 601 of the reconciler's 621 log lines.
QUIET_LOGGERS = ("httpx", "httpcore")


def configure_logging() -> None:
    """INFO for Orosflow's own lines, WARNING for the HTTP clients under Prefect's client."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


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
    configure_logging()
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
