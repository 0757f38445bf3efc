"""The embedded run's helpers: demo accounts that sign in, and the dev view of captured mail."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from orosflow.cli.demo import ensure_demo_accounts
from orosflow.core.settings import reset_settings
from orosflow.core.smtp_capture import MailCapture
from orosflow.identity import accounts

from portal_support import csrf_of, hand_over, login, submit_example


def test_demo_accounts_are_created_once_and_can_sign_in(
    sqlite_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orosflow.portal.app import create_app

    # The demo accounts sign in without a second factor even where it is required.
    monkeypatch.setenv("OROSFLOW_REQUIRE_MFA", "true")
    reset_settings()
    accounts.address_throttle.reset()
    demo = ensure_demo_accounts(tmp_path)
    assert {d["role"] for d in demo} == {"counselor", "intake", "auditor", "admin"}
    saved = tmp_path / "demo-accounts.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert ensure_demo_accounts(tmp_path) == json.loads(saved.read_text())  # same, not new
    client = TestClient(create_app(), base_url="http://127.0.0.1:8000")
    for d in demo:
        client.cookies.clear()
        page = client.get("/login")
        resp = client.post(
            "/login",
            data={
                "username": d["username"],
                "password": d["password"],
                "csrf_token": csrf_of(page.text),
            },
            follow_redirects=False,
        )
        assert resp.status_code == 303, d["username"]


def test_no_demo_accounts_where_real_accounts_exist(sqlite_db: str, tmp_path: Path) -> None:
    accounts.add_user("riktig", display_name="R", role="auditor", password="ett-långt-lösenord")
    assert ensure_demo_accounts(tmp_path) == []
    assert not (tmp_path / "demo-accounts.json").exists()


ROLES = {
    "kim.kurator": "counselor",
    "sara.sodermalm": "intake",
    "anna.revisor": "auditor",
    "adam.admin": "admin",
}


async def test_dev_mail_view_is_for_admins_only_and_not_routed_unless_enabled(
    portal: TestClient, smtp: MailCapture, office_hours: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Captured mail goes to every unit and counselor of the installation: under serve every
    role could read all of it at /dev/mail. Now: admins only, and without OROSFLOW_DEV_MAIL the
    address does not exist for anyone."""
    from orosflow.portal.app import create_app

    reference = submit_example()
    await hand_over(reference)
    name = next(smtp.directory.glob("*.eml")).name
    monkeypatch.setenv("OROSFLOW_VAR_DIR", str(smtp.directory.parent))
    reset_settings()
    for username in [*ROLES, None]:  # off (the default): 404 for every role and anonymous
        portal.cookies.clear()
        if username:
            login(portal, username)
        assert portal.get("/dev/mail").status_code == 404, username
        assert portal.get(f"/dev/mail/{name}").status_code == 404, username
        assert "/dev/mail" not in portal.get("/").text

    monkeypatch.setenv("OROSFLOW_DEV_MAIL", "true")
    reset_settings()
    client = TestClient(create_app(), base_url="http://127.0.0.1:8000")
    for username, role in ROLES.items():
        login(client, username)
        page, one = client.get("/dev/mail"), client.get(f"/dev/mail/{name}")
        home = client.get("/")
        if role != "admin":
            assert page.status_code == one.status_code == 403, username
            assert reference not in page.text + one.text
            assert "/dev/mail" not in home.text
            continue
        assert page.status_code == 200 and reference in page.text
        assert one.status_code == 200 and f"/reports/{reference}" in one.text
        assert 'href="/dev/mail"' in home.text
        assert client.get("/dev/mail/..%2F..%2Fetc%2Fpasswd").status_code == 404
    client.cookies.clear()
    assert client.get("/dev/mail", follow_redirects=False).status_code == 303  # to sign-in
