"""``orosflow runner``: the flow runs of Orosflow, for a machine that runs only those.

The same flows, limit and reconciler as in ``orosflow serve``, against the Prefect server and
database the settings name, without the portal, the SMTP capture or a server of its own. Flow
runs are forked from a preloaded process (``core.flow_processes``): a run starts in
milliseconds instead of the seconds a new Python takes (Prefect's process worker). Run one per
machine, as many machines as needed: each serves prefect.yaml's deployments, and Prefect hands
each flow run to one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Coroutine
from datetime import datetime
from typing import Any

from orosflow.core import flow_processes, lifetime
from orosflow.core.settings import get_settings


def run() -> int:
    from orosflow.core import prefect_env, redaction

    prefect_env.configure()  # before Prefect is imported
    redaction.install()
    from orosflow.handover.reconcile import configure_logging

    configure_logging()
    stop = lifetime.StopSignals().install()
    settings = get_settings()
    print(
        f"Orosflow runner: flöden mot {os.environ['PREFECT_API_URL']}, högst "
        f"{settings.flow_run_limit} körningar åt gången "
        f"({'förgrenade' if settings.flow_run_start == 'fork' else 'ny Python per körning'}). "
        "Avsluta med Ctrl-C.",
        flush=True,
    )
    try:
        asyncio.run(until_stopped(run_flows(pause=False), stop))
    except (KeyboardInterrupt, SystemExit):  # SystemExit: Prefect runner's own SIGTERM handler
        pass
    except (RuntimeError, TimeoutError, OSError) as exc:
        print(f"Orosflow runner kunde inte starta: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        stop.ignore()
        flow_processes.stop()
    print("Orosflow runner stoppad.", flush=True)
    return 0


async def run_flows(orphaned_before: datetime | None = None, pause: bool = True) -> None:
    """Serve prefect.yaml's deployments and reconcile until cancelled (serve and runner).

    ``orphaned_before``: runs of an earlier serve died with it (lifetime.follow_serve);
    restart them now rather than after the staleness limit. ``pause``: pause the schedules
    when stopping (serve, the only runner); a runner among several leaves them to the others."""
    from flows.deployments import serve_declared
    from orosflow.handover.reconcile import reconcile_loop

    settings = get_settings()
    fork = settings.flow_run_start == "fork"

    async def flows() -> None:
        if fork:  # the fork server's imports (seconds) while the reconciler starts
            await asyncio.to_thread(flow_processes.install)
        await serve_declared(settings.flow_run_limit, fork=fork, pause=pause)

    await asyncio.gather(flows(), reconcile_loop(orphaned_before=orphaned_before))


async def until_stopped(job: Coroutine[Any, Any, object], stop: lifetime.StopSignals) -> None:
    """Run ``job`` until Ctrl-C or SIGTERM, then cancel it and let its clean-up finish: the
    signal wakes this loop instead of raising ``KeyboardInterrupt`` inside some task. (The task
    is made here, in the running loop: one made before ``asyncio.run`` would never run.)"""
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_quiet_cancelled)
    work = asyncio.ensure_future(job)
    stopped = asyncio.Event()
    stop.wake_with(lambda: loop.call_soon_threadsafe(stopped.set))
    waiter = asyncio.ensure_future(stopped.wait())
    try:
        while not (stop.requested or work.done()):
            await asyncio.wait({work, waiter}, timeout=1, return_when=asyncio.FIRST_COMPLETED)
            stop.reclaim()  # the runner takes SIGTERM for itself when it starts
    finally:
        stop.wake_with(None)
        waiter.cancel()
        work.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await work


def _quiet_cancelled(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Drop a ``CancelledError`` raised in a done-callback, report the rest as asyncio does.

    On stop, Python 3.11's ``asyncio.streams`` calls ``task.exception()`` on the cancelled
    connection handler of Prefect's runner control channel (fixed in 3.12) and would print a
    traceback for a run that finished cleanly."""
    if isinstance(context.get("exception"), asyncio.CancelledError):
        return
    loop.default_exception_handler(context)
