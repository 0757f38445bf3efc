"""The ``concern-report`` flow: one run per report and delivery, the report id its only
parameter.

load → re-validate (a plain step with retries) → send every queued mail (one ``send-mail``
task each) → record. The route was decided and stored at submission (the receipt shows it); a
later action on the report (a decline, feedback) queues its mails and starts another run of
this flow, so the same path delivers everything. Steps pass ids only and never persist
results, so no personal data reaches Prefect; each step re-reads the database and is safe to
retry (a mail is claimed before it is sent and keeps its Message-ID).
"""

from __future__ import annotations

import asyncio

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from orosflow.core import db_thread, lifetime, prefect_client, redaction
from orosflow.handover import delivery
from orosflow.handover.lifecycle import outbox

redaction.install()
prefect_client.install()  # no CA bundle loaded per API client for a plain-http API
lifetime.follow_serve()  # a run started by `orosflow serve` ends with it

TASK_OPTS = dict(cache_policy=NO_CACHE, persist_result=False)


def _run_name() -> str:
    """Run name = the report's reference number (never anything about the child)."""
    report_id = flow_run.parameters.get("report_id", "")
    return delivery.reference_of(report_id)


class DeliveryIncomplete(Exception):
    """Some mails could not be sent; they stay queued for a restart or the sweep (ids only)."""


#: load-and-revalidate's retries and their delay: what its task had (retries=2, 2 s).
REVALIDATE_RETRIES = 2
REVALIDATE_RETRY_DELAY_S = 2.0


async def load_and_revalidate(report_id: str, flow_run_id: str) -> str:
    """A plain step with its own retries, not a Prefect task: its task run cost the run engine
    work and the server event writes, and showed auditors nothing the audit chain lacks (the
    content read, a late routing and a failed check are audit events of their own). Any error
    is retried, as the task did; the last one fails the run, as the task's did."""
    for attempt in range(1, REVALIDATE_RETRIES + 2):
        try:
            return await db_thread.run(delivery.load_and_revalidate, report_id, flow_run_id)
        except Exception as exc:
            if attempt > REVALIDATE_RETRIES:
                raise
            get_run_logger().warning(
                "load-and-revalidate failed (%s): retry %d of %d in %.0f s",
                type(exc).__name__,
                attempt,
                REVALIDATE_RETRIES,
                REVALIDATE_RETRY_DELAY_S,
            )
            await asyncio.sleep(REVALIDATE_RETRY_DELAY_S)
    raise AssertionError("unreachable")


@task(name="send-mail", retries=5, retry_delay_seconds=[2, 5, 15, 30, 60], **TASK_OPTS)
async def send_mail(mail_id: str) -> str:
    """ "sent", "done" (nothing left to send) or "busy" (another sender holds it: not retried
    here, the run ends unfinished and the reconciler restarts it)."""
    try:
        sent = await outbox.send_mail(mail_id, owner=str(flow_run.get_id()))
    except outbox.ClaimedElsewhere:
        return "busy"
    return "sent" if sent else "done"


@flow(
    name="concern-report",
    flow_run_name=_run_name,
    persist_result=False,
    # Named so that a run does not ask the server for its default storage (two requests);
    # nothing is written there: persist_result stays False, here and on every task.
    result_storage=prefect_client.local_result_storage(),
    # Prefect builds a pydantic model of the signature on every call to check one string;
    # a wrong id fails the first step (no such report) all the same.
    validate_parameters=False,
    log_prints=False,
)
async def concern_report(report_id: str) -> None:
    # The run's decrypted values stay registered with the log redactor while it runs.
    with redaction.scope():
        await _concern_report(report_id)


async def _concern_report(report_id: str) -> None:
    log = get_run_logger()
    # Attaching this run to the report shares the first write with the revalidation.
    urgency = await load_and_revalidate(report_id, str(flow_run.get_id()))
    failed: list[str] = []
    tried: set[str] = set()
    sent = 0
    # A second round sends what the first queued (the alerts of a handover that failed closed).
    # Listing the queue is a plain read, not a task: its task runs told auditors nothing and
    # each cost the embedded SQLite server writes (events, task-run records) during a burst.
    while todo := [
        m for m in await db_thread.run(outbox.pending_mails, report_id) if m not in tried
    ]:
        for mid in todo:
            tried.add(mid)
            try:
                outcome = await send_mail(mid)
            except Exception:  # noqa: BLE001 - the others must still go out; this one stays
                outcome = "failed"
            sent += outcome == "sent"
            if outcome in ("failed", "busy"):
                failed.append(mid)
    log.info(
        "report %s: %d mail(s) sent, %d failed, acute=%s",
        report_id,
        sent,
        len(failed),
        urgency == "acute",
    )
    if failed:
        raise DeliveryIncomplete(f"not delivered, still queued: {', '.join(failed)}")
