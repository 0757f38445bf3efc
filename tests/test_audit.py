"""The audit chain: `audit verify` passes on an intact chain and names the first tampered row."""

from __future__ import annotations

import json

from sqlalchemy import text
from sqlmodel import Session, col, select

from orosflow.core.audit import append_event, verify_chain
from orosflow.core.db import get_engine, session_scope
from orosflow.handover.submission import submit

from factories import form
from support import run_cli


def _chain_of(n: int) -> None:
    with session_scope() as s:
        for i in range(n):
            append_event(s, actor="test", action="test.step", rule=f"R-{i}", details={"i": i})


def _verify() -> tuple[bool, int | None]:
    with session_scope() as s:
        status = verify_chain(s)
    return status.ok, status.first_broken_seq


def _sql(statement: str) -> None:
    with get_engine().begin() as conn:
        conn.execute(text(statement))


def test_intact_chain_verifies(db: str) -> None:
    submit(form(), actor="t")
    _chain_of(5)
    assert _verify() == (True, None)


def test_edited_event_is_named(db: str) -> None:
    _chain_of(6)
    _sql("UPDATE audit_event SET actor = 'someone-else' WHERE seq = 4")
    assert _verify() == (False, 4)


def test_deleted_event_is_named(db: str) -> None:
    _chain_of(6)
    _sql("DELETE FROM audit_event WHERE seq = 3")
    assert _verify() == (False, 3)


def test_swapped_events_are_detected(db: str) -> None:
    _chain_of(6)
    # Swap the contents of rows 2 and 5 (keeping their seq): both hashes stop matching.
    _sql("UPDATE audit_event SET seq = -2 WHERE seq = 2")
    _sql("UPDATE audit_event SET seq = 2 WHERE seq = 5")
    _sql("UPDATE audit_event SET seq = 5 WHERE seq = -2")
    assert _verify() == (False, 2)


def test_rehashed_edit_still_breaks_the_link(db: str) -> None:
    """An attacker who recomputes the edited row's own hash still breaks the next row's link."""
    _chain_of(4)
    from models.tables import AuditEvent
    from orosflow.core.audit import _digest

    with session_scope() as s:
        ev = s.get(AuditEvent, 2)
        ev.details = json.dumps({"i": 99})
        ev.hash = _digest(ev)
        s.add(ev)
    assert _verify() == (False, 3)


def _seqs() -> list[int]:
    from models.tables import AuditEvent

    with session_scope() as s:
        return [e.seq for e in s.exec(select(AuditEvent).order_by(col(AuditEvent.seq))).all()]


def test_appends_after_a_rollback_continue_from_what_was_committed(db: str) -> None:
    """A transaction remembers the head it appended; one rolled back must not be remembered."""
    _chain_of(2)
    with Session(get_engine()) as s:
        append_event(s, actor="test", action="test.gone")
        append_event(s, actor="test", action="test.gone")
        s.rollback()
        s.connection()  # the next transaction has begun before the append
        append_event(s, actor="test", action="test.kept")
        s.commit()
    assert _seqs() == [1, 2, 3]
    assert _verify() == (True, None)


def test_appends_after_a_commit_follow_events_others_appended_meanwhile(db: str) -> None:
    with Session(get_engine()) as s:
        append_event(s, actor="test", action="test.first")
        s.commit()
        _chain_of(2)  # another writer, between this session's two transactions
        s.connection()  # the next transaction has begun before the append
        append_event(s, actor="test", action="test.after")
        append_event(s, actor="test", action="test.after")
        s.commit()
    assert _seqs() == [1, 2, 3, 4, 5]
    assert _verify() == (True, None)


def test_cli_audit_verify_exit_codes(sqlite_db: str) -> None:
    _chain_of(3)
    ok = run_cli("audit", "verify")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["ok"] is True
    _sql("UPDATE audit_event SET action = 'x' WHERE seq = 2")
    broken = run_cli("audit", "verify")
    assert broken.returncode == 1
    assert json.loads(broken.stdout)["first_broken_seq"] == 2
    assert "bruten vid händelse 2" in broken.stderr
