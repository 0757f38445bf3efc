"""Migration 0006 fills ``Report.reporter_digest`` for reports stored without it, once, instead
of "my reports" decrypting them on every call. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlmodel import select

from models.tables import AuditEvent, Report
from orosflow.core import db as dbmod
from orosflow.core.audit import verify_chain
from orosflow.core.db import session_scope
from orosflow.handover.lifecycle import reporter_digest
from orosflow.handover.retention import erase_report
from orosflow.views.counselor import reports_by_reporter

from portal_support import COUNSELOR_EMAIL, submit_example

ACTOR = "system:migration-0006"


def _id_of(reference: str) -> str:
    with session_scope() as s:
        return s.exec(select(Report).where(Report.reference == reference)).one().id


def _forget_digests(*references: str) -> None:
    """As rows stored before the digest existed."""
    with session_scope() as s:
        for ref in references:
            report = s.exec(select(Report).where(Report.reference == ref)).one()
            report.reporter_digest = None
            s.add(report)


def _digest(reference: str) -> str | None:
    with session_scope() as s:
        return s.exec(select(Report).where(Report.reference == reference)).one().reporter_digest


def _migrate_from_0005() -> None:
    """Step back to 0005 (0006 has nothing to undo) and migrate to the head as every start does."""
    dbmod.reset_engine()
    config = dbmod.alembic_config()
    command.downgrade(config, "0005")
    dbmod.migrate()
    head = ScriptDirectory.from_config(config).get_current_head()
    with session_scope() as s:
        assert s.exec(text("SELECT version_num FROM alembic_version")).one()[0] == head


def test_migration_fills_missing_digests_with_an_audited_read(db: str, office_hours: None) -> None:
    kept, erased, filled = submit_example(), submit_example(), submit_example()
    assert erase_report(_id_of(erased), actor="test", rule="RET-0D")
    _forget_digests(kept, erased)
    assert [r["reference"] for r in reports_by_reporter(COUNSELOR_EMAIL)] == [filled]

    _migrate_from_0005()

    assert _digest(kept) == reporter_digest(COUNSELOR_EMAIL) == _digest(filled)
    assert _digest(erased) == "-"  # content gone: matches no address
    assert {r["reference"] for r in reports_by_reporter(COUNSELOR_EMAIL)} == {kept, filled}
    kept_id = _id_of(kept)
    with session_scope() as s:
        reads = s.exec(select(AuditEvent).where(AuditEvent.actor == ACTOR)).all()
        assert [(e.action, e.report_id) for e in reads] == [("content.read", kept_id)]
        assert json.loads(reads[0].details) == {"purpose": "reporter-index"}
        assert verify_chain(s).ok


def test_migration_with_nothing_to_fill_needs_no_keyring(
    db: str, office_hours: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = submit_example()

    def no_keyring() -> None:
        raise AssertionError("the keyring was loaded with nothing to fill")

    monkeypatch.setattr("orosflow.core.crypto.load_keyring", no_keyring)
    _migrate_from_0005()
    assert _digest(reference) == reporter_digest(COUNSELOR_EMAIL)
