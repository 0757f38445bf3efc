"""The runner asks Prefect only for as many scheduled runs as it can start.

Prefect's runner (3.9) polls every ``PREFECT_RUNNER_POLL_FREQUENCY`` (1 s here) for *all* the
scheduled runs of its deployments — up to the server's page limit of 200 — and then starts as
many as its limit has free slots, skipping the rest. With a backlog (a burst, sustained load)
that is 200 flow runs built, serialised and parsed every second only to be dropped: measured
under ``make bench-sustained`` at 5/s, the Prefect server burnt 0.57 CPU-s/s, against ~0.22 for
the runs it started, on a 2-core machine whose CPU was the bound.

``install()`` makes the poll pass ``limit`` = the free slots plus the runs still being handed
over (those are still SCHEDULED on the server, and the runner skips them). The server sorts by
next scheduled start, so the runs asked for are the very ones the runner would have picked. A
full runner still asks for one run, so that the server keeps marking its deployments ready
(the poll is what makes a deployment READY in Prefect's UI).

A narrow patch of one method: ``tests/test_runner_poll.py`` fails if Prefect renames what it
relies on; re-check it on every Prefect upgrade.
"""

from __future__ import annotations

import datetime
from typing import Any

_ORIGINAL: Any = None


def wanted(poller: Any) -> int | None:
    """How many scheduled runs this poll should ask for; ``None`` when the runner has no limit."""
    limiter = getattr(poller._limit_manager, "_limiter", None)  # noqa: SLF001
    if limiter is None:
        return None
    in_hand_over = len(poller._submitting_flow_run_ids)  # noqa: SLF001
    return max(1, int(limiter.available_tokens) + in_hand_over)


async def _get_scheduled_flow_runs(self: Any) -> list[Any]:
    from prefect.types._datetime import now

    scheduled_before = now("UTC") + datetime.timedelta(seconds=int(self._prefetch_seconds))
    return await self._client.get_scheduled_flow_runs_for_deployments(
        deployment_ids=list(self._deployment_registry.get_deployment_ids()),
        scheduled_before=scheduled_before,
        limit=wanted(self),
    )


def install() -> None:
    """Patch Prefect's scheduled-run poller in this process (idempotent)."""
    global _ORIGINAL
    from prefect.runner._scheduled_run_poller import ScheduledRunPoller

    if _ORIGINAL is None:
        _ORIGINAL = ScheduledRunPoller._get_scheduled_flow_runs  # noqa: SLF001
        ScheduledRunPoller._get_scheduled_flow_runs = _get_scheduled_flow_runs  # type: ignore[method-assign]  # noqa: SLF001


def installed() -> bool:
    from prefect.runner._scheduled_run_poller import ScheduledRunPoller

    return ScheduledRunPoller._get_scheduled_flow_runs is _get_scheduled_flow_runs  # noqa: SLF001
