"""Start flow runs for stored reports — after the commit, never before.

Failure here is expected when Prefect is down: the report is already safe, and the reconciler
starts its run later. The idempotency key makes a second attempt return the same flow run.
"""

from __future__ import annotations

import asyncio
import logging

from prefect.deployments import run_deployment

from models.tables import Report
from orosflow.core.audit import append_event
from orosflow.core.clock import utcnow
from orosflow.core.db import session_scope
from orosflow.core.settings import get_settings

log = logging.getLogger("orosflow.handover.trigger")


async def start_flow_run(report_id: str, reference: str, attempt: str = "1") -> str | None:
    """Create the report's flow run; return its id, or ``None`` if Prefect could not be reached."""
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
