"""The log filter masks personal data in every record, whichever logger prints it."""

from __future__ import annotations

import logging

import pytest

from orosflow import redaction


@pytest.fixture(autouse=True)
def installed() -> None:
    redaction.install()


def test_registered_values_personnummer_and_email_are_masked(caplog) -> None:
    redaction.register_sensitive(["Zelmira Quistgaard", "Hemligvägen 77B"])
    log = logging.getLogger("some.library.future_change")
    with caplog.at_level(logging.INFO):
        log.info(
            "child %s at %s, pnr %s, mail %s",
            "Zelmira Quistgaard",
            "Hemligvägen 77B",
            "120315-1236",
            "kim@example.se",
        )
        log.info("12-digit 201203151236 and reference OA-2026-000123 stays")
    text = caplog.text
    for secret in ("Zelmira", "Hemligvägen", "120315-1236", "201203151236", "kim@example.se"):
        assert secret not in text
    assert text.count(redaction.MASK) == 5
    assert "OA-2026-000123" in text


def test_exception_text_is_masked(caplog) -> None:
    redaction.register_sensitive(["Ottilia Quistgaard"])
    with caplog.at_level(logging.ERROR):
        try:
            raise ValueError("bad child Ottilia Quistgaard")
        except ValueError:
            logging.getLogger("orosflow.x").exception("failed")
    assert "Ottilia" not in caplog.text
    assert "ValueError" in caplog.text


def test_install_is_idempotent() -> None:
    factory = logging.getLogRecordFactory()
    redaction.install()
    assert logging.getLogRecordFactory() is factory
