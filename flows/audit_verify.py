"""``audit-verify`` (daily): verify the audit chain and earlier anchors, write today's anchor
outside the database and mail it to the auditors. A broken chain fails the run loudly."""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from orosflow.core import anchors, db_thread, lifetime, mail, redaction

redaction.install()
lifetime.follow_serve()  # a run started by `orosflow serve` ends with it


class AuditChainBroken(Exception):
    pass


@task(name="verify-and-anchor", cache_policy=NO_CACHE, persist_result=False)
async def verify_and_anchor() -> anchors.AnchorCheck:
    check, _ = await db_thread.run(anchors.verify_and_anchor)
    return check


@task(
    name="mail-auditors",
    retries=3,
    retry_delay_seconds=30,
    cache_policy=NO_CACHE,
    persist_result=False,
)
async def mail_auditors(check: anchors.AnchorCheck) -> None:
    msg = anchors.anchor_message(check)
    if msg is not None:
        await mail.send(msg)


@flow(name="audit-verify", persist_result=False)
async def audit_verify() -> None:
    log = get_run_logger()
    warning = anchors.no_auditors_warning()
    if warning:
        log.warning(warning)
    check = await verify_and_anchor()
    await mail_auditors(check)
    log.info(
        "audit chain: %d events, head %s, anchors checked %d",
        check.chain.events,
        check.chain.head,
        check.anchors_checked,
    )
    if not check.ok:
        raise AuditChainBroken(
            f"chain broken at event {check.chain.first_broken_seq} ({check.chain.reason}); "
            f"anchor mismatch: {check.anchor_mismatch}"
        )
