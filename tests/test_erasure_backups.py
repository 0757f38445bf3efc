"""Issue 15, item 2: erasure that holds against deleted pages and backups.

An erased report's wrapped key must not stay in SQLite's free pages or WAL, and a copy of the
database taken before the erasure must not bring the report back once its period's
key-encryption key is destroyed."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url

from models.tables import ReportKey
from orosflow.core.db import checkpoint_sqlite, get_engine, session_scope
from orosflow.handover.retention import erase_report
from orosflow.handover.submission import submit

from factories import form


def test_sqlite_connections_have_secure_delete_on(sqlite_db: str) -> None:
    with get_engine().connect() as conn:
        assert conn.exec_driver_sql("PRAGMA secure_delete").scalar() == 1


def test_erased_wrapped_key_is_not_left_in_the_sqlite_files(sqlite_db: str) -> None:
    """The bytes of the deleted key row are gone from the database file and its WAL."""
    rid = submit(form(), actor="t").reports[0].report_id
    with session_scope() as s:
        wrapped = s.get(ReportKey, rid).wrapped_key
    checkpoint_sqlite()  # the row is in the main file, as it is after a while
    path = Path(make_url(get_engine().url).database or "")
    assert wrapped in path.read_bytes()
    assert erase_report(rid, actor="t", rule="RET-TEST")
    checkpoint_sqlite()
    for f in (path, path.with_name(path.name + "-wal")):
        if f.exists():
            assert wrapped not in f.read_bytes(), f
