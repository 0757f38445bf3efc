"""The ``escalate-overdue`` flow, every 5 minutes: the escalation sweep, and the backstop for
delivery.

plan (decide and audit every due step, queue its mail) → send everything still queued. The
sweep itself is ``orosflow.handover.escalation``; this flow only runs it. Every step is safe
to repeat (the database, not Prefect, remembers what was done), so overlapping or retried
runs send nothing twice.
"""

from __future__ import annotations

import asyncio

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from orosflow.core import redaction
from orosflow.handover import escalation
from orosflow.handover.lifecycle import outbox

redaction.install()

TASK_OPTS = dict(cache_policy=NO_CACHE, persist_result=False)


class DeliveryIncomplete(Exception):
    """Some mails could not be sent; they stay queued for the next run (ids only)."""


@task(name="plan-escalations", retries=2, retry_delay_seconds=2, **TASK_OPTS)
async def plan_escalations() -> list[str]:
    return await asyncio.to_thread(escalation.plan_escalations)


@task(name="deliver-queued", retries=1, retry_delay_seconds=10, **TASK_OPTS)
async def deliver_queued() -> outbox.DeliveryResult:
    return await outbox.deliver()


@flow(name="escalate-overdue", persist_result=False, log_prints=False)
async def escalate_overdue() -> dict[str, int]:
    log = get_run_logger()
    with redaction.scope():
        steps = await plan_escalations()
        delivered = await deliver_queued()
    log.info(
        "escalation steps=%d mails sent=%d failed=%d",
        len(steps),
        delivered.sent,
        len(delivered.failed),
    )
    if delivered.failed:
        raise DeliveryIncomplete(f"not delivered, still queued: {', '.join(delivered.failed)}")
    return {"steps": len(steps), "mails_sent": delivered.sent}
