"""The `orosflow` command as a user runs it: validate, submit, route."""

from __future__ import annotations

import json

from sqlmodel import select

from models.tables import Report
from orosflow.core.db import session_scope

from factories import EXAMPLE, form
from support import run_cli


def test_validate_prints_normalised_form() -> None:
    out = run_cli("validate", str(EXAMPLE))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["children"][0]["personal_number"] == "201203151236"


def test_validate_exits_2_with_field_errors(tmp_path) -> None:
    bad = form(urgency="maybe")
    bad["children"][0]["personal_number"] = "20120315-1237"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad), encoding="utf-8")
    out = run_cli("validate", str(path))
    assert out.returncode == 2
    errors = json.loads(out.stdout)
    assert {e["field"] for e in errors} == {"urgency", "children.0.personal_number"}
    assert all(set(e) == {"field", "code", "message"} for e in errors)
    assert "inget har sparats" in out.stderr


def test_validate_reports_unreadable_input(tmp_path) -> None:
    (tmp_path / "x.json").write_text("{not json", encoding="utf-8")
    out = run_cli("validate", str(tmp_path / "x.json"))
    assert out.returncode == 2 and json.loads(out.stdout)[0]["code"] == "json_invalid"
    out = run_cli("validate", str(tmp_path / "missing.json"))
    assert out.returncode == 2 and json.loads(out.stdout)[0]["code"] == "file_not_found"


def test_submit_gives_receipt_even_when_prefect_is_down(sqlite_db: str) -> None:
    out = run_cli(
        "submit",
        str(EXAMPLE),
        env={"PREFECT_API_URL": "http://127.0.0.1:9/api", "OROSFLOW_TRIGGER_TIMEOUT": "3"},
    )
    assert out.returncode == 0, out.stderr
    receipt = json.loads(out.stdout)
    ref = receipt["reports"][0]["reference"]
    assert receipt["flow_runs"] == {receipt["reports"][0]["report_id"]: None}
    assert "Prefect kunde inte nås" in out.stderr
    with session_scope() as s:
        report = s.exec(select(Report).where(Report.reference == ref)).one()
    assert report.flow_run_id is None  # the reconciler will start it


def test_submit_invalid_stores_nothing(sqlite_db: str, tmp_path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(form(urgency="x")), encoding="utf-8")
    out = run_cli("submit", str(path), "--no-flow")
    assert out.returncode == 2
    with session_scope() as s:
        assert s.exec(select(Report)).all() == []


def test_route_command_is_wired() -> None:
    req = {
        "municipality": "1980",
        "clinic_municipality": "1980",
        "urgency": "not_acute",
        "at": "2026-11-23T10:00:00+01:00",
    }
    out = run_cli("route", stdin=json.dumps(req))
    assert out.returncode == 0, out.stderr
    decision = json.loads(out.stdout)
    assert decision["municipality"] == "1980" and decision["unit_kind"] == "intake"
    bad = run_cli("route", stdin=json.dumps({**req, "municipality": "0999"}))
    assert bad.returncode == 2
