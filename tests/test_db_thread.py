"""A flow run's database steps keep the normal CPU priority (orosflow.core.db_thread).

The run yields the CPU to the portal (nice 10), but its transactions hold SQLite's one write
lock, which the portal's receipts wait for. Checked in a forked process, as a run is.
"""

from __future__ import annotations

import asyncio
import contextvars
import multiprocessing
import os
import threading

from orosflow.core import db_thread, lifetime

MARK: contextvars.ContextVar[str] = contextvars.ContextVar("mark", default="")


def _nice(tid: int) -> int:
    stat = open(f"/proc/self/task/{tid}/stat").read()  # noqa: SIM115 - one read
    return int(stat.rsplit(")", 1)[1].split()[16])


def _in_a_run(conn) -> None:  # noqa: ANN001 - a Pipe end
    db_thread.start()
    lifetime.yield_to_portal()

    async def flow() -> tuple[int, int, str, bool, int, int]:
        MARK.set("the run's context")

        def step() -> tuple[int, str, bool, int]:
            me = threading.get_native_id()
            return _nice(me), MARK.get(), me != threading.main_thread().native_id, _policy()

        nice, mark, other_thread, step_policy = await db_thread.run(step)
        main = threading.get_native_id()
        return _nice(main), nice, mark, other_thread, _policy(), step_policy

    conn.send(asyncio.run(flow()))


def _policy() -> int:
    return os.sched_getscheduler(0)  # 0: the calling thread


def test_database_steps_run_at_the_priority_the_run_had_before_it_yielded() -> None:
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.get_context("fork").Process(target=_in_a_run, args=(child,))
    proc.start()
    main_nice, step_nice, mark, other_thread, main_policy, step_policy = parent.recv()
    proc.join(10)
    base = os.nice(0)
    assert main_nice == min(19, base + lifetime.BACKGROUND_NICENESS)
    assert step_nice == base
    # The default ("idle"): the run's own threads take a core only when no normal thread
    # wants it, so a receipt preempts them at once; the database thread is a normal one.
    assert main_policy == os.SCHED_IDLE
    assert step_policy == _policy() == os.SCHED_OTHER
    assert mark == "the run's context"
    assert other_thread


def _yield_and_report(priority: str, conn) -> None:  # noqa: ANN001 - a Pipe end
    lifetime.yield_to_portal(priority)
    conn.send((_nice(threading.get_native_id()), _policy()))


def test_the_nice_setting_keeps_the_normal_policy_and_lowers_the_priority_only() -> None:
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.get_context("fork").Process(
        target=_yield_and_report, args=("nice", child)
    )
    proc.start()
    nice, policy = parent.recv()
    proc.join(10)
    assert nice == min(19, os.nice(0) + lifetime.BACKGROUND_NICENESS)
    assert policy == os.SCHED_OTHER


async def test_without_a_database_thread_steps_run_in_a_worker_thread() -> None:
    assert await db_thread.run(lambda: threading.current_thread() is not threading.main_thread())


def _sweep_in_a_run(conn) -> None:  # noqa: ANN001 - a Pipe end
    from types import SimpleNamespace

    from orosflow.core import anchors
    from orosflow.handover import escalation
    from orosflow.handover.lifecycle import outbox

    db_thread.start()
    lifetime.yield_to_portal()
    nices: dict[str, int] = {}

    def plan(now: object) -> list[object]:
        nices["plan"] = _nice(threading.get_native_id())
        return []

    def anchor(now: object) -> object:
        nices["anchor"] = _nice(threading.get_native_id())
        return SimpleNamespace(written=False, problems=[], chain_broken_at=None)

    async def deliver() -> object:
        return SimpleNamespace(sent=0, failed=0)

    escalation.plan_escalations = plan
    anchors.anchor_if_due = anchor
    outbox.deliver = deliver
    asyncio.run(escalation.escalate_overdue())
    conn.send((_nice(threading.get_native_id()), nices))


def test_the_escalation_sweeps_database_steps_keep_the_normal_priority() -> None:
    # The sweep is a flow run too: its plan and anchor steps write (events, escalations) under
    # SQLite's write lock, so they run on the database thread, not on a yielded worker thread.
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.get_context("fork").Process(target=_sweep_in_a_run, args=(child,))
    proc.start()
    main_nice, nices = parent.recv()
    proc.join(10)
    base = os.nice(0)
    assert main_nice == min(19, base + lifetime.BACKGROUND_NICENESS)
    assert nices == {"plan": base, "anchor": base}
