"""How the portal, the CLI and the reconciler create flow runs (orosflow.handover.trigger).

One thread per process creates them, with one API client per Prefect API and the deployment's
id read once: one request per run instead of a new client and two requests. A fake client
plays the server here; tests/test_runner_cli.py and tests/test_worker_recovery.py create runs
on a real one.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_URL, temporary_settings

from orosflow.handover import trigger


class FakeClient:
    """A Prefect API whose deployment can be re-created (a new id) between two runs."""

    made: list[FakeClient] = []

    def __init__(self) -> None:
        self.api = PREFECT_API_URL.value()
        self.deployment_id = uuid.uuid4()
        self.reads = self.creates = 0
        self.threads: set[str] = set()
        FakeClient.made.append(self)

    async def __aenter__(self) -> FakeClient:
        return self

    async def read_deployment_by_name(self, name: str) -> Any:
        self.reads += 1
        return SimpleNamespace(id=self.deployment_id)

    async def create_flow_run_from_deployment(self, deployment_id: uuid.UUID, **kw: Any) -> Any:
        self.creates += 1
        self.threads.add(threading.current_thread().name)
        if deployment_id != self.deployment_id:
            raise ObjectNotFound(http_exc=httpx.HTTPError("404"))
        return SimpleNamespace(id=uuid.uuid4(), name=kw["name"])


@pytest.fixture
def starter(monkeypatch: pytest.MonkeyPatch) -> trigger._Starter:
    FakeClient.made.clear()
    monkeypatch.setattr("prefect.client.orchestration.get_client", FakeClient)
    fresh = trigger._Starter()
    monkeypatch.setattr(trigger, "_STARTER", fresh)
    return fresh


def _create(name: str) -> Any:
    return trigger._STARTER.call(
        deployment="concern-report/concern-report",
        parameters={"report_id": name},
        name=name,
        idempotency_key=f"k:{name}",
    )


async def test_runs_are_created_on_one_thread_with_one_client_and_one_lookup(
    starter: trigger._Starter,
) -> None:
    runs = await asyncio.gather(*(_create(f"OA-2026-{i:06d}") for i in range(5)))
    assert [r.name for r in runs] == [f"OA-2026-{i:06d}" for i in range(5)]
    (client,) = FakeClient.made
    assert client.reads == 1 and client.creates == 5
    assert client.threads == {"orosflow-flow-runs"}


async def test_a_recreated_deployment_is_looked_up_again(starter: trigger._Starter) -> None:
    await _create("OA-2026-000001")
    (client,) = FakeClient.made
    client.deployment_id = uuid.uuid4()  # deleted and served again: a new id
    run = await _create("OA-2026-000002")
    assert run.name == "OA-2026-000002"
    assert client.reads == 2


async def test_each_prefect_api_the_caller_names_gets_its_own_client(
    starter: trigger._Starter,
) -> None:
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:1/api"}):
        await _create("OA-2026-000001")
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:2/api"}):
        await _create("OA-2026-000002")
    assert [c.api for c in FakeClient.made] == ["http://127.0.0.1:1/api", "http://127.0.0.1:2/api"]


async def test_a_creation_that_does_not_answer_is_given_up_and_cancelled(
    starter: trigger._Starter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """start_flow_run waits ``trigger_timeout`` s, then the creation stops on its thread too."""
    cancelled = threading.Event()

    async def hangs(**_: Any) -> Any:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    monkeypatch.setattr(trigger, "create_in_prefect", hangs)
    monkeypatch.setenv("OROSFLOW_TRIGGER_TIMEOUT", "0.2")
    from orosflow.core.settings import reset_settings

    reset_settings()
    try:
        assert await trigger.start_flow_run(str(uuid.uuid4()), "OA-2026-000001") is None
    finally:
        monkeypatch.delenv("OROSFLOW_TRIGGER_TIMEOUT")
        reset_settings()
    assert await asyncio.to_thread(cancelled.wait, 5)


async def test_runs_created_together_are_all_recorded_on_their_reports(
    sqlite_db: str, office_hours: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records that queue up while one is written go in together; none is lost."""
    from sqlmodel import select

    from models.tables import AuditEvent, Report
    from orosflow.core.db import session_scope
    from orosflow.handover.submission import submit

    from factories import form

    async def created(**_: Any) -> Any:
        await asyncio.sleep(0.01)
        return SimpleNamespace(id=uuid.uuid4())

    monkeypatch.setattr(trigger, "create_in_prefect", created)
    items = [
        (r.report_id, r.reference)
        for r in (submit(form(), actor="t").reports[0] for _ in range(12))
    ]
    started = await trigger.start_flow_runs(items)
    with session_scope() as s:
        for rid, _ in items:
            assert s.get(Report, rid).flow_run_id == started[rid]
        events = s.exec(select(AuditEvent).where(AuditEvent.action == "flow_run.created")).all()
    assert sorted(e.report_id for e in events) == sorted(rid for rid, _ in items)


def test_only_a_waiting_caller_keeps_the_delivery_runs_it_requested(
    monkeypatch: pytest.MonkeyPatch, flow_runs: None
) -> None:
    # The portal's actions start runs and never wait: nothing may keep them (a portal running
    # for months would hold every one). The CLI waits for its own, and only for those.
    async def start(report_id: str, reference: str, attempt: str) -> str:
        return f"run-of-{report_id}"

    monkeypatch.setattr(trigger, "start_flow_run", start)
    monkeypatch.setattr(trigger, "_newest_pending", lambda report_id: f"{report_id}.mail")
    portal_action = trigger.request_delivery("r-portal", "OA-2026-000001")
    assert portal_action is not None and portal_action.result(5) == "run-of-r-portal"
    with trigger.requested_runs() as started:
        trigger.request_delivery("r-cli", "OA-2026-000002")
    assert trigger.wait_for_requested(started) == ["run-of-r-cli"]
    assert trigger.wait_for_requested([]) == []
