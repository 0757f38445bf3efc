"""The portal's side of sign-in through the organisation's IdP, without a provider: the button
and the routes exist only when it is configured, an unreachable IdP or a callback from another
browser is answered in Swedish and audited, and every sign-out is audited. The sign-in itself
runs against a real provider in ``tests/e2e/test_oidc_sign_in.py``."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, select

from models.tables import AuditEvent
from orosflow.core.db import session_scope
from orosflow.core.settings import reset_settings

from portal_support import login

BUTTON = "Logga in med organisationens konto"


def _details(action: str) -> list[dict[str, object]]:
    with session_scope() as s:
        rows = s.exec(
            select(AuditEvent).where(AuditEvent.action == action).order_by(col(AuditEvent.seq))
        ).all()
        return [json.loads(e.details) for e in rows]


@pytest.fixture
def oidc_portal(portal: TestClient, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The portal with an IdP configured that does not answer (port 9 on loopback)."""
    from orosflow.portal.app import create_app

    monkeypatch.setenv("OROSFLOW_OIDC_ISSUER", "http://127.0.0.1:9")
    monkeypatch.setenv("OROSFLOW_OIDC_CLIENT_ID", "orosflow")
    reset_settings()
    with TestClient(create_app(), base_url="http://127.0.0.1:8000") as client:
        yield client
    reset_settings()


def test_without_an_idp_there_is_no_button_and_no_route(portal: TestClient) -> None:
    assert BUTTON not in portal.get("/login").text
    assert portal.get("/login/oidc", follow_redirects=False).status_code == 404
    assert portal.get("/login/oidc/callback?code=a&state=b").status_code == 404


def test_the_login_page_offers_the_idp_and_says_when_it_cannot_be_reached(
    oidc_portal: TestClient,
) -> None:
    page = oidc_portal.get("/login?next=/intake")
    assert BUTTON in page.text and 'href="/login/oidc?next=/intake"' in page.text
    answer = oidc_portal.get("/login/oidc", follow_redirects=False)
    assert answer.status_code == 503
    assert "Identitetsleverantören kunde inte nås" in answer.text


def test_a_callback_in_a_browser_that_did_not_start_the_sign_in_is_refused(
    oidc_portal: TestClient,
) -> None:
    answer = oidc_portal.get("/login/oidc/callback?code=stolen&state=s", follow_redirects=False)
    assert answer.status_code == 401
    assert "startades i en annan webbläsare" in answer.text
    assert "orosflow_session" not in answer.headers.get("set-cookie", "")
    assert _details("login.refused") == [{"via": "oidc", "reason": "flow_unknown"}]


def test_signing_out_is_audited(portal: TestClient) -> None:
    csrf = login(portal, "anna.revisor")
    answer = portal.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login?logged_out=1"
    assert _details("logout") == [{"via": "local"}]
