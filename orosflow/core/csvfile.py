"""The one CSV writer for every export, in Swedish conventions so a file opens right in Excel
with Swedish settings: semicolon-separated with decimal commas (comma-separated with decimal
points on request), UTF-8 with a byte-order mark (else Excel reads å, ä, ö as Latin-1), CRLF
line ends, times in Europe/Stockholm with their offset (``2026-11-26T10:42:00+01:00``), and no
cell a spreadsheet would run as a formula (OWASP CSV injection)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from routing.hours import TZ

#: ``?sep=`` values: Swedish Excel's default, and the comma for other programs.
SEPARATORS: dict[str, str] = {"semicolon": ";", "comma": ","}
DEFAULT_SEPARATOR = "semicolon"
BOM = "\ufeff"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class UnknownSeparator(ValueError):
    """``sep`` is neither ``semicolon`` nor ``comma`` (callers answer 400/422 in Swedish)."""

    message = "Okänd avgränsare: välj semicolon (standard, för Excel) eller comma."


def parse_separator(value: str | None) -> str:
    """The separator name from a query string; empty means the default (semicolon)."""
    name = (value or DEFAULT_SEPARATOR).strip().lower()
    if name not in SEPARATORS:
        raise UnknownSeparator(name)
    return name


def csv_cell(value: Any, *, sep: str = DEFAULT_SEPARATOR) -> str:
    """One cell: times in Stockholm with offset, ja/nej, decimal comma with semicolons, and
    text starting with = + - @ (or tab/CR) behind an apostrophe so it is never a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "ja" if value else "nej"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime in a CSV export")
        return value.astimezone(TZ).isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = str(int(value)) if value.is_integer() else repr(value)
        return text.replace(".", ",") if SEPARATORS[sep] == ";" else text
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def write_csv(
    header: Sequence[str], rows: Iterable[Sequence[Any]], *, sep: str = DEFAULT_SEPARATOR
) -> str:
    """The whole file: BOM, header, one line per row (cells through :func:`csv_cell`)."""
    buf = io.StringIO()
    buf.write(BOM)
    writer = csv.writer(buf, delimiter=SEPARATORS[sep], lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([csv_cell(v, sep=sep) for v in row] for row in rows)
    return buf.getvalue()
