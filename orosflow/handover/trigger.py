"""Start flow runs for stored reports — after the commit, never before.

One flow, ``concern-report``, delivers everything queued for a report: its first
notifications after submission and every mail a later action queues (a re-routed report,
the counselor's notices). Failure here is expected when Prefect is down: the mails are
already in the outbox, and the reconciler starts the run later. The idempotency key makes a
second attempt return the same flow run.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Future, ThreadPoolExecutor

from sqlmodel import col, select

from models.tables import LifecycleMail, Report
from orosflow.core.audit import append_event
from orosflow.core.clock import utcnow
from orosflow.core.db import session_scope
from orosflow.core.settings import get_settings

log = logging.getLogger("orosflow.handover.trigger")


async def start_flow_run(report_id: str, reference: str, attempt: str = "1") -> str | None:
    """Create the report's flow run; return its id, or ``None`` if Prefect could not be reached."""
    from prefect.deployments import run_deployment  # Prefect loads only where runs start

    from orosflow.core import prefect_client

    # The portal starts runs from its event loop: a CA bundle loaded per API client (~45 ms
    # each) blocked every request there during a burst (py-spy: 2.8 s for 20 reports).
    prefect_client.install()
    settings = get_settings()
    try:
        run = await asyncio.wait_for(
            run_deployment(
                name=settings.deployment,
                parameters={"report_id": report_id},
                flow_run_name=reference,
                timeout=0,
                idempotency_key=f"concern-report:{report_id}:{attempt}",
                as_subflow=False,
            ),
            timeout=settings.trigger_timeout,
        )
    except Exception as exc:  # Prefect down, deployment missing, timeout: the reconciler retries
        log.warning("flow run for report %s not created: %s", report_id, type(exc).__name__)
        return None
    flow_run_id = str(run.id)
    await asyncio.to_thread(_record, report_id, flow_run_id)
    return flow_run_id


def _record(report_id: str, flow_run_id: str) -> None:
    with session_scope() as session:
        report = session.get(Report, report_id)
        if report is None or report.flow_run_id == flow_run_id:
            return
        report.flow_run_id, report.flow_triggered_at = flow_run_id, utcnow()
        session.add(report)
        append_event(
            session,
            actor="system:trigger",
            action="flow_run.created",
            report_id=report_id,
            details={"flow_run_id": flow_run_id},
        )


async def start_flow_runs(
    items: list[tuple[str, str]], attempt: dict[str, str] | None = None
) -> dict[str, str | None]:
    """``items`` are ``(report_id, reference)`` pairs; runs are created concurrently.

    ``attempt`` maps a report to its idempotency suffix (default "1"): a restart after a failed
    run uses ``after:<failed run id>``, so two reconcilers restarting it create one run.
    """
    attempt = attempt or {}
    ids = await asyncio.gather(
        *(start_flow_run(rid, ref, attempt.get(rid, "1")) for rid, ref in items)
    )
    return {rid: fid for (rid, _), fid in zip(items, ids, strict=True)}


#: Actions are synchronous (portal handlers run in a thread pool, the CLI is a script): flow
#: runs are created on these threads so the request does not wait for Prefect. At exit the
#: interpreter waits for them, so the CLI's run is created before the process ends.
_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="orosflow-trigger")
_started: list[Future[str | None]] = []


def _newest_pending(report_id: str) -> str | None:
    with session_scope() as session:
        return session.exec(
            select(LifecycleMail.id)
            .where(LifecycleMail.report_id == report_id, col(LifecycleMail.sent_at).is_(None))
            .order_by(col(LifecycleMail.created_at).desc(), col(LifecycleMail.id).desc())
        ).first()


def request_delivery(report_id: str, reference: str) -> Future[str | None] | None:
    """Start the report's delivery run for what an action just queued (call after commit).

    Returns the pending creation (``.result()`` is the flow run id, or None when Prefect
    could not be reached), or None when nothing is queued or flow runs are turned off.
    """
    if not get_settings().flow_runs:
        return None
    newest = _newest_pending(report_id)
    if newest is None:
        return None
    future = _POOL.submit(asyncio.run, start_flow_run(report_id, reference, f"mail:{newest}"))
    _started.append(future)
    return future


def wait_for_requested(timeout: float | None = None) -> list[str | None]:
    """Wait for the delivery runs this process asked for (the CLI, before it prints)."""
    timeout = get_settings().trigger_timeout + 5 if timeout is None else timeout
    out: list[str | None] = []
    while _started:
        future = _started.pop(0)
        try:
            out.append(future.result(timeout))
        except Exception:  # noqa: BLE001 - not created now: the reconciler starts it
            out.append(None)
    return out
