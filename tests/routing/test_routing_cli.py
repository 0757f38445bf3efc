"""`orosflow route`: JSON in, decision JSON out; errors exit 2 with a JSON error."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from routing.cli import main

DECISION_KEYS = {
    "municipality",
    "municipality_name",
    "unit_kind",
    "unit_id",
    "unit_name",
    "phone_required",
    "phone",
    "email",
    "portal_group",
    "channel_verified",
    "rule",
    "explanation",
    "directory_version",
    "also",
}


def run(payload: str, argv: list[str] | None = None) -> tuple[int, Any]:
    out = io.StringIO()
    code = main(argv or [], stdin=io.StringIO(payload), stdout=out)
    text = out.getvalue()
    return code, json.loads(text) if text.strip() else None


def test_valid_input_prints_decision() -> None:
    code, data = run(
        json.dumps(
            {
                "municipality": "0180",
                "district": "Södermalm",
                "staying_municipality": None,
                "clinic_municipality": "0180",
                "urgency": "acute",
                "protected_identity": False,
                "placed_by": "1980",
                "at": "2026-12-24T10:00:00+01:00",
            }
        )
    )
    assert code == 0
    assert DECISION_KEYS <= set(data)
    assert (data["municipality"], data["unit_kind"], data["rule"]) == (
        "0180",
        "socialjour",
        "R-OUT-OF-HOURS",
    )
    assert data["phone_required"] is True
    assert [a["municipality"] for a in data["also"]] == ["1980"]
    assert DECISION_KEYS <= set(data["also"][0])


def test_file_argument_and_default_time(tmp_path: Path) -> None:
    path = tmp_path / "req.json"
    path.write_text('{"municipality": "1980", "clinic_municipality": "0180"}', encoding="utf-8")
    code, data = run("", [str(path)])
    assert code == 0
    assert data["municipality"] == "1980"
    assert data["unit_kind"] in {"intake", "socialjour"}


def test_output_is_not_ascii_escaped() -> None:
    out = io.StringIO()
    main(
        [], stdin=io.StringIO('{"municipality": "1980", "clinic_municipality": "0180"}'), stdout=out
    )
    assert "Västerås" in out.getvalue()


@pytest.mark.parametrize(
    ("payload", "field", "value", "kind"),
    [
        (
            '{"municipality": "9999", "clinic_municipality": "0180"}',
            "municipality",
            "9999",
            "unknown_code",
        ),
        ('{"clinic_municipality": "0000"}', "clinic_municipality", "0000", "unknown_code"),
        (
            '{"municipality": "0114", "placed_by": "1234", "clinic_municipality": "0180"}',
            "placed_by",
            "1234",
            "unknown_code",
        ),
        (
            '{"municipality": "0180", "district": "Atlantis", "clinic_municipality": "0180"}',
            "district",
            "Atlantis",
            "unknown_code",
        ),
        (
            '{"clinic_municipality": "0180", "at": "2026-12-24T10:00:00"}',
            "at",
            "2026-12-24T10:00:00",
            "naive_datetime",
        ),
        (
            '{"clinic_municipality": "0180", "placedby": "0114"}',
            "placedby",
            "0114",
            "extra_forbidden",
        ),
        ('{"municipality": "0114"}', "clinic_municipality", None, "missing"),
        ('{"clinic_municipality": "0180", "urgency": "soon"}', "urgency", "soon", "literal_error"),
        ('{"clinic_municipality": ', None, None, "bad_json"),
        ("[1, 2]", None, None, "bad_json"),
    ],
)
def test_errors_exit_2_with_json(
    capsys: pytest.CaptureFixture[str], payload: str, field: str | None, value: Any, kind: str
) -> None:
    code, data = run(payload)
    assert code == 2
    err = data["error"]
    assert (err["field"], err["code"], err["kind"]) == (field, value, kind)
    assert err["message"]
    stderr = capsys.readouterr().err
    assert stderr.startswith("orosflow route: ")
    assert err["message"] in stderr


def test_help_documents_optional_keys() -> None:
    out = io.StringIO()
    assert main(["--help"], stdin=io.StringIO(""), stdout=out) == 0
    text = out.getvalue()
    for key in (
        "placed_by",
        "unaccompanied",
        "assigned_municipality",
        "arrival_municipality",
        "at",
    ):
        assert key in text


def test_module_entry_point() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "routing.cli"],
        input='{"municipality": "0999", "clinic_municipality": "0180"}',
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["error"]["code"] == "0999"
    assert "Okänd kommunkod" in proc.stderr
