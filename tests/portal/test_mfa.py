"""The TOTP second factor over HTTP with ``OROSFLOW_REQUIRE_MFA=true``: enrolment after the
password, the code step (the session is not signed in before it), recovery codes that work
once, guessing throttled like passwords, the demo accounts exempt, an admin's reset, the
secret sealed in the database, bearer tokens unaffected, and an audit trail without secrets."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from models.accounts import Role, UserAccount
from models.tables import AuditEvent
from orosflow.core.clock import set_clock
from orosflow.core.db import session_scope
from orosflow.core.settings import reset_settings
from orosflow.identity import accounts

from portal_support import PASSWORD, api_headers, csrf_of

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


class FakeClock:
    """The throttle's monotonic clock, moved by hand (no test sleeps through a wait)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def mfa_portal(portal: TestClient, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The portal with the second factor required (the suite's default turns it off), and
    the wall clock pinned so each test chooses which TOTP step is "now"."""
    monkeypatch.setenv("OROSFLOW_REQUIRE_MFA", "true")
    reset_settings()
    now = [T0]
    set_clock(lambda: now[0])
    portal.now = now  # type: ignore[attr-defined]
    yield portal
    set_clock(None)


def at(portal: TestClient, seconds: float) -> None:
    portal.now[0] = T0 + timedelta(seconds=seconds)  # type: ignore[attr-defined]


def code_at(secret: str, seconds: float) -> str:
    return pyotp.TOTP(secret).at(T0 + timedelta(seconds=seconds))


def events(action: str) -> list[dict[str, Any]]:
    with session_scope() as s:
        rows = s.exec(select(AuditEvent).where(AuditEvent.action == action)).all()
        return [json.loads(r.details) for r in rows]


def password_step(client: TestClient, username: str, password: str = PASSWORD) -> Any:
    client.cookies.clear()
    page = client.get("/login")
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )


def secret_on(page: str) -> str:
    match = re.search(r'<code id="totp-secret">([A-Z2-7 ]+)</code>', page)
    assert match, page[:2000]
    return match.group(1).replace(" ", "")


def post_code(client: TestClient, path: str, page: str, code: str) -> Any:
    return client.post(
        path, data={"code": code, "csrf_token": csrf_of(page)}, follow_redirects=False
    )


def enrol(client: TestClient, username: str) -> tuple[str, list[str]]:
    """Password, enrolment page, first code: ``(secret, recovery codes)``."""
    page = password_step(client, username)
    assert page.status_code == 200 and "Aktivera tvåstegsverifiering" in page.text
    secret = secret_on(page.text)
    done = post_code(client, "/login/enrol", page.text, code_at(secret, 0))
    assert done.status_code == 200, done.text[:1000]
    codes = re.findall(r"<li><code>([A-Z2-9]{5}-[A-Z2-9]{5})</code></li>", done.text)
    return secret, codes


def test_enrolment_after_the_password_then_the_code_step(mfa_portal: TestClient) -> None:
    client = mfa_portal
    page = password_step(client, "sara.sodermalm")
    # The password passed, but the session is not signed in: every page sends to /login.
    assert page.status_code == 200 and "Aktivera tvåstegsverifiering" in page.text
    assert "<svg" in page.text and 'class="segno"' in page.text  # the QR, inline
    assert (
        "style=" not in page.text.split("<svg", 1)[1].split("</svg>", 1)[0]
    )  # CSP: no inline style
    assert client.get("/intake", follow_redirects=False).headers["location"].startswith("/login")
    secret = secret_on(page.text)
    assert page.text.count(secret[:4]) >= 1

    wrong = post_code(client, "/login/enrol", page.text, "000000")
    assert wrong.status_code == 400 and "Koden stämde inte" in wrong.text
    assert secret_on(wrong.text) == secret  # the same secret: nothing to scan again

    done = post_code(client, "/login/enrol", wrong.text, code_at(secret, 0))
    assert done.status_code == 200 and "visas bara nu" in done.text
    codes = re.findall(r"<li><code>([A-Z2-9]{5}-[A-Z2-9]{5})</code></li>", done.text)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert client.get("/intake").status_code == 200  # signed in now

    # Next sign-in: password, then the code step; before it nothing opens.
    at(client, 60)
    page = password_step(client, "sara.sodermalm")
    assert page.status_code == 200 and 'action="/login/code"' in page.text
    assert client.get("/intake", follow_redirects=False).status_code == 303
    bad = post_code(client, "/login/code", page.text, "123456")
    assert bad.status_code == 401 and "Koden stämde inte" in bad.text
    ok = post_code(client, "/login/code", bad.text, code_at(secret, 60))
    assert ok.status_code == 303 and ok.headers["location"] == "/intake"
    assert client.get("/intake").status_code == 200

    enrolled = events("mfa.enrolled")
    assert enrolled == [{"username": "sara.sodermalm", "method": "totp", "recovery_codes": 10}]
    assert [e["method"] for e in events("mfa.succeeded")] == ["totp"]
    failed = events("mfa.failed")
    assert [(e["stage"], e["method"]) for e in failed] == [
        ("enrolment", "totp"),
        ("sign-in", "totp"),
    ]
    # No secret, code or recovery code anywhere in the audit trail.
    with session_scope() as s:
        trail = " ".join(r.details for r in s.exec(select(AuditEvent)))
    for secret_text in (secret, *codes, code_at(secret, 60), code_at(secret, 0)):
        assert secret_text not in trail


def test_secret_is_sealed_and_a_code_is_accepted_once(mfa_portal: TestClient) -> None:
    secret, _ = enrol(mfa_portal, "anna.revisor")
    with session_scope() as s:
        user = s.exec(select(UserAccount).where(UserAccount.username == "anna.revisor")).one()
        stored = user.totp_secret or ""
    assert stored.startswith("k-") and secret not in stored  # sealed by the master key ring

    at(mfa_portal, 30)
    page = password_step(mfa_portal, "anna.revisor")
    assert post_code(mfa_portal, "/login/code", page.text, code_at(secret, 30)).status_code == 303
    # The same code again (still inside its window) is refused: no replay.
    page = password_step(mfa_portal, "anna.revisor")
    again = post_code(mfa_portal, "/login/code", page.text, code_at(secret, 30))
    assert again.status_code == 401


def test_recovery_codes_work_once(mfa_portal: TestClient) -> None:
    _, codes = enrol(mfa_portal, "nils.nacka")
    page = password_step(mfa_portal, "nils.nacka")
    typed = codes[3].lower().replace("-", " ")  # as someone might type it from paper
    ok = post_code(mfa_portal, "/login/code", page.text, typed)
    assert ok.status_code == 303 and mfa_portal.get("/intake").status_code == 200
    page = password_step(mfa_portal, "nils.nacka")
    reused = post_code(mfa_portal, "/login/code", page.text, codes[3])
    assert reused.status_code == 401 and "Koden stämde inte" in reused.text
    assert mfa_portal.get("/intake", follow_redirects=False).status_code == 303
    other = post_code(mfa_portal, "/login/code", reused.text, codes[4])
    assert other.status_code == 303
    used = [e for e in events("mfa.succeeded") if e["method"] == "recovery"]
    assert [e["recovery_left"] for e in used] == [9, 8]


def test_code_guessing_is_throttled_like_passwords(
    mfa_portal: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(accounts.login_throttle, "clock", clock)
    secret, _ = enrol(mfa_portal, "kim.kurator")
    at(mfa_portal, 30)
    page = password_step(mfa_portal, "kim.kurator")
    for guess in ("111111", "222222", "333333", "444444", "555555"):
        page = post_code(mfa_portal, "/login/code", page.text, guess)
        assert page.status_code == 401
    # The pair must wait now: even the right code is not checked.
    refused = post_code(mfa_portal, "/login/code", page.text, code_at(secret, 30))
    assert refused.status_code == 401
    assert mfa_portal.get("/my/reports", follow_redirects=False).status_code == 303
    assert events("mfa.throttled")[-1]["refused"] is True
    assert events("mfa.failed")[-1]["retry_after_s"] == 1
    clock.now += 2  # the wait is over
    ok = post_code(mfa_portal, "/login/code", refused.text, code_at(secret, 30))
    assert ok.status_code == 303


def test_demo_accounts_and_idp_accounts_skip_it_and_tokens_are_not_affected(
    mfa_portal: TestClient,
) -> None:
    accounts.add_user(
        "demo.kurator",
        display_name="Demo",
        role=Role.COUNSELOR,
        email="demo@example.se",
        password=PASSWORD,
        demo=True,
    )
    resp = password_step(mfa_portal, "demo.kurator")
    assert resp.status_code == 303 and resp.headers["location"] == "/my/reports"
    # An account with the factor still uses its bearer token without any code.
    enrol(mfa_portal, "adam.admin")
    assert (
        mfa_portal.get("/api/v1/admin/users", headers=api_headers("adam.admin")).status_code == 200
    )


def test_admin_reset_sends_the_account_to_enrol_again(mfa_portal: TestClient) -> None:
    enrol(mfa_portal, "sara.sodermalm")
    other = TestClient(mfa_portal.app, base_url="http://127.0.0.1:8000")
    secret, _ = enrol(other, "adam.admin")
    assert other.get("/intake", follow_redirects=False).status_code == 403  # admin is in
    users = other.get("/admin/users")
    assert 'action="/admin/users/sara.sodermalm/mfa-reset"' in users.text
    # Without the CSRF token nothing happens.
    assert other.post("/admin/users/sara.sodermalm/mfa-reset", data={}).status_code == 403
    assert {u["username"]: u["mfa"] for u in accounts.list_users()}["sara.sodermalm"] == "totp"
    resp = other.post(
        "/admin/users/sara.sodermalm/mfa-reset",
        data={"csrf_token": csrf_of(users.text)},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    assert (
        "Tvåstegsverifieringen för sara.sodermalm är borttagen"
        in other.get(resp.headers["location"]).text
    )
    assert mfa_portal.get("/intake", follow_redirects=False).status_code == 303  # sessions ended
    again = password_step(mfa_portal, "sara.sodermalm")
    assert "Aktivera tvåstegsverifiering" in again.text
    assert events("mfa.reset") == [{"username": "sara.sodermalm", "was_enrolled": True}]


def test_kept_form_input_rides_through_the_code_step(mfa_portal: TestClient) -> None:
    """A counselor whose session ended before "Skicka" gets the input back after password
    and code (carried in the pages, never in an address)."""
    secret, _ = enrol(mfa_portal, "kim.kurator")
    at(mfa_portal, 30)
    mfa_portal.cookies.clear()
    page = mfa_portal.get("/login")
    step = mfa_portal.post(
        "/login",
        data={
            "username": "kim.kurator",
            "password": PASSWORD,
            "csrf_token": csrf_of(page.text),
            "next": "/reports/new",
            "keep:concern-observations": "Kvar efter koden",
        },
    )
    assert 'action="/login/code"' in step.text
    assert 'name="keep:concern-observations" value="Kvar efter koden"' in step.text
    kept = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', step.text))
    done = mfa_portal.post("/login/code", data={**kept, "code": code_at(secret, 30)})
    assert done.status_code == 200 and "Inget har skickats än" in done.text
    assert 'name="concern-observations" value="Kvar efter koden"' in done.text
