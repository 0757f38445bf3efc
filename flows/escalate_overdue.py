"""The ``escalate-overdue`` flow, every 5 minutes: the escalation sweep, and the backstop for
delivery.

The sweep exists once, ``orosflow.handover.escalation.escalate_overdue`` (plan every due
step and queue its mail, then send everything still queued); this flow only runs it. Every
step is safe to repeat (the database, not Prefect, remembers what was done), so overlapping
or retried runs send nothing twice.
"""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from orosflow.core import lifetime, redaction
from orosflow.handover import escalation

redaction.install()
lifetime.follow_serve()  # a run started by `orosflow serve` ends with it

TASK_OPTS = dict(cache_policy=NO_CACHE, persist_result=False)


class DeliveryIncomplete(Exception):
    """Some mails could not be sent; they stay queued for the next run (ids only)."""


@task(name="sweep", retries=1, retry_delay_seconds=10, **TASK_OPTS)
async def sweep() -> escalation.SweepResult:
    return await escalation.escalate_overdue()


@flow(name="escalate-overdue", persist_result=False, log_prints=False)
async def escalate_overdue() -> dict[str, int]:
    log = get_run_logger()
    with redaction.scope():
        result = await sweep()
    log.info(
        "escalation steps=%d mails sent=%d failed=%d",
        len(result.steps),
        result.mails_sent,
        len(result.failed),
    )
    if result.anchor_problems:
        log.error(
            "audit chain does not match its anchors, not anchored: %s",
            ", ".join(result.anchor_problems),
        )
    if result.failed:
        raise DeliveryIncomplete(f"not delivered, still queued: {', '.join(result.failed)}")
    return {"steps": len(result.steps), "mails_sent": result.mails_sent}
