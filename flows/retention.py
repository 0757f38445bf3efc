"""``retention`` (daily): erase the content of reports older than the retention period, then
destroy the key of every period whose retention plus backup life has passed."""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from orosflow.core import db_thread, lifetime, redaction
from orosflow.handover import retention

redaction.install()
lifetime.follow_serve()  # a run started by `orosflow serve` ends with it


@task(name="erase-expired", cache_policy=NO_CACHE, persist_result=False)
async def erase_expired() -> int:
    return len(await db_thread.run(retention.erase_expired))


@task(name="destroy-period-keys", cache_policy=NO_CACHE, persist_result=False)
async def destroy_period_keys() -> list[str]:
    return await db_thread.run(retention.destroy_expired_periods)


@flow(name="retention", persist_result=False)
async def retention_flow() -> int:
    erased = await erase_expired()
    destroyed = await destroy_period_keys()
    get_run_logger().info(
        "retention: %d report(s) erased, period key(s) destroyed: %s",
        erased,
        ", ".join(destroyed) or "none",
    )
    return erased
