"""The runner asks Prefect only for as many scheduled runs as it can start.

Prefect's runner (3.9) polls every ``PREFECT_RUNNER_POLL_FREQUENCY`` (1 s here) for *all* the
scheduled runs of its deployments — up to the server's page limit of 200 — and then starts as
many as its limit has free slots, skipping the rest. With a backlog (a burst, sustained load)
that is 200 flow runs built, serialised and parsed every second only to be dropped. Measured
with 300 runs waiting: 138-143 ms of the server's CPU and ~40 ms of the runner's per poll,
against 18-25 ms and 4 ms when the poll asks for 4 (on a 2-core machine whose CPU is the bound
under sustained load).

``install()`` makes the poll pass ``limit`` = the free slots plus the runs still being handed
over (those are still SCHEDULED on the server, and the runner skips them). The server sorts by
next scheduled start, so the runs asked for are the very ones the runner would have picked. A
full runner still asks for one run, so that the server keeps marking its deployments ready
(the poll is what makes a deployment READY in Prefect's UI).

Scheduled sweeps go first. The runner starts runs in the order they were due, so a run of
``escalate-overdue`` — the backstop that mails whatever is still queued — waited behind every
report run created before it: under ``make bench-sustained`` it came ~9 minutes late, or not
within the run at all. ``install(ahead=...)`` names the deployments (prefect.yaml's scheduled
ones: one run per period, they cannot starve the reports) whose runs take a free slot first.

A narrow patch of one method: ``tests/test_runner_poll.py`` fails if Prefect renames what it
relies on; re-check it on every Prefect upgrade.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any
from uuid import UUID

_AHEAD: frozenset[str] = frozenset()


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
    registry = self._deployment_registry
    ids = registry.get_deployment_ids()
    ahead = [i for i in ids if registry.get_deployment_name(i) in _AHEAD]
    rest = [i for i in ids if i not in ahead]
    limit = wanted(self)

    async def scheduled(deployment_ids: list[UUID], limit: int | None) -> list[Any]:
        return await self._client.get_scheduled_flow_runs_for_deployments(
            deployment_ids=deployment_ids, scheduled_before=scheduled_before, limit=limit
        )

    runs = await scheduled(ahead, limit) if ahead else []
    if rest and (limit is None or len(runs) < limit):
        # Only the slots the sweeps left: the runner sorts what it gets by when each was due
        # and would otherwise give the slot to an older report run.
        runs += await scheduled(rest, None if limit is None else limit - len(runs))
    return runs


def install(ahead: Iterable[str] = ()) -> None:
    """Patch Prefect's scheduled-run poller in this process (idempotent); ``ahead``: the names
    of the deployments whose runs take a free slot before any other's."""
    global _AHEAD
    _AHEAD = frozenset(ahead)
    from prefect.runner._scheduled_run_poller import ScheduledRunPoller

    ScheduledRunPoller._get_scheduled_flow_runs = _get_scheduled_flow_runs  # type: ignore[method-assign]  # noqa: SLF001


def installed() -> bool:
    from prefect.runner._scheduled_run_poller import ScheduledRunPoller

    return ScheduledRunPoller._get_scheduled_flow_runs is _get_scheduled_flow_runs  # noqa: SLF001
