"""The admin page: create an account (a one-time password shown once, or an IdP identity),
bind an intake officer's units, disable — each refused without the session's CSRF token, each
an audit event, through the same functions as ``orosflow users``."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient
from sqlmodel import col, select

from models.tables import AuditEvent
from orosflow.core.db import session_scope
from orosflow.identity import accounts

from portal_support import login


def audit(action: str) -> list[tuple[str, dict[str, object]]]:
    with session_scope() as s:
        rows = s.exec(
            select(AuditEvent).where(AuditEvent.action == action).order_by(col(AuditEvent.seq))
        ).all()
        return [(r.actor, json.loads(r.details)) for r in rows]


def by_name() -> dict[str, dict[str, object]]:
    return {str(u["username"]): u for u in accounts.list_users()}


NEW = {
    "username": "lisa.lund",
    "display_name": "Lisa Lund",
    "role": "intake",
    "email": "",
    "units": "sdf-sodermalm, sj-0180",
    "sign_in": "password",
    "external_id": "",
}


def test_admin_creates_an_account_with_a_one_time_password(portal: TestClient) -> None:
    csrf = login(portal, "adam.admin")
    # Without the token: refused, nothing created.
    resp = portal.post("/admin/users", data=NEW)
    assert resp.status_code == 403 and "CSRF" in resp.text
    resp = portal.post("/admin/users", data={**NEW, "csrf_token": "fel"})
    assert resp.status_code == 403
    assert "lisa.lund" not in by_name()

    resp = portal.post("/admin/users", data={**NEW, "csrf_token": csrf})
    assert resp.status_code == 200 and "Kontot lisa.lund är skapat" in resp.text
    match = re.search(r'<code id="one-time-password">([^<]+)</code>', resp.text)
    assert match and len(match.group(1)) >= 12
    lisa = by_name()["lisa.lund"]
    assert lisa["role"] == "intake" and lisa["units"] == ["sdf-sodermalm", "sj-0180"]
    assert lisa["sign_in"] == "password"
    # The new account signs in with it; the list page does not show it again.
    other = TestClient(portal.app, base_url="http://127.0.0.1:8000")
    login(other, "lisa.lund", match.group(1))
    assert other.get("/intake").status_code == 200
    assert match.group(1) not in portal.get("/admin/users").text
    created = audit("account.created")[-1]
    assert created[0] == "user:adam.admin" and created[1]["username"] == "lisa.lund"
    assert match.group(1) not in json.dumps(created)


def test_bad_input_is_refused_with_the_form_kept(portal: TestClient) -> None:
    csrf = login(portal, "adam.admin")
    resp = portal.post(
        "/admin/users", data={**NEW, "units": "ingen-sadan-enhet", "csrf_token": csrf}
    )
    assert resp.status_code == 400 and "Okänd enhet" in resp.text
    assert 'value="Lisa Lund"' in resp.text
    resp = portal.post("/admin/users", data={**NEW, "username": "kim.kurator", "csrf_token": csrf})
    assert resp.status_code == 400 and "finns redan" in resp.text
    assert "lisa.lund" not in by_name()


def test_admin_creates_an_idp_account_without_a_password(portal: TestClient) -> None:
    csrf = login(portal, "adam.admin")
    data = {
        **NEW,
        "username": "per.idp",
        "role": "auditor",
        "units": "",
        "sign_in": "external",
        "external_id": "https://login.example.se|abc-123",
        "csrf_token": csrf,
    }
    resp = portal.post("/admin/users", data=data)
    assert resp.status_code == 200 and "one-time-password" not in resp.text
    per = by_name()["per.idp"]
    assert per["sign_in"] == "external" and per["external_id"] == data["external_id"]
    again = portal.post("/admin/users", data={**data, "username": "per.tva"})
    assert again.status_code == 400 and "annat konto" in again.text


def test_admin_binds_units_and_disables(portal: TestClient) -> None:
    csrf = login(portal, "adam.admin")
    assert portal.post("/admin/users/sara.sodermalm/units", data={"units": "x"}).status_code == 403
    resp = portal.post(
        "/admin/users/sara.sodermalm/units",
        data={"units": "intake-0182 sdf-sodermalm", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    assert "Enheterna för sara.sodermalm är sparade" in portal.get(resp.headers["location"]).text
    assert by_name()["sara.sodermalm"]["units"] == ["intake-0182", "sdf-sodermalm"]
    assert audit("account.units_set")[-1][1]["before"] == ["sdf-sodermalm"]
    bad = portal.post(
        "/admin/users/anna.revisor/units", data={"units": "sdf-sodermalm", "csrf_token": csrf}
    )
    assert bad.status_code == 400 and "Bara mottagningshandläggare" in bad.text

    assert portal.post("/admin/users/sara.sodermalm/disable", data={}).status_code == 403
    assert by_name()["sara.sodermalm"]["active"] is True
    resp = portal.post("/admin/users/sara.sodermalm/disable", data={"csrf_token": csrf})
    assert resp.status_code == 200 and "Kontot sara.sodermalm är avstängt" in resp.text
    assert by_name()["sara.sodermalm"]["active"] is False
    # The notice names only real accounts: arbitrary text in the address is not repeated.
    page = portal.get("/admin/users?done=disabled&account=Ring+0701234567")
    assert "0701234567" not in page.text
