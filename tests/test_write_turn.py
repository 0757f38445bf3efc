"""SQLite writers take turns, the portal's first (orosflow.core.write_turn).

Real processes on a real database file: one holds the turn, a background writer and then a
person's writer queue for it; the person's goes first. A turn never blocks for good.
"""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import time
from pathlib import Path

import pytest
from sqlmodel import select

from models.tables import AuditEvent
from orosflow.core import write_turn
from orosflow.core.audit import append_event
from orosflow.core.db import get_engine, session_scope

CTX = multiprocessing.get_context("fork")


def _writer(database: str, people: bool, log: str, ready: str, hold: float | str) -> None:
    """A process that takes one turn, notes when it got it, and holds it ``hold`` s (or until
    the file ``hold`` exists)."""
    # Set either way: the child inherits the test process's setting, which an earlier test in
    # it (a portal's) may have turned on, making the "background" writers people too.
    write_turn.people_first(people)
    Path(ready).touch()
    with write_turn.write_turn(Path(database)):
        with open(log, "a") as fh:
            fh.write(f"{'person' if people else 'background'}\n")
        if isinstance(hold, str):
            while not Path(hold).exists():
                time.sleep(0.01)
        else:
            time.sleep(hold)


def _start(database: Path, people: bool, log: Path, hold: float | Path) -> multiprocessing.Process:
    ready = log.with_name(f"ready-{people}-{time.monotonic_ns()}")
    hold_arg = str(hold) if isinstance(hold, Path) else hold
    proc = CTX.Process(target=_writer, args=(str(database), people, str(log), str(ready), hold_arg))
    proc.start()
    deadline = time.monotonic() + 10
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # it is now waiting for the turn
    return proc


def _a_person_waits(database: Path) -> bool:
    """A person's writer holds the gate shared (a READ flock in /proc/locks): it is waiting
    for the turn. (A background writer only ever holds the gate exclusively, for a moment.)"""
    gate = database.with_name(database.name + ".gate.lock")
    if not gate.exists():
        return False
    inode = gate.stat().st_ino
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "FLOCK" in fields and "READ" in fields and any(f.endswith(f":{inode}") for f in fields):
            return True
    return False


def test_a_persons_writer_goes_before_background_writers_that_waited_longer(
    tmp_path: Path,
) -> None:
    database, log, release = tmp_path / "orosflow.db", tmp_path / "order", tmp_path / "release"
    holder = _start(database, False, log, hold=release)
    deadline = time.monotonic() + 10
    while not (log.exists() and log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.01)  # the holder has the turn (under load 0.1 s was not always enough)
    assert log.read_text().split() == ["background"]
    background = _start(database, False, log, hold=0.0)
    person = _start(database, True, log, hold=0.0)
    deadline = time.monotonic() + 10
    while not _a_person_waits(database) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _a_person_waits(database)
    release.touch()
    for proc in (holder, background, person):
        proc.join(15)
        assert proc.exitcode == 0
    assert log.read_text().split() == ["background", "person", "background"]


def test_a_turn_held_for_ever_does_not_block_for_ever(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the busy timeout the writer goes on without a turn: SQLite's lock decides."""
    database, log = tmp_path / "orosflow.db", tmp_path / "order"
    holder = _start(database, False, log, hold=5)
    monkeypatch.setattr(write_turn, "SQLITE_BUSY_SECONDS", 0.3)
    entered = False
    with write_turn.write_turn(database):
        entered = True
    assert entered
    holder.kill()
    holder.join()


def test_the_turn_is_reentrant_within_a_thread(tmp_path: Path) -> None:
    database = tmp_path / "orosflow.db"
    with write_turn.write_turn(database):
        with write_turn.write_turn(database):
            pass
        # still ours: another process cannot take it now
        fd = os.open(database.with_name("orosflow.db.write.lock"), os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)


def test_session_scope_takes_the_turn_beside_the_sqlite_file(sqlite_db: str) -> None:
    """Every write transaction goes through the turn; the lock files are the user's only."""
    with session_scope() as s:
        append_event(s, actor="test", action="test.turn")
    with session_scope() as s:
        assert s.exec(select(AuditEvent).where(AuditEvent.action == "test.turn")).one()
    path = Path(get_engine().url.database or "")
    lock = path.with_name(path.name + ".write.lock")
    assert lock.exists()
    assert lock.stat().st_mode & 0o077 == 0


def _announcer(database: str, ready: str, release: str) -> None:
    """The portal preparing a receipt (validation, encryption) until ``release`` exists."""
    write_turn.people_first(True)
    with write_turn.announce(Path(database)):
        Path(ready).touch()
        while not Path(release).exists():
            time.sleep(0.01)


def test_background_writers_wait_while_a_persons_write_is_announced(tmp_path: Path) -> None:
    """From the start of a receipt, not only once its transaction asks for the turn: a flow
    run that came meanwhile would otherwise take the turn first."""
    database, log = tmp_path / "orosflow.db", tmp_path / "order"
    ready, release = tmp_path / "announced", tmp_path / "release"
    person = CTX.Process(target=_announcer, args=(str(database), str(ready), str(release)))
    person.start()
    deadline = time.monotonic() + 10
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    background = _start(database, False, log, hold=0.0)
    time.sleep(0.3)
    assert not log.exists() or not log.read_text()  # it waits, though the turn is free
    release.touch()
    for proc in (person, background):
        proc.join(15)
        assert proc.exitcode == 0
    assert log.read_text().split() == ["background"]


def test_an_announcement_outside_the_portal_holds_nobody_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database, log = tmp_path / "orosflow.db", tmp_path / "order"
    monkeypatch.setattr(write_turn, "_people_first", False)  # a CLI, a flow run
    with write_turn.announce(database):
        background = _start(database, False, log, hold=0.0)
        background.join(15)
        assert background.exitcode == 0
    assert log.read_text().split() == ["background"]
