"""Whose turn it is to write the SQLite database: people first, then background work.

SQLite has one write lock. A writer that finds it taken polls for it (SQLite's busy handler
sleeps 1, 2, 5 … 100 ms between tries), so under load a counselor's receipt waited behind
several flow runs' transactions, and for longer than any of them held the lock: in a burst
under ``orosflow serve`` 96 % of the portal's submit time was spent in ``BEGIN IMMEDIATE``
(py-spy), up to 2 s.

Here writers take turns on file locks beside the database before they begin, and a process
that answers people (the portal: :func:`people_first`) goes first. A background writer (a flow
run, the reconciler, the CLI) takes its turn only while no such writer waits, and gives it up
again if one came meanwhile. Turns are tried without blocking, every millisecond, so a wait
always ends: after ``SQLITE_BUSY_SECONDS`` the writer goes on without a turn and SQLite's own
lock (whose timeout is the same) decides, as it did before. Within a process one thread at a
time asks; the others wait on a thread lock, which does not compete for the GIL.

PostgreSQL needs none of this: its row and advisory locks queue their waiters in order.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: As long as SQLite's busy timeout (``orosflow.core.db``): the longest any writer waits.
SQLITE_BUSY_SECONDS = 60.0
#: Between two tries for a turn. A person's writer asks twice as often.
POLL_SECONDS = 0.002
PEOPLE_POLL_SECONDS = 0.001

_people_first = False
_held = threading.local()
_process_turns: dict[Path, threading.Lock] = {}
_process_turns_lock = threading.Lock()


def _after_fork_in_child() -> None:
    """A forked process starts with no turn held: a thread lock another thread of the parent
    held at the fork would otherwise never be released in the child."""
    global _held, _process_turns, _process_turns_lock
    _held = threading.local()
    _process_turns = {}
    _process_turns_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def people_first(answers_people: bool = True) -> None:
    """This process answers people (the portal): its writes go before background writes.
    A process forked from it inherits the setting, so a background child sets it back."""
    global _people_first
    _people_first = answers_people


def _process_turn(path: Path) -> threading.Lock:
    with _process_turns_lock:
        return _process_turns.setdefault(path, threading.Lock())


def _open(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


def _try(fd: int, mode: int) -> bool:
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _nobody_waits(gate: int) -> bool:
    """No person's writer is waiting (none holds the gate shared)."""
    if _try(gate, fcntl.LOCK_EX):
        fcntl.flock(gate, fcntl.LOCK_UN)
        return True
    return False


def _take(gate: int, write: int, deadline: float) -> bool:
    """Take the write turn; False when the deadline passed first."""
    if _people_first:
        fcntl.flock(gate, fcntl.LOCK_SH)  # never held exclusively for more than a moment
        try:
            while not _try(write, fcntl.LOCK_EX):
                if time.monotonic() > deadline:
                    return False
                time.sleep(PEOPLE_POLL_SECONDS)
            return True
        finally:
            fcntl.flock(gate, fcntl.LOCK_UN)
    while True:
        if _nobody_waits(gate) and _try(write, fcntl.LOCK_EX):
            if _nobody_waits(gate):  # still nobody: ours
                return True
            fcntl.flock(write, fcntl.LOCK_UN)  # a person came meanwhile: let them go first
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_SECONDS)


@contextmanager
def announce(database: Path | None) -> Iterator[None]:
    """A person's write is on its way (the portal validates and encrypts a receipt before it
    asks for the turn): background writers hold off from now on, so the turn is free when it
    is asked for, instead of taken meanwhile by a flow run. No-op outside the portal."""
    if database is None or not _people_first or getattr(_held, "announced", False):
        yield
        return
    gate = _open(_gate_path(database))
    try:
        fcntl.flock(gate, fcntl.LOCK_SH)  # never held exclusively for more than a moment
        _held.announced = True
        yield
    finally:
        _held.announced = False
        os.close(gate)  # releases the lock


def _gate_path(database: Path) -> Path:
    return database.with_name(database.name + ".gate.lock")


@contextmanager
def write_turn(database: Path) -> Iterator[None]:
    """Hold the write turn of the SQLite file ``database`` (re-entrant within a thread)."""
    if getattr(_held, "depth", 0):
        _held.depth += 1
        try:
            yield
        finally:
            _held.depth -= 1
        return
    deadline = time.monotonic() + SQLITE_BUSY_SECONDS
    in_process = _process_turn(database)
    ours = in_process.acquire(timeout=SQLITE_BUSY_SECONDS)
    gate = write = -1
    try:
        if ours:
            gate = _open(_gate_path(database))
            write = _open(database.with_name(database.name + ".write.lock"))
            _take(gate, write, deadline)  # past the deadline: on without a turn (see above)
        _held.depth = 1
        yield
    finally:
        _held.depth = 0
        for fd in (write, gate):  # closing a descriptor releases its lock
            if fd >= 0:
                os.close(fd)
        if ours:
            in_process.release()
