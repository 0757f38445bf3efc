"""Errors raised by the router; messages are Swedish because counselors and operators read them."""

from __future__ import annotations

FIELD_LABELS: dict[str, str] = {
    "municipality": "bostadskommun",
    "district": "stadsdelsområde",
    "staying_municipality": "vistelsekommun",
    "clinic_municipality": "mottagningens kommun",
    "placed_by": "placerande kommun",
    "assigned_municipality": "anvisningskommun",
    "arrival_municipality": "ankomstkommun",
    "unit_id": "enhet",
    "at": "tidpunkt",
}


class DirectoryError(Exception):
    """A directory or channels file is broken; start-up must stop rather than route wrongly."""


class UnknownCodeError(ValueError):
    """A request names a municipality (or district) that the directory does not know."""

    def __init__(self, field: str, code: str, message: str | None = None) -> None:
        self.field = field
        self.code = code
        label = FIELD_LABELS.get(field, field)
        if message is None:
            message = (
                f"Okänd kommunkod för {label} ({field}): {code!r}. Ange en av Sveriges 290 "
                "kommunkoder med fyra siffror, t.ex. 0180 för Stockholm."
            )
        self.message = message
        super().__init__(message)
