"""Portal fixtures: the app behind an HTTP test client with one account per role, and a
report notified by real SMTP without Prefect. Helpers are in ``portal_support``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from orosflow.core.smtp_capture import MailCapture
from orosflow.identity import accounts

from portal_support import create_accounts, hand_over, submit_example


@pytest.fixture
def portal(db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The portal app on the test database, with one account per role (see portal_support)."""
    from orosflow.core.settings import reset_settings
    from orosflow.portal.app import create_app

    monkeypatch.setenv("OROSFLOW_TRIGGER_TIMEOUT", "0.5")  # no Prefect here: do not wait for it
    reset_settings()
    accounts.address_throttle.reset()
    create_accounts()
    with TestClient(create_app(), base_url="http://127.0.0.1:8000") as client:
        yield client


@pytest.fixture
async def notified_report(portal: TestClient, smtp: MailCapture, office_hours: None) -> str:
    """A not-acute report for Södermalm, notified by e-mail in office hours; its reference."""
    reference = submit_example()
    await hand_over(reference)
    return reference
