"""Test data: valid forms and personal numbers made with the same library the product uses."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

from personnummer import personnummer

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "report.json"


def pnr(birth: date, serial: str = "123", coordination: bool = False, long: bool = True) -> str:
    """A checksum-valid personnummer (or samordningsnummer: day + 60) for ``birth``."""
    day = birth.day + (60 if coordination else 0)
    stem = f"{birth.year:04d}{birth.month:02d}{day:02d}{serial}"
    for check in range(10):
        candidate = f"{stem[:8]}-{stem[8:]}{check}"
        if personnummer.valid(candidate):
            return candidate if long else candidate[2:]
    raise AssertionError("no check digit found")


def form(**overrides: Any) -> dict[str, Any]:
    """The example form (one child, not acute) with top-level overrides."""
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    data = copy.deepcopy(data)
    data.update(overrides)
    return data


def child(**overrides: Any) -> dict[str, Any]:
    base = copy.deepcopy(form()["children"][0])
    base.update(overrides)
    return base


# Strings that must never leave the encrypted store (scan tests look for them).
SECRET_NAME = "Zelmira Quistgaard"
SECRET_ADDRESS = "Hemligvägen 77B"
SECRET_CONCERN = "Pappan slog henne med en stekpanna i tisdags"
SECRET_SCHOOL = "Vintergatans hemliga skola"
