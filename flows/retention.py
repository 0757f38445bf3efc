"""``retention`` (daily): erase the content of reports older than the retention period."""

from __future__ import annotations

import asyncio

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from orosflow.core import lifetime, redaction
from orosflow.handover import retention

redaction.install()
lifetime.follow_serve()  # a run started by `orosflow serve` ends with it


@task(name="erase-expired", cache_policy=NO_CACHE, persist_result=False)
async def erase_expired() -> int:
    return len(await asyncio.to_thread(retention.erase_expired))


@flow(name="retention", persist_result=False)
async def retention_flow() -> int:
    erased = await erase_expired()
    get_run_logger().info("retention: %d report(s) erased", erased)
    return erased
