"""Issue 15, item 2: erasure that holds against deleted pages and backups.

An erased report's wrapped key must not stay in SQLite's free pages or WAL, and a copy of the
database taken before the erasure must not bring the report back once its period's
key-encryption key is destroyed."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import make_url
from sqlmodel import select

from models.tables import AuditEvent, ChildRecord, Report, ReportKey, ReportStatus
from orosflow.core.audit import verify_chain
from orosflow.core.clock import set_clock
from orosflow.core.crypto import load_keyring
from orosflow.core.db import checkpoint_sqlite, get_engine, reset_engine, session_scope
from orosflow.core.keys import rewrap_into_periods, rotate_master_key
from orosflow.core.periodkeys import PeriodKeyDestroyed, PeriodKeyMissing, unwrap_report_key
from orosflow.core.settings import reset_settings
from orosflow.handover.content import ReportErased, read_report
from orosflow.handover.retention import destroy_expired_periods, erase_expired, erase_report
from orosflow.handover.submission import submit

from factories import form
from support import run_cli


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


# --- period keys: a backup from before an erasure ---------------------------------------------

STHLM = ZoneInfo("Europe/Stockholm")


@pytest.fixture
def keystore(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A period key file of the test's own (destroyed periods must not leak into others), a
    30-day retention and the default 35-day backup life."""
    path = tmp_path / "keys" / "period-keys.json"
    monkeypatch.setenv("OROSFLOW_PERIOD_KEY_FILE", str(path))
    monkeypatch.setenv("OROSFLOW_RETENTION_DAYS", "30")
    monkeypatch.delenv("OROSFLOW_BACKUP_DAYS", raising=False)
    reset_settings()
    yield path
    set_clock(None)
    reset_settings()


def at(day: str) -> None:
    """Set the clock to noon of ``day`` in Stockholm."""
    moment = datetime.fromisoformat(f"{day}T12:00").replace(tzinfo=STHLM)
    set_clock(lambda: moment.astimezone(UTC))


def backup(dest: Path) -> Path:
    """A consistent copy of the live SQLite database (what a nightly backup takes)."""
    src = sqlite3.connect(make_url(get_engine().url).database or "")
    dst = sqlite3.connect(dest)
    with dst:
        src.backup(dst)
    src.close()
    dst.close()
    return dest


def read(report_id: str) -> str:
    with session_scope() as s:
        content = read_report(s, report_id, keyring=load_keyring(), actor="t", purpose="test")
        return content.child.name


@contextmanager
def restored(copy: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run against the restored copy, with today's key store (master key and period keys)."""
    live = os.environ["OROSFLOW_DATABASE_URL"]
    monkeypatch.setenv("OROSFLOW_DATABASE_URL", f"sqlite:///{copy}")
    reset_settings()
    reset_engine()
    try:
        yield
    finally:
        monkeypatch.setenv("OROSFLOW_DATABASE_URL", live)
        reset_engine()
        reset_settings()


def test_backup_from_before_erasure_is_unreadable_once_the_period_key_is_destroyed(
    sqlite_db: str, keystore: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at("2026-01-15")
    january = submit(form(), actor="t").reports[0].report_id
    at("2026-03-10")
    march = submit(form(), actor="t").reports[0].report_id
    name = read(january)
    with session_scope() as s:
        assert s.get(ReportKey, january).period == "2026-01"
        assert s.get(ReportKey, march).period == "2026-03"
    assert stat.S_IMODE(keystore.stat().st_mode) == 0o600
    assert set(json.loads(keystore.read_text())["keys"]) == {"2026-01", "2026-03"}
    copy = backup(tmp_path / "backup-2026-03-10.db")  # taken before the erasure

    at("2026-04-05")  # January is past its 30 days; its key lives until 1 Feb + 30 + 35 days
    assert erase_expired() == [january]
    assert destroy_expired_periods() == []
    with session_scope() as s, pytest.raises(ReportErased):
        read_report(s, january, keyring=load_keyring(), actor="t", purpose="t")
    with restored(copy, monkeypatch):
        assert read(january) == name  # the old backup still brings it back (backup life)

    at("2026-04-08")  # 2026-02-01 + 65 days = 2026-04-07: January's key goes
    assert destroy_expired_periods() == ["2026-01"]
    assert destroy_expired_periods() == []  # idempotent
    assert "2026-01" not in json.loads(keystore.read_text())["keys"]
    with restored(copy, monkeypatch):
        with session_scope() as s:
            assert s.get(Report, january).status != ReportStatus.ERASED  # the backup's view
        with pytest.raises(PeriodKeyDestroyed):
            read(january)
        assert read(march)  # a still-live period in the same backup reads as before
    with session_scope() as s:
        event = s.exec(select(AuditEvent).where(AuditEvent.action == "key.period_destroyed")).one()
        assert event.report_id is None
        details = json.loads(event.details)
        assert details["period"] == "2026-01" and details["erased_now"] == 0
        assert name not in event.details and "2026-01-15" not in event.details
    assert read(march)


def test_a_destroyed_period_never_gets_a_new_key(sqlite_db: str, keystore: Path) -> None:
    """A clock set back into a destroyed period refuses to store, instead of making a key that
    the next sweep would destroy with the fresh report under it."""
    at("2026-01-15")
    submit(form(), actor="t")
    at("2026-04-08")
    assert destroy_expired_periods() == ["2026-01"]
    # A key destroyed without its event (another process, a failed commit) is audited late.
    with session_scope() as s:
        for e in s.exec(select(AuditEvent).where(AuditEvent.action == "key.period_destroyed")):
            s.delete(e)  # not possible in a real chain; stands for the lost event
    assert destroy_expired_periods() == []
    with session_scope() as s:
        events = s.exec(select(AuditEvent).where(AuditEvent.action == "key.period_destroyed")).all()
        assert [json.loads(e.details)["period"] for e in events] == ["2026-01"]
    assert destroy_expired_periods() == []
    with session_scope() as s:
        assert (
            len(s.exec(select(AuditEvent).where(AuditEvent.action == "key.period_destroyed")).all())
            == 1
        )
    at("2026-01-20")
    with pytest.raises(PeriodKeyDestroyed):
        submit(form(), actor="t")
    with session_scope() as s:
        assert len(s.exec(select(Report)).all()) == 1  # nothing stored


def test_reports_wrapped_by_the_master_key_alone_still_read(sqlite_db: str, keystore) -> None:
    """Rows from before period keys (``period`` NULL) keep working."""
    at("2026-01-15")
    rid = submit(form(), actor="t").reports[0].report_id
    name = read(rid)
    ring = load_keyring()
    with session_scope() as s:
        row = s.get(ReportKey, rid)
        data_key = unwrap_report_key(ring, row.master_key_id, row.wrapped_key, rid, row.period)
        row.master_key_id, row.wrapped_key = ring.wrap(data_key, rid)  # the old format
        row.period = None
        s.add(row)
    assert read(rid) == name
    at("2026-02-01")
    assert rewrap_into_periods() == {"moved": 1, "skipped": 0}  # `orosflow keys rewrap`
    with session_scope() as s:
        assert s.get(ReportKey, rid).period == "2026-01"
    assert read(rid) == name
    rotate_master_key()  # re-wraps the master layer only; the period layer stays
    assert read(rid) == name
    at("2026-04-08")
    assert destroy_expired_periods() == ["2026-01"]  # erases what retention had left, too
    with session_scope() as s:
        assert s.get(Report, rid).status == ReportStatus.ERASED


# --- the command line ---------------------------------------------------------------------------


def _state() -> dict[str, object]:
    """Everything an erasure would change: statuses, key/content rows, audit events."""
    with session_scope() as s:
        return {
            "reports": sorted((r.reference, r.status) for r in s.exec(select(Report)).all()),
            "keys": len(s.exec(select(ReportKey)).all()),
            "children": len(s.exec(select(ChildRecord)).all()),
            "events": len(s.exec(select(AuditEvent)).all()),
        }


def test_reports_erase_on_a_decision(sqlite_db: str, keystore: Path) -> None:
    at("2026-11-20")
    gone, kept = (submit(form(), actor="t").reports[0] for _ in range(2))
    name = read(gone.report_id)
    before = _state()

    bad_ref = run_cli("reports", "erase", "OA-2026-999999", "--reason", "beslut")
    assert bad_ref.returncode == 2
    assert "Det finns ingen anmälan med nummer OA-2026-999999" in bad_ref.stderr
    assert json.loads(bad_ref.stdout)["error"]["fields"] == ["reference"]
    for reason in ("glömska", None):
        args = ["--reason", reason] if reason else []
        bad = run_cli("reports", "erase", gone.reference, *args)
        assert bad.returncode == 2, bad.stderr
        assert "beslut, felregistrerad, dubblett" in bad.stderr
        assert "Inget har raderats" in bad.stderr
        assert json.loads(bad.stdout)["error"]["code"] == "reason_unknown"
    assert _state() == before  # nothing changed, nothing audited

    ok = run_cli("reports", "erase", gone.reference.lower(), "--reason", "felregistrerad")
    assert ok.returncode == 0, ok.stderr
    assert f"Anmälan {gone.reference} är raderad" in ok.stderr
    assert json.loads(ok.stdout) == {
        "reference": gone.reference,
        "erased": True,
        "reason": "felregistrerad",
    }
    with session_scope() as s:
        assert s.get(Report, gone.report_id).status == ReportStatus.ERASED
        assert s.get(Report, gone.report_id).payload_enc == b""
        assert s.get(ReportKey, gone.report_id) is None
        assert not s.exec(select(ChildRecord).where(ChildRecord.report_id == gone.report_id)).all()
        event = s.exec(
            select(AuditEvent).where(
                AuditEvent.action == "report.erased", AuditEvent.report_id == gone.report_id
            )
        ).one()
        assert event.actor.startswith("cli:") and event.rule == "ERASE-FELREGISTRERAD"
        details = json.loads(event.details)
        assert details["reason"] == "felregistrerad" and details["reference"] == gone.reference
        assert name not in event.details
        assert verify_chain(s).ok
    with session_scope() as s, pytest.raises(ReportErased):
        read_report(s, gone.report_id, keyring=load_keyring(), actor="t", purpose="t")
    assert read(kept.report_id) == name

    again = run_cli("reports", "erase", gone.reference, "--reason", "felregistrerad")
    assert again.returncode == 0 and "redan raderad" in again.stderr


def test_keys_lists_periods_counts_and_destruction_dates(sqlite_db: str, keystore: Path) -> None:
    at("2026-01-15")
    submit(form(), actor="t")
    at("2026-03-10")
    for _ in range(2):
        submit(form(), actor="t")
    at("2026-04-08")
    erase_expired()
    assert destroy_expired_periods() == ["2026-01"]
    set_clock(None)  # the subprocess runs on the real clock (after 2026-06-05)
    now = submit(form(), actor="t").reports[0].report_id
    with session_scope() as s:
        current = s.get(ReportKey, now).period

    listing = run_cli("keys")
    assert listing.returncode == 0, listing.stderr
    rows = {r["period"]: r for r in json.loads(listing.stdout)}
    assert rows["2026-01"]["state"] == "destroyed" and rows["2026-01"]["reports"] == 0
    assert rows["2026-03"]["reports"] == 2
    assert rows["2026-03"]["destroy_after"].startswith("2026-06-05")  # 1 Apr + 30 + 35 days
    assert set(rows["2026-03"]) == {
        "period",
        "reports",
        "state",
        "destroy_after",
        "destroyed_at",
    }  # counts and dates only, nothing of a report
    assert rows["2026-03"]["state"] == "destroy_due"
    assert rows[current]["state"] == "active" and rows[current]["reports"] == 1
    assert re.search(r"2026-03 +2 anmälningar +förstörs vid nästa gallringskörning", listing.stderr)
    assert re.search(r"2026-01 +0 anmälningar +förstörd 2026-04-08", listing.stderr)
    assert re.search(rf"{current} +1 anmälan +aktiv, förstörs \d{{4}}-", listing.stderr)
    assert run_cli("keys", "list").stdout == listing.stdout


def test_a_process_with_another_period_key_file_says_so(
    sqlite_db: str, keystore: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second machine with its own key file (not the shared one) is told what is wrong,
    not that the report was erased by retention."""
    rid = submit(form(), actor="t").reports[0].report_id
    monkeypatch.setenv("OROSFLOW_PERIOD_KEY_FILE", str(tmp_path / "other" / "period-keys.json"))
    reset_settings()
    with pytest.raises(PeriodKeyMissing, match="samma fil \\(OROSFLOW_PERIOD_KEY_FILE\\)"):
        read(rid)
