"""The ``escalate-overdue`` flow, every 5 minutes: run the escalation sweep step by step.

plan (decide and audit every due step, queue its mail) → notify new handovers → fail closed
→ send queued mails. Tasks pass ids only and persist nothing; every step is safe to repeat
(the database, not Prefect, remembers what was done), so overlapping or retried runs send
nothing twice. See ``orosflow.handover.escalation`` for the ladder.
"""

from __future__ import annotations

import asyncio

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from orosflow.core import redaction
from orosflow.handover import escalation

redaction.install()

TASK_OPTS = dict(cache_policy=NO_CACHE, persist_result=False)


class DeliveryIncomplete(Exception):
    """Some handovers or mails could not be sent; they stay queued for the next run (ids only)."""


@task(name="plan-escalations", retries=2, retry_delay_seconds=2, **TASK_OPTS)
async def plan_escalations() -> list[str]:
    return await asyncio.to_thread(escalation.plan_escalations)


@task(name="pending-handovers", retries=2, retry_delay_seconds=2, **TASK_OPTS)
async def pending_handovers() -> list[str]:
    return await asyncio.to_thread(escalation.pending_handovers)


@task(name="notify-handover", retries=2, retry_delay_seconds=[2, 10], **TASK_OPTS)
async def notify_handover(handover_id: str) -> bool:
    return await escalation.notify_handover(handover_id)


@task(name="fail-closed", retries=2, retry_delay_seconds=2, **TASK_OPTS)
async def fail_closed() -> list[str]:
    return await asyncio.to_thread(escalation.fail_closed)


@task(name="pending-mails", retries=2, retry_delay_seconds=2, **TASK_OPTS)
async def pending_mails() -> list[str]:
    return await asyncio.to_thread(escalation.pending_mails)


@task(name="send-mail", retries=2, retry_delay_seconds=[2, 10], **TASK_OPTS)
async def send_mail(mail_id: str) -> bool:
    return await escalation.send_mail(mail_id)


@flow(name="escalate-overdue", persist_result=False, log_prints=False)
async def escalate_overdue() -> dict[str, int]:
    log = get_run_logger()
    steps = await plan_escalations()
    failed: list[str] = []
    notified = sent = 0
    for hid in await pending_handovers():
        try:
            notified += await notify_handover(hid)
        except Exception:  # noqa: BLE001 - the next run retries; others must still go out
            failed.append(hid)
    steps += await fail_closed()
    for mid in await pending_mails():
        try:
            sent += await send_mail(mid)
        except Exception:  # noqa: BLE001
            failed.append(mid)
    log.info(
        "escalation steps=%d handovers notified=%d mails sent=%d failed=%d",
        len(steps),
        notified,
        sent,
        len(failed),
    )
    if failed:
        raise DeliveryIncomplete(f"not delivered, queued for the next run: {', '.join(failed)}")
    return {"steps": len(steps), "notified": notified, "mails_sent": sent}
