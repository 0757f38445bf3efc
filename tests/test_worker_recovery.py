"""Fault test with a real Prefect server and real process workers: the machine running a flow
run dies (its worker and the run's process are SIGKILLed) while the run is sending the
notification. The server still says RUNNING and nothing would ever move that run on. One
reconcile pass marks it crashed and restarts it, a second worker runs the restart, and the
report is notified exactly once.

The first worker's SMTP server is a black hole (accepts the connection, never greets), so the
run is reliably caught mid-send without any test hook in the flow.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

from sqlmodel import select

from models.tables import Handover, HandoverStatus, Report
from orosflow.core.db import session_scope
from orosflow.core.settings import reset_settings
from orosflow.handover.reconcile import reconcile_once
from orosflow.handover.submission import submit
from orosflow.handover.trigger import start_flow_run

from factories import form

ROOT = Path(__file__).resolve().parents[1]
STALE = timedelta(seconds=10)  # production: 2 minutes (reconcile.STALE_AFTER)


class BlackHoleSmtp:
    """Accepts TCP connections and never answers: an SMTP client waits for the greeting."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.connections:
            conn.close()


def start_worker(pool: str, name: str, log: Path, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--name", name],
        env={
            **os.environ,
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30",
            **env,
        },
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=ROOT,
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


async def wait_for(what: str, check, seconds: float, logs: list[Path]):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(1)
    tails = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2500:]}" for p in logs)
    raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}\n{tails}")


async def deploy_to_new_pool(monkeypatch) -> str:  # noqa: ANN001
    """A process work pool of its own, and the concern-report deployment applied to it from
    prefect.yaml by `prefect deploy`, as docs/deploy.md does it."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.workers.process import ProcessWorker

    pool = f"orosflow-killtest-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("OROSFLOW_HOME", str(ROOT))
    reset_settings()
    async with get_client() as client:
        await client.create_work_pool(
            WorkPoolCreate(
                name=pool,
                type="process",
                base_job_template=ProcessWorker.get_default_base_job_template(),
            )
        )
    deployed = subprocess.run(  # noqa: ASYNC221 - the CLI as an operator runs it
        [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--name", "concern-report"]
        + ["--pool", pool],
        cwd=ROOT,
        env={**os.environ, "OROSFLOW_HOME": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
    return pool


async def remove_pool(pool: str) -> None:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        try:
            dep = await client.read_deployment_by_name("concern-report/concern-report")
            await client.delete_deployment(dep.id)
        except Exception:  # noqa: BLE001
            pass
        try:
            await client.delete_work_pool(pool)
        except Exception:  # noqa: BLE001
            pass


async def test_killed_worker_run_is_restarted_and_notifies_once(
    sqlite_db: str, smtp, prefect_server: Path, tmp_path: Path, monkeypatch
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType

    t0 = time.monotonic()
    pool = await deploy_to_new_pool(monkeypatch)
    black_hole = BlackHoleSmtp()
    logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
    first = start_worker(
        pool,
        "doomed",
        logs[0],
        OROSFLOW_SMTP_PORT=str(black_hole.port),
        OROSFLOW_SMTP_TIMEOUT="600",
    )
    second = None
    try:
        receipt = submit(form(), actor="test:counselor")
        rid, ref = receipt.reports[0].report_id, receipt.reports[0].reference
        run_id = await start_flow_run(rid, ref)
        assert run_id

        async def running_and_sending():  # noqa: ANN202
            async with get_client() as client:
                run = await client.read_flow_run(uuid.UUID(run_id))
            if run.state_type == StateType.RUNNING and black_hole.connections:
                return run
            return None

        run = await wait_for("the run to hang in its send", running_and_sending, 180, logs)
        print(f"run RUNNING and sending after {time.monotonic() - t0:.1f} s", flush=True)

        # The machine dies: the worker's process group and the run's own process (a session
        # of its own, started by that worker).
        flow_pid = int(str(run.infrastructure_pid).rsplit(":", 1)[-1])
        assert parent_of(flow_pid) == first.pid
        os.killpg(first.pid, signal.SIGKILL)
        os.killpg(flow_pid, signal.SIGKILL)
        first.wait(30)
        black_hole.close()

        # A new worker comes up; the server still believes the old run is running.
        second = start_worker(pool, "survivor", logs[1])
        async with get_client() as client:
            assert (await client.read_flow_run(uuid.UUID(run_id))).state_type == StateType.RUNNING

        async def reconciled():  # noqa: ANN202
            return await reconcile_once(grace=timedelta(0), stale_after=STALE)

        assert await wait_for("reconcile to restart the run", reconciled, 120, logs) == 1
        print(f"restarted after {time.monotonic() - t0:.1f} s", flush=True)
        async with get_client() as client:
            dead = await client.read_flow_run(uuid.UUID(run_id))
        assert dead.state_type == StateType.CRASHED

        async def notified():  # noqa: ANN202
            return len(smtp.messages()) >= 1

        await wait_for("the notification", notified, 180, logs)
        print(f"notified after {time.monotonic() - t0:.1f} s", flush=True)

        async def settled():  # noqa: ANN202
            with session_scope() as s:
                report = s.exec(select(Report).where(Report.id == rid)).one()
                handovers = s.exec(select(Handover).where(Handover.report_id == rid)).all()
            done = handovers and all(h.status != HandoverStatus.CREATED for h in handovers)
            return (report, handovers) if done and report.flow_run_id != run_id else None

        report, handovers = await wait_for("the handover to be recorded", settled, 60, logs)
        assert [h.status for h in handovers] == [HandoverStatus.NOTIFIED]
        await asyncio.sleep(5)  # a second mail would arrive now
        messages = smtp.messages()
        assert len(messages) == 1
        assert messages[0]["X-Orosflow-Reference"] == ref
        async with get_client() as client:
            restarted = await client.read_flow_run(uuid.UUID(report.flow_run_id))
        assert restarted.idempotency_key == f"concern-report:{rid}:after:{run_id}"
        # Nothing is left to reconcile, and a second pass starts nothing.
        assert await reconcile_once(grace=timedelta(0), stale_after=STALE) == 0
    finally:
        stop(first)
        if second is not None:
            stop(second)
        black_hole.close()
        await remove_pool(pool)
        print(f"wall time {time.monotonic() - t0:.1f} s", flush=True)


async def test_runs_outlive_a_killed_worker_and_every_report_gets_one_mail_in_2_minutes(
    sqlite_db: str, smtp, prefect_server: Path, tmp_path: Path, monkeypatch
) -> None:
    """docs/deploy.md's worker-kill step (issue 16): ``kill -9`` of a worker with runs in flight.
    The runs do not write to the dead worker's pipe (``stream_output: false`` in prefect.yaml),
    so they finish on their own; the rest are taken by the second worker."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType

    t0 = time.monotonic()
    pool = await deploy_to_new_pool(monkeypatch)
    store = smtp.controller.handler
    accept = store.handle_DATA

    async def slow_relay(server, session, envelope):  # noqa: ANN001, ANN202
        await asyncio.sleep(4)  # a slow relay keeps the runs in flight at the kill
        return await accept(server, session, envelope)

    store.handle_DATA = slow_relay
    logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
    first = start_worker(pool, "killed", logs[0])
    second = None
    try:
        refs: dict[str, str] = {}
        runs: dict[str, str] = {}
        for _ in range(4):
            receipt = submit(form(), actor="test:counselor")
            rid, ref = receipt.reports[0].report_id, receipt.reports[0].reference
            refs[rid] = ref
            runs[rid] = await start_flow_run(rid, ref) or ""

        async def two_running():  # noqa: ANN202
            async with get_client() as client:
                states = [
                    (await client.read_flow_run(uuid.UUID(r))).state_type for r in runs.values()
                ]
            return states.count(StateType.RUNNING) >= 2 and states

        await wait_for("two runs in flight", two_running, 180, logs)
        os.kill(first.pid, signal.SIGKILL)  # the worker only, as `kill -9 <pid>`
        first.wait(30)
        killed_at = time.monotonic()
        print(f"worker killed after {killed_at - t0:.1f} s", flush=True)
        second = start_worker(pool, "survivor", logs[1])

        async def all_mailed():  # noqa: ANN202
            await reconcile_once(grace=timedelta(0))  # the reconciler of docs/deploy.md step 9
            got = sorted(str(m["X-Orosflow-Reference"]) for m in smtp.messages())
            return got if set(got) >= set(refs.values()) else None

        await wait_for("a mail for every report", all_mailed, 120, logs)
        elapsed = time.monotonic() - killed_at
        print(f"every report mailed {elapsed:.1f} s after the kill", flush=True)
        assert elapsed <= 120
        await asyncio.sleep(6)  # a second mail would arrive now
        got = sorted(str(m["X-Orosflow-Reference"]) for m in smtp.messages())
        assert got == sorted(refs.values())
        async with get_client() as client:
            finished = [
                (await client.read_flow_run(uuid.UUID(r))).state_type for r in runs.values()
            ]
        # The runs the worker had started were not lost with it: none crashed.
        assert StateType.CRASHED not in finished, finished
    finally:
        stop(first)
        if second is not None:
            stop(second)
        await remove_pool(pool)
        print(f"wall time {time.monotonic() - t0:.1f} s", flush=True)
