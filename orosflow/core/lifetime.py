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

#: Set by ``orosflow serve`` to its own pid: flow runs it starts follow it (see follow_serve).
SERVE_PID_ENV = "OROSFLOW_SERVE_PID"
_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask for ``sig`` when the parent process dies (a ``preexec_fn`` for child processes)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


def follow_serve() -> None:
    """In a flow run started by ``orosflow serve``: end with it. A run started by a worker
    (no serve pid, or another parent) is left alone: it outlives its worker on purpose."""
    pid = os.environ.get(SERVE_PID_ENV, "")
    if not pid.isdigit() or os.getppid() != int(pid):
        return
    die_with_parent(signal.SIGTERM)
    if os.getppid() != int(pid):  # serve died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def port_in_use(host: str, port: int) -> bool:
    """Something already listens on ``host:port`` (e.g. a server left over from a crash)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0
