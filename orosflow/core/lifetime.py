"""Processes that live and die with ``orosflow serve``.

``make serve`` starts a Prefect server, the portal and flow runs as child processes. If serve is
killed (``kill -9``, a closed terminal) they must not live on: an orphaned Prefect server keeps
the port, so the next start would talk to it and claim success, and orphaned runs would be
waited for until the reconciler's staleness limit. On Linux each child asks the kernel for a
signal when its parent dies (``PR_SET_PDEATHSIG``); elsewhere this is a no-op.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import sys
from collections.abc import Callable
from types import FrameType

#: Set by ``orosflow serve`` to its own pid: flow runs it starts follow it (see follow_serve).
SERVE_PID_ENV = "OROSFLOW_SERVE_PID"
_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask for ``sig`` when the parent process dies (a ``preexec_fn`` for child processes)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


#: Added to the nice value of background work (flow runs; serve's Prefect server): on a machine
#: it shares with the portal, a counselor's receipt must not wait behind it for the CPU. The
#: Prefect server gets the same as the runs: a run holding the app's SQLite write lock must not
#: be starved by it while the portal waits for that lock.
BACKGROUND_NICENESS = 10


def yield_to_portal(priority: str | None = None) -> None:
    """Lower this thread's CPU priority (threads it starts afterwards inherit it).

    ``priority`` is the setting ``background_priority`` (read here when not given). ``nice``
    adds ``BACKGROUND_NICENESS``: the thread still keeps a share of ~1/10 against the portal,
    and a receipt that wakes up may wait for the end of its time slice. ``idle`` also makes
    it ``SCHED_IDLE`` (Linux): it runs only on a core no normal thread wants, and a waking
    receipt preempts it at once. Under a burst of 200 in ``orosflow serve`` (3 bursts each,
    alternating): receipts p50 / p95 25 / 55 ms with nice, 21 / 43 ms with idle; the drain
    took ~10 % longer. The threads that hold SQLite's write lock keep the normal priority
    (``db_thread``), so a yielded run never sits on the lock while a receipt waits for it.
    """
    if priority is None:
        from orosflow.core.settings import get_settings

        priority = get_settings().background_priority
    os.nice(BACKGROUND_NICENESS)
    if priority == "idle" and hasattr(os, "SCHED_IDLE"):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # 0: this thread


def follow_serve() -> None:
    """In a flow run started by ``orosflow serve``: end with it. A run started by a worker
    (no serve pid, or another parent) is left alone: it outlives its worker on purpose.

    A run is serve's child, or the child of serve's fork server (``core.flow_processes``),
    which itself ends with serve."""
    pid = os.environ.get(SERVE_PID_ENV, "")
    parent = os.getppid()
    if not pid.isdigit() or int(pid) not in (parent, _parent_of(parent)):
        return
    die_with_parent(signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _parent_of(pid: int) -> int | None:
    """The parent pid of ``pid`` (Linux: /proc), or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # the name in parentheses may hold spaces
    return int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None


def port_in_use(host: str, port: int) -> bool:
    """Something already listens on ``host:port`` (e.g. a server left over from a crash)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def port_holder(port: int) -> str | None:
    """Who listens on ``port``, for a start that finds it taken: "pid 1234, python3", or None
    if no listener is found (it may have ended meanwhile). psutil reads the kernel's socket
    table and the owners' file descriptors; without the right to see another user's process,
    only that it belongs to one is known."""
    import psutil

    try:
        conns = psutil.net_connections(kind="tcp")
    except psutil.Error:
        return None
    for conn in conns:
        if conn.status != psutil.CONN_LISTEN or not conn.laddr or conn.laddr.port != port:
            continue
        if conn.pid is None:
            return "en annan användares process"
        try:
            return f"pid {conn.pid}, {psutil.Process(conn.pid).name()}"
        except psutil.Error:
            return f"pid {conn.pid}"
    return None


class StopSignals:
    """Ctrl-C (SIGINT to the whole foreground process group: make, uv, serve and the flow runs
    in it) and SIGTERM ask serve to stop, once. The first signal unwinds to serve's shutdown
    (``KeyboardInterrupt``, or a callback while the flows' event loop runs); every later one is
    ignored, so a second Ctrl-C, or the same one forwarded by uv, cannot break off the
    shutdown halfway and leave the Prefect server or the portal running."""

    def __init__(self) -> None:
        self.requested = False
        self._wake: Callable[[], None] | None = None

    def install(self) -> StopSignals:
        """Take over SIGINT and SIGTERM (main thread only, as Python requires)."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)
        return self

    def reclaim(self) -> None:
        """Take SIGINT and SIGTERM back if something replaced the handler: Prefect's runner
        installs its own SIGTERM handler on start, which exits from whatever code it lands in
        and leaves a coroutine never awaited."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(sig) != self._handle:
                signal.signal(sig, self._handle)

    def wake_with(self, callback: Callable[[], None] | None) -> None:
        """While an event loop runs: call ``callback`` on the first signal instead of raising
        inside the loop (a ``KeyboardInterrupt`` there lands in any task's code)."""
        self._wake = callback

    def ignore(self) -> None:
        """From here on (serve's shutdown) SIGINT and SIGTERM do nothing. Also undoes the
        SIGTERM handler Prefect's runner installs, which would exit from wherever it lands."""
        self.requested = True
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            return
        self.requested = True
        if self._wake is not None:
            self._wake()
            return
        raise KeyboardInterrupt
