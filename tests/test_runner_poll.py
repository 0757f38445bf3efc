"""The runner's poll asks Prefect only for the scheduled runs it can start, the scheduled sweeps
first (``orosflow.core.runner_poll``), on Prefect's own poller class: this fails if Prefect
renames what the patch relies on."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

import anyio
import pytest
from prefect.runner._limit_manager import LimitManager
from prefect.runner._scheduled_run_poller import ScheduledRunPoller

from orosflow.core import runner_poll


@dataclass
class Run:
    """A scheduled flow run as the poller sorts it."""

    deployment_id: UUID
    next_scheduled_start_time: datetime.datetime
    id: UUID = field(default_factory=uuid4)


class RecordingClient:
    """Prefect's server as far as the poll uses it: the scheduled runs of the deployments asked
    for, earliest first, at most ``limit``; records what each poll asked for."""

    def __init__(self, runs: list[Run] | None = None) -> None:
        self.runs = runs or []
        self.asked: list[dict[str, Any]] = []

    async def get_scheduled_flow_runs_for_deployments(
        self,
        deployment_ids: list[UUID],
        scheduled_before: datetime.datetime | None = None,
        limit: int | None = None,
    ) -> list[Any]:
        self.asked.append({"ids": deployment_ids, "before": scheduled_before, "limit": limit})
        mine = sorted(
            (r for r in self.runs if r.deployment_id in deployment_ids),
            key=lambda r: r.next_scheduled_start_time,
        )
        return mine[: limit or 200]


class Registry:
    def __init__(self) -> None:
        self.names = {uuid4(): "concern-report", uuid4(): "escalate-overdue"}
        self.ids = list(self.names)

    def get_deployment_ids(self) -> set[UUID]:
        return set(self.ids)

    def get_deployment_name(self, deployment_id: UUID) -> str | None:
        return self.names.get(deployment_id)

    def named(self, name: str) -> UUID:
        return next(i for i, n in self.names.items() if n == name)


def poller(client: RecordingClient, limits: LimitManager) -> ScheduledRunPoller:
    def unused(*_: Any, **__: Any) -> Any:
        raise AssertionError("no run is started in these tests")

    return ScheduledRunPoller(
        query_seconds=1,
        prefetch_seconds=10,
        client=client,  # type: ignore[arg-type]
        limit_manager=limits,
        deployment_registry=Registry(),  # type: ignore[arg-type]
        resolve_starter=unused,
        runs_task_group=None,  # type: ignore[arg-type]
        storage_objs=[],
        process_manager=None,  # type: ignore[arg-type]
        state_proposer=None,  # type: ignore[arg-type]
        hook_runner=None,  # type: ignore[arg-type]
        cancellation_manager=None,  # type: ignore[arg-type]
        get_attempt_conclusion=unused,
    )


@pytest.fixture(autouse=True)
def patched() -> None:
    runner_poll.install(ahead=["escalate-overdue"])
    assert runner_poll.installed()


async def poll_once(p: ScheduledRunPoller) -> None:
    async with anyio.create_task_group() as tg:
        await p._get_and_submit_flow_runs(task_group=tg)


async def test_a_poll_asks_for_the_free_slots_only() -> None:
    client = RecordingClient()
    async with LimitManager(limit=4) as limits:
        p = poller(client, limits)
        await poll_once(p)
        held = [limits.acquire() for _ in range(3)]
        await poll_once(p)
        held.append(limits.acquire())
        await poll_once(p)  # full: one run, so the server still marks the deployments ready
        for token in held:
            limits.release(token)
    # each poll: the sweep's deployment, then the report runs' with what is left
    assert [a["limit"] for a in client.asked] == [4, 4, 1, 1, 1, 1]
    ahead = client.asked[0]["before"] - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(seconds=5) < ahead <= datetime.timedelta(seconds=10)


async def test_runs_still_being_handed_over_are_asked_for_again() -> None:
    """They are SCHEDULED on the server until their Pending state lands, and the poller skips
    them; without counting them, a poll could come back with only those and start nothing."""
    client = RecordingClient()
    async with LimitManager(limit=4) as limits:
        p = poller(client, limits)
        held = [limits.acquire() for _ in range(2)]
        p._submitting_flow_run_ids.update({uuid4(), uuid4()})
        await poll_once(p)
        for token in held:
            limits.release(token)
    assert [a["limit"] for a in client.asked] == [4, 4]


async def test_a_runner_without_a_limit_asks_for_the_servers_default() -> None:
    client = RecordingClient()
    async with LimitManager(limit=None) as limits:
        await poll_once(poller(client, limits))
    assert [a["limit"] for a in client.asked] == [None, None]


async def test_a_due_sweep_takes_the_free_slot_before_an_older_backlog_of_reports() -> None:
    """The escalation sweep mails whatever is still queued: behind a backlog of report runs it
    came ~9 minutes late under sustained load (docs/benchmarks.md)."""
    registry = Registry()
    reports, sweeps = registry.named("concern-report"), registry.named("escalate-overdue")
    start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=10)
    backlog = [Run(reports, start + datetime.timedelta(seconds=i)) for i in range(300)]
    sweep = Run(sweeps, start + datetime.timedelta(minutes=5))
    client = RecordingClient([*backlog, sweep])
    async with LimitManager(limit=4) as limits:
        p = poller(client, limits)
        p._deployment_registry = registry
        held = [limits.acquire() for _ in range(3)]
        got = await p._get_scheduled_flow_runs()
        assert [r.id for r in got] == [sweep.id]  # the one free slot is the sweep's
        limits.release(held.pop())
        got = await p._get_scheduled_flow_runs()
        for token in held:
            limits.release(token)
    # two free slots: the sweep and the oldest report run, nothing more fetched
    assert [r.id for r in got] == [sweep.id, backlog[0].id]


async def test_without_a_sweep_due_the_oldest_report_runs_get_the_slots() -> None:
    registry = Registry()
    reports = registry.named("concern-report")
    start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1)
    backlog = [Run(reports, start + datetime.timedelta(seconds=i)) for i in range(50)]
    client = RecordingClient(list(reversed(backlog)))
    async with LimitManager(limit=4) as limits:
        p = poller(client, limits)
        p._deployment_registry = registry
        got = await p._get_scheduled_flow_runs()
    assert [r.id for r in got] == [r.id for r in backlog[:4]]
