"""Issue 11, finding 12: a server whose key cannot read what it encrypts gives no receipt
(nothing is stored, the counselor is told why), and the portal does not start on an invalid
key."""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import func, select

from models.tables import AuditEvent, Report
from orosflow.core import crypto
from orosflow.core.db import session_scope
from orosflow.core.settings import reset_settings
from orosflow.handover import submission
from orosflow.handover.content import SealedReport

from factories import child, form
from portal_support import api_headers


@pytest.fixture(autouse=True)
def no_flow_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    async def start(items: list[tuple[str, str]], attempt: Any = None) -> dict[str, None]:
        return {rid: None for rid, _ in items}

    monkeypatch.setattr("orosflow.handover.trigger.start_flow_runs", start)


def count(table: Any, *where: Any) -> int:
    with session_scope() as s:
        return s.exec(select(func.count()).select_from(table).where(*where)).one()


def test_submit_is_refused_when_the_key_file_changes_underneath(
    portal: TestClient,
    office_hours: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The way it really happens: another process replaces the key file (a second start on a
    fresh install, a restored backup) after this one wrapped the report's key with its own.
    Before: a 201 receipt for a report nobody could ever open."""
    monkeypatch.setenv("OROSFLOW_KEY_FILE", str(tmp_path / "keys.json"))
    reset_settings()
    headers = api_headers("kim.kurator")
    ok = portal.post("/api/v1/reports", json=form(), headers=headers)
    assert ok.status_code == 201  # the same key throughout: accepted
    stored = count(Report)
    real_seal = submission.seal_form

    def seal_then_replace_key(*args: Any, **kwargs: Any) -> list[SealedReport]:
        sealed = real_seal(*args, **kwargs)
        other = crypto.Keyring(active="x", keys={}, path=tmp_path / "keys.json")
        other.add_and_activate()  # the file now holds a different key only
        return sealed

    monkeypatch.setattr(submission, "seal_form", seal_then_replace_key)
    caplog.set_level(logging.ERROR)
    other_child = form(children=[child(personal_number="20130101-0011", name="Annan Barnsson")])
    resp = portal.post("/api/v1/reports", json=other_child, headers=headers)
    assert resp.status_code == 500, resp.text
    error = resp.json()["error"]
    assert error["code"] == "server_key_mismatch"
    assert error["message"].startswith("Servern kan inte läsa det den krypterar")
    assert "inte sparats" in error["message"]
    assert count(Report) == stored  # nothing stored …
    assert count(AuditEvent, AuditEvent.action == "report.received") == stored  # … or audited
    assert any("master key cannot decrypt" in r.getMessage() for r in caplog.records)
    reset_settings()


def test_portal_does_not_start_on_an_invalid_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from orosflow.portal.app import create_app

    monkeypatch.setenv("OROSFLOW_SECRET_KEY", base64.b64encode(b"short").decode())
    reset_settings()
    with pytest.raises(SystemExit) as stopped:
        create_app()
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "Portalen kan inte starta: OROSFLOW_SECRET_KEY är ogiltig" in err
    assert "44 tecken" in err
    reset_settings()
