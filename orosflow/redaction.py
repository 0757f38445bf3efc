"""Keeps personal data out of every log record, whatever a future change prints.

Installed as the process-wide log record factory, so it sees every record from every logger
(ours, Prefect's, libraries') before any handler — including Prefect's API log handler that
ships logs to the server. It masks (1) every value registered as sensitive when a report was
validated or decrypted, (2) anything shaped like a personnummer/samordningsnummer, and
(3) every e-mail address (logs name units by id, never by address).
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable

MASK = "[skyddat]"
_MIN_LEN = 4
_MAX_VALUES = 20_000

_PNR = re.compile(r"(?<!\d)(?:\d{2})?\d{6}[-+ ]?\d{4}(?!\d)")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")

_lock = threading.Lock()
_values: OrderedDict[str, None] = OrderedDict()
_pattern: re.Pattern[str] | None = None
_installed = False


def register_sensitive(values: Iterable[str | None]) -> None:
    """Remember strings that must never appear in a log line (bounded, most recent kept)."""
    global _pattern
    changed = False
    with _lock:
        for value in values:
            if not value:
                continue
            for part in {value.strip(), *value.split("\n")}:
                part = part.strip()
                if len(part) >= _MIN_LEN and part not in _values:
                    _values[part] = None
                    changed = True
        while len(_values) > _MAX_VALUES:
            _values.popitem(last=False)
        if changed:
            ordered = sorted(_values, key=len, reverse=True)
            _pattern = re.compile("|".join(re.escape(v) for v in ordered)) if ordered else None


def redact(text: str) -> str:
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    text = _PNR.sub(MASK, text)
    return _EMAIL.sub(MASK, text)


def _wrap_factory(factory):  # type: ignore[no-untyped-def]
    def make_record(*args, **kwargs) -> logging.LogRecord:  # type: ignore[no-untyped-def]
        record = factory(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the record
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info:
            formatted = logging.Formatter().formatException(record.exc_info)
            record.exc_text, record.exc_info = redact(formatted), None
        return record

    make_record.__orosflow_redacting__ = True  # type: ignore[attr-defined]
    return make_record


def install() -> None:
    """Install the redacting record factory once per process (idempotent)."""
    global _installed
    current = logging.getLogRecordFactory()
    if getattr(current, "__orosflow_redacting__", False):
        _installed = True
        return
    logging.setLogRecordFactory(_wrap_factory(current))
    _installed = True
