"""Flow runs forked from one preloaded process instead of a new Python each.

Prefect's runner starts every served flow run with ``multiprocessing``'s *spawn*: a new
interpreter that imports Prefect, SQLAlchemy, our flows and their dependencies before the flow
begins — 4 to 6 s of CPU and ~160 MiB per run on the 2-core reference machine, the largest
part of time-to-notify under ``orosflow serve``. Here the runner gets *forkserver* instead:
one clean, single-threaded process imports all of that once (``PRELOAD``) and forks each run
from itself. A run is still its own process — the runner's limit, cancellation, crash
detection and the reconciler see what they saw before — but it starts in milliseconds.

The switch is a narrow patch: ``prefect.flow_engine.run_flow_in_subprocess`` asks
``multiprocessing.get_context("spawn")`` for its process class, and ``install()`` gives that
one module a ``multiprocessing`` whose contexts are ours. Re-check it on every Prefect upgrade
(``tests/test_flow_processes.py`` fails if Prefect stops using it).

The code of a flow is the code loaded when the runner started: restart ``orosflow serve`` or
``orosflow runner`` after changing it (as for any long-lived worker).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.context
import types
from typing import Any

from orosflow.core import db_thread, lifetime

#: What the fork server imports once; each run inherits it. The flows bring Prefect, the
#: engine, SQLAlchemy, the mail builder and the routing data with them.
PRELOAD = [
    "prefect.flow_engine",
    "prefect.runner",
    # Imported by the engine only once a run begins (measured: 0.45 s per run otherwise).
    "prefect.task_engine",
    "prefect.utilities.visualization",
    "prefect.concurrency.services",
    "prefect.concurrency._asyncio",
    "anyio._backends._asyncio",
    "anyio.streams.tls",
    "anyio.streams.stapled",
    "encodings.idna",
    "sqlite3",
    "flows.concern_report",
    "flows.escalate_overdue",
    "flows.retention",
    "flows.audit_verify",
    "flows.preload",  # the routing data, read once instead of in every run
]


class FlowRunProcess(multiprocessing.context.ForkServerProcess):
    """One flow run, forked by the fork server."""

    def run(self) -> None:
        # The fork cleared the parent-death signal the fork server holds: a run of
        # ``orosflow serve`` must end with it, as a spawned one did.
        lifetime.follow_serve()
        db_thread.start()  # keeps the normal priority: it holds the write lock (db_thread)
        lifetime.yield_to_portal()
        super().run()


class _Context:
    """What ``multiprocessing.get_context(...)`` returns inside Prefect's flow engine."""

    Process = FlowRunProcess


def _get_context(method: str | None = None) -> _Context:
    return _Context()


def install(preload: list[str] | None = None) -> None:
    """Make Prefect's runner fork its flow runs from a preloaded fork server, and start that
    server now, so the first run does not wait for its imports. Call once, before serving."""
    import prefect.flow_engine as engine

    if not hasattr(engine, "run_flow_in_subprocess"):  # pragma: no cover - Prefect changed
        raise RuntimeError("prefect.flow_engine.run_flow_in_subprocess saknas: se flow_processes")
    shim = types.ModuleType("multiprocessing")
    shim.__dict__.update(multiprocessing.__dict__)
    shim.get_context = _get_context  # type: ignore[attr-defined]
    engine.multiprocessing = shim  # type: ignore[attr-defined]
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([*(preload if preload is not None else PRELOAD), __name__])
    # The first fork is served once the preload is done: wait for it here, not in a run.
    probe = ctx.Process(target=_ready, name="orosflow-forkserver-ready")
    probe.start()
    probe.join()


def stop(grace: float = 10.0) -> None:
    """End the fork server and every run it forked that is still alive: SIGTERM, then SIGKILL
    after ``grace`` s. Call once the runner has stopped (it has asked its runs to stop; a run
    still reporting to a Prefect server that is gone would otherwise linger on its own).
    What was cut short is restarted by the reconciler; its mails are never sent twice."""
    import multiprocessing.forkserver as forkserver

    import psutil

    server = forkserver._forkserver  # noqa: SLF001 - the fork server of this process
    pid = server._forkserver_pid  # noqa: SLF001
    if pid is None:
        return
    try:
        runs = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        runs = []
    for run in runs:
        with contextlib.suppress(psutil.Error):
            run.terminate()
    _, alive = psutil.wait_procs(runs, timeout=grace)
    for run in alive:
        with contextlib.suppress(psutil.Error):
            run.kill()
    psutil.wait_procs(alive, timeout=5)
    server._stop()  # noqa: SLF001 - closes its "alive" pipe and reaps it


def _ready() -> None:
    """Nothing: a fork that shows the fork server has finished its imports."""


def installed() -> bool:
    """Whether Prefect's flow engine forks its runs from the fork server (for tests, status)."""
    import prefect.flow_engine as engine

    ctx: Any = engine.multiprocessing.get_context("spawn")
    return getattr(ctx, "Process", None) is FlowRunProcess
