"""The runner's poll asks Prefect only for the scheduled runs it can start
(``orosflow.core.runner_poll``), on Prefect's own poller class: this fails if Prefect renames
what the patch relies on."""

from __future__ import annotations

import datetime
from typing import Any
from uuid import UUID, uuid4

import anyio
import pytest
from prefect.runner._limit_manager import LimitManager
from prefect.runner._scheduled_run_poller import ScheduledRunPoller

from orosflow.core import runner_poll


class RecordingClient:
    """Prefect's client as far as the poll uses it: records what each poll asked for."""

    def __init__(self) -> None:
        self.asked: list[dict[str, Any]] = []

    async def get_scheduled_flow_runs_for_deployments(
        self,
        deployment_ids: list[UUID],
        scheduled_before: datetime.datetime | None = None,
        limit: int | None = None,
    ) -> list[Any]:
        self.asked.append({"ids": deployment_ids, "before": scheduled_before, "limit": limit})
        return []


class Registry:
    def __init__(self) -> None:
        self.ids = [uuid4(), uuid4()]

    def get_deployment_ids(self) -> list[UUID]:
        return self.ids


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
    runner_poll.install()
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
    assert [a["limit"] for a in client.asked] == [4, 1, 1]
    assert client.asked[0]["ids"] == p._deployment_registry.get_deployment_ids()
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
    assert [a["limit"] for a in client.asked] == [4]


async def test_a_runner_without_a_limit_asks_for_the_servers_default() -> None:
    client = RecordingClient()
    async with LimitManager(limit=None) as limits:
        await poll_once(poller(client, limits))
    assert [a["limit"] for a in client.asked] == [None]
