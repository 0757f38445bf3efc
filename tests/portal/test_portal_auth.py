"""Sign-in, sessions, CSRF, throttling, roles and security headers of the portal."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from models.tables import AuditEvent
from orosflow.core.clock import set_clock, utcnow
from orosflow.core.db import session_scope
from orosflow.identity import accounts, throttle
from orosflow.identity.accounts import AccountError

from portal_support import PASSWORD, api_headers, csrf_of, login


def test_login_lands_each_role_on_its_home(portal: TestClient) -> None:
    for username, home in [
        ("kim.kurator", "/my/reports"),
        ("sara.sodermalm", "/intake"),
        ("anna.revisor", "/audit"),
        ("adam.admin", "/admin/users"),
    ]:
        portal.cookies.clear()
        page = portal.get("/login")
        resp = portal.post(
            "/login",
            data={"username": username, "password": PASSWORD, "csrf_token": csrf_of(page.text)},
            follow_redirects=False,
        )
        assert resp.status_code == 303 and resp.headers["location"] == home
        cookie = resp.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")


def test_wrong_password_is_refused_in_swedish_and_never_locks_the_account(
    portal: TestClient,
) -> None:
    for _ in range(5):
        page = portal.get("/login")
        resp = portal.post(
            "/login",
            data={"username": "kim.kurator", "password": "fel", "csrf_token": csrf_of(page.text)},
        )
        assert resp.status_code == 401
        assert "Fel användarnamn eller lösenord" in resp.text
    assert accounts.login_throttle.wait_left("kim.kurator", "testclient") > 0  # this pair waits
    other = TestClient(portal.app, base_url="http://127.0.0.1:8000", client=("192.0.2.1", 1))
    login(other, "kim.kurator")  # the account itself is not locked
    with session_scope() as s:
        throttled = s.exec(select(AuditEvent).where(AuditEvent.action == "login.throttled")).all()
    assert len(throttled) == 1


def test_address_throttle_stops_guessing_across_accounts(
    portal: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(throttle, "ADDRESS_FAILURES", 10)
    statuses = []
    for i in range(throttle.ADDRESS_FAILURES + 1):
        page = portal.get("/login")
        statuses.append(
            portal.post(
                "/login",
                data={
                    "username": f"gissning{i}",
                    "password": "x",
                    "csrf_token": csrf_of(page.text),
                },
            ).text
        )
    assert "För många misslyckade inloggningsförsök" in statuses[-1]
    assert "För många misslyckade inloggningsförsök" not in statuses[0]


def test_login_without_its_csrf_token_is_refused(portal: TestClient) -> None:
    portal.get("/login")
    resp = portal.post("/login", data={"username": "kim.kurator", "password": PASSWORD})
    assert resp.status_code == 403
    assert "Säkerhetskoden" in resp.text
    assert portal.get("/admin/users", follow_redirects=False).status_code == 303


def test_post_without_session_csrf_is_refused_and_changes_nothing(portal: TestClient) -> None:
    login(portal, "adam.admin")
    resp = portal.post("/admin/users/kim.kurator/disable", data={})
    assert resp.status_code == 403 and "CSRF" in resp.text
    assert {u["username"]: u["active"] for u in accounts.list_users()}["kim.kurator"] is True


def test_admin_disables_account_which_ends_its_sessions(portal: TestClient) -> None:
    other = TestClient(portal.app, base_url="http://127.0.0.1:8000")
    login(other, "kim.kurator")
    assert other.get("/admin/users", follow_redirects=False).status_code == 403  # signed in
    csrf = login(portal, "adam.admin")
    resp = portal.post("/admin/users/kim.kurator/disable", data={"csrf_token": csrf})
    assert resp.status_code == 200 and "avstängt" in resp.text
    assert other.get("/admin/users", follow_redirects=False).status_code == 303  # signed out


def test_pages_need_login_and_the_right_role(portal: TestClient) -> None:
    resp = portal.get("/admin/users", follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"].startswith("/login?next=")
    login(portal, "kim.kurator")
    assert portal.get("/admin/users").status_code == 403


def test_session_ends_after_idle_timeout(portal: TestClient) -> None:
    login(portal, "adam.admin")
    assert portal.get("/admin/users", follow_redirects=False).status_code == 200
    later = utcnow() + timedelta(minutes=31)
    set_clock(lambda: later)
    try:
        assert portal.get("/admin/users", follow_redirects=False).status_code == 303
    finally:
        set_clock(None)


def test_logout_ends_the_session(portal: TestClient) -> None:
    csrf = login(portal, "adam.admin")
    resp = portal.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert resp.status_code == 303
    assert portal.get("/admin/users", follow_redirects=False).status_code == 303


def test_login_redirect_only_to_same_site(portal: TestClient) -> None:
    page = portal.get("/login?next=//evil.example/x")
    resp = portal.post(
        "/login",
        data={
            "username": "adam.admin",
            "password": PASSWORD,
            "csrf_token": csrf_of(page.text),
            "next": "//evil.example/x",
        },
        follow_redirects=False,
    )
    assert resp.headers["location"] == "/admin/users"


def test_security_headers_on_pages_and_api(portal: TestClient) -> None:
    for path in ("/login", "/api/v1/admin/users", "/no-such-page"):
        resp = portal.get(path)
        assert "default-src 'self'" in resp.headers["content-security-policy"]
        assert resp.headers["x-frame-options"] == "DENY"
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert resp.headers["referrer-policy"] == "no-referrer"
        assert resp.headers["cache-control"] == "no-store"


def test_api_needs_a_valid_token_and_role(portal: TestClient) -> None:
    resp = portal.get("/api/v1/admin/users")
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "unauthenticated"
    resp = portal.get("/api/v1/admin/users", headers={"Authorization": "Bearer fel"})
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "invalid_token"
    resp = portal.get("/api/v1/admin/users", headers=api_headers("kim.kurator"))
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "forbidden"
    headers = api_headers("adam.admin")
    users = portal.get("/api/v1/admin/users", headers=headers).json()
    assert {u["username"] for u in users} >= {"kim.kurator", "anna.revisor"}
    accounts.disable_user("adam.admin")
    assert portal.get("/api/v1/admin/users", headers=headers).status_code == 401


def test_openapi_documents_the_api(portal: TestClient) -> None:
    spec = portal.get("/api/openapi.json").json()
    assert spec["info"]["title"] == "Orosflow API"
    assert "/api/v1/admin/users" in spec["paths"]
    assert not any(p.startswith("/login") for p in spec["paths"])
    assert portal.get("/api/docs").status_code == 200


def test_passwords_are_argon2_and_rules_enforced(portal: TestClient) -> None:
    from models.accounts import UserAccount

    with session_scope() as s:
        user = s.exec(select(UserAccount).where(UserAccount.username == "kim.kurator")).one()
    assert user.password_hash and user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    with pytest.raises(AccountError) as err:
        accounts.add_user("kort", display_name="K", role="auditor", password="kort")
    assert err.value.code == "password_too_short"
    with pytest.raises(AccountError) as err:
        accounts.add_user("x.y", display_name="X", role="intake", password=PASSWORD, units=["nej"])
    assert err.value.code == "unit_unknown"


def test_every_form_carries_the_sessions_csrf_token(
    portal: TestClient, notified_report: str
) -> None:
    """A form rendered with an empty token would be refused when a person posts it."""
    pages = {
        "kim.kurator": ["/reports/new", "/my/reports", f"/my/reports/{notified_report}"],
        "sara.sodermalm": ["/intake", f"/intake/reports/{notified_report}"],
        "anna.revisor": ["/audit", f"/audit/reports/{notified_report}", "/audit/stats"],
        "adam.admin": ["/admin/users"],
    }
    for username, paths in pages.items():
        token = login(portal, username)
        for path in paths:
            page = portal.get(path)
            assert page.status_code == 200, (username, path)
            assert csrf_of(page.text) == token, (username, path)
