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
    "opens_at",
    "written",
    "hours_verified",
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
    # Julafton 10:00, acute: the city's socialjour by phone (hours unknown: reachable), the
    # written report to the district for 28 December, and the placing municipality's jour.
    assert data["opens_at"] is None
    assert [(a["municipality"], a["unit_id"], a["rule"]) for a in data["also"]] == [
        ("0180", "sdf-sodermalm", "R-WRITTEN-NEXT-OPENING"),
        ("1980", "sj-vasteras", "R-PLACED-BY"),
    ]
    assert data["also"][0]["opens_at"] == "2026-12-28T08:00:00+01:00"
    # Västerås' jour opens 15:00 on holidays and eves: closed at 10:00, so 112.
    assert (data["also"][1]["phone"], data["also"][1]["opens_at"]) == (
        "112",
        "2026-12-24T15:00:00+01:00",
    )
    assert data["also"][1]["also"][0]["opens_at"] == "2026-12-28T08:00:00+01:00"
    for decision in (data["also"][0], data["also"][1], data["also"][1]["also"][0]):
        assert DECISION_KEYS <= set(decision)


@pytest.mark.parametrize(
    ("payload", "top", "also"),
    [
        (
            {"municipality": "0114", "at": "2026-11-24T10:00:00+01:00"},
            None,
            [],
        ),
        (
            {"municipality": "0114", "placed_by": "1980", "at": "2026-11-24T17:30:00+01:00"},
            "2026-11-25T08:00:00+01:00",
            ["2026-11-25T08:00:00+01:00"],
        ),
        (
            {"municipality": "0114", "placed_by": "1980", "at": "2026-11-24T10:00:00+01:00"},
            None,
            [None],
        ),
        (
            {"municipality": "1980", "urgency": "acute", "at": "2026-11-24T02:00:00+01:00"},
            "2026-11-24T16:30:00+01:00",
            ["2026-11-24T08:00:00+01:00"],
        ),
    ],
)
def test_opens_at_is_printed_on_every_decision(
    payload: dict[str, str], top: str | None, also: list[str | None]
) -> None:
    """opens_at is always a key, null when the unit is open, at the top and in ``also``."""
    code, data = run(json.dumps({"clinic_municipality": "0180", **payload}))
    assert code == 0
    assert "opens_at" in data and data["opens_at"] == top
    assert [a["opens_at"] for a in data["also"]] == also
    for decision in [data, *data["also"]]:
        assert {"opens_at", "written", "hours_verified"} <= set(decision)
        assert isinstance(decision["written"], bool)
        assert isinstance(decision["hours_verified"], bool)


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
        "opens_at",
        "written",
        "hours_verified",
    ):
        assert key in text
    assert "läses tidigast" in text


def test_module_docstring_documents_opens_at() -> None:
    """The English help (module docstring) names the output fields too."""
    import routing.cli

    doc = routing.cli.__doc__ or ""
    for key in ("opens_at", "written", "hours_verified", "also"):
        assert key in doc


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
