"""``read_scope``: on SQLite a reader neither waits for nor blocks the one write lock, so a
token check or a flow run's lookup does not queue behind a long write (and a receipt does not
queue behind it); ``session_scope`` still queues writers in order."""

from __future__ import annotations

import threading
import time

from sqlmodel import select

from models.tables import Report
from orosflow.core.db import read_scope, session_scope

from factories import form


def test_reader_does_not_wait_for_a_held_write_lock(sqlite_db: str) -> None:
    from orosflow.handover.submission import submit

    reference = submit(form(), actor="test:counselor").reports[0].reference
    holding, release = threading.Event(), threading.Event()

    def writer() -> None:
        with session_scope() as s:
            s.exec(select(Report)).all()  # BEGIN IMMEDIATE: holds the write lock from here
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert holding.wait(10)
        started = time.monotonic()
        with read_scope() as s:
            found = s.exec(select(Report.reference)).all()
        read_took = time.monotonic() - started

        waited: list[float] = []

        def second_writer() -> None:
            t0 = time.monotonic()
            with session_scope() as s:
                s.exec(select(Report)).all()
            waited.append(time.monotonic() - t0)

        other = threading.Thread(target=second_writer)
        other.start()
        time.sleep(0.5)
        assert other.is_alive(), "a second writer went ahead while the lock was held"
    finally:
        release.set()
        thread.join()
    other.join(10)
    assert found == [reference]
    assert read_took < 0.5, f"the reader waited {read_took:.2f} s for the writer"
    assert waited and waited[0] >= 0.5
