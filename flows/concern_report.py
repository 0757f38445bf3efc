"""The ``concern-report`` flow: one run per report, the report id its only parameter.

load → re-validate → assess urgency → route and create handovers → render → send → record.
Tasks pass ids only and never persist results, so no personal data reaches Prefect; each task
re-reads the database and is safe to retry (sending checks the handover state first and reuses
the handover's Message-ID).
"""

from __future__ import annotations

import asyncio

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from orosflow.core import mail, redaction
from orosflow.handover import delivery as handovers

redaction.install()

TASK_OPTS = dict(cache_policy=NO_CACHE, persist_result=False)


def _run_name() -> str:
    """Run name = the report's reference number (never anything about the child)."""
    report_id = flow_run.parameters.get("report_id", "")
    return handovers.reference_of(report_id)


@task(name="load-and-revalidate", retries=2, retry_delay_seconds=2, **TASK_OPTS)
async def load_and_revalidate(report_id: str) -> str:
    summary = await asyncio.to_thread(handovers.load_and_revalidate, report_id)
    return summary.urgency


@task(name="assess-urgency", **TASK_OPTS)
async def assess_urgency(urgency: str) -> bool:
    """Acute reports need a phone call first; routing adds socialjour and phone steps."""
    return urgency == "acute"


@task(name="route-and-create-handovers", retries=2, retry_delay_seconds=2, **TASK_OPTS)
async def route(report_id: str) -> list[str]:
    return await asyncio.to_thread(handovers.route_and_create_handovers, report_id)


@task(name="render-notification", retries=2, retry_delay_seconds=2, **TASK_OPTS)
async def render_notification(handover_id: str) -> mail.Notification | None:
    return await asyncio.to_thread(handovers.notification_for, handover_id)


@task(name="send-notification", retries=5, retry_delay_seconds=[2, 5, 15, 30, 60], **TASK_OPTS)
async def send_notification(notification: mail.Notification) -> None:
    await mail.send(mail.render(notification))


@task(name="record-notified", retries=3, retry_delay_seconds=2, **TASK_OPTS)
async def record_notified(handover_id: str) -> None:
    await asyncio.to_thread(handovers.mark_notified, handover_id)


class HandoverUnresolved(Exception):
    """A recipient had no channel; the handover is marked failed and audited (ids only)."""


@flow(name="concern-report", flow_run_name=_run_name, persist_result=False, log_prints=False)
async def concern_report(report_id: str) -> None:
    # The run's decrypted values stay registered with the log redactor while it runs.
    with redaction.scope():
        await _concern_report(report_id)


async def _concern_report(report_id: str) -> None:
    log = get_run_logger()
    await asyncio.to_thread(handovers.attach_flow_run, report_id, str(flow_run.get_id()))
    urgency = await load_and_revalidate(report_id)
    acute = await assess_urgency(urgency)
    handover_ids = await route(report_id)
    log.info("report %s routed to %d recipient(s), acute=%s", report_id, len(handover_ids), acute)
    for hid in handover_ids:
        notification = await render_notification(hid)
        if notification is None:
            continue  # already sent, or no channel (recorded as failed below)
        await send_notification(notification)
        await record_notified(hid)
        log.info("handover %s notified", hid)
    failed = await asyncio.to_thread(handovers.failed_handovers, report_id)
    if failed:
        raise HandoverUnresolved(f"handovers without channel: {', '.join(failed)}")
