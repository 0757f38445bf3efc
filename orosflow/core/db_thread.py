"""A background process's database work, at the priority it had before it yielded the CPU.

Flow runs run at a lower CPU priority than the portal (``lifetime.yield_to_portal``), so that
a counselor's receipt does not wait for the CPU behind them. But a run's transaction holds
SQLite's one write lock, and the portal's next receipt waits for it: at the lower priority,
among other runs, a transaction of ~5 ms of CPU held the lock 30–90 ms in a burst under
``orosflow serve``. On Linux the priority belongs to each thread, so a thread started before
the process yields keeps the normal one; the run's database steps run on it (:func:`run`).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

_executor: ThreadPoolExecutor | None = None


def start() -> None:
    """Start this process's database thread now, at the current priority (before yielding)."""
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="orosflow-db")
        _executor.submit(lambda: None).result()  # the thread exists from here on


async def run(fn: Callable[..., T], *args: object) -> T:
    """``asyncio.to_thread`` on the database thread when there is one (same context vars)."""
    if _executor is None:
        return await asyncio.to_thread(fn, *args)
    call = functools.partial(contextvars.copy_context().run, fn, *args)
    return await asyncio.get_running_loop().run_in_executor(_executor, call)
