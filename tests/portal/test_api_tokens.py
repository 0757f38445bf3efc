"""API tokens: an expiry (``--expires 90d`` or a date) refused with a clear error once passed,
a last-used time written at most once a minute, the account's current role and units, and
both shown by ``orosflow users list``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from models.accounts import ApiToken
from orosflow.core.clock import set_clock
from orosflow.core.db import session_scope
from orosflow.identity import accounts
from orosflow.identity.accounts import AccountError

from support import run_cli

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Iterator[list[datetime]]:
    now = [T0]
    set_clock(lambda: now[0])
    yield now
    set_clock(None)


def last_used(name: str) -> datetime | None:
    with session_scope() as s:
        return s.exec(select(ApiToken).where(ApiToken.name == name)).one().last_used_at


def test_expiry_text_days_or_a_date(sqlite_db: str, clock: list[datetime]) -> None:
    assert accounts.token_expiry(None) == T0 + timedelta(days=90)
    assert accounts.token_expiry("30d") == T0 + timedelta(days=30)
    # A date is valid through that day, Swedish time (CET in March: 23:00 UTC the day before).
    assert accounts.token_expiry("2027-03-01") == datetime(2027, 3, 1, 23, 0, tzinfo=UTC)
    for bad, code in (
        ("snart", "expires_invalid"),
        ("2026-12-01", "expires_past"),
        ("0d", "expires_past"),
        ("9999d", "expires_too_far"),
    ):
        with pytest.raises(AccountError) as exc:
            accounts.token_expiry(bad)
        assert exc.value.code == code


def test_expired_token_is_refused_and_last_use_is_written_once_a_minute(
    portal: TestClient, clock: list[datetime]
) -> None:
    token = accounts.create_api_token("sara.sodermalm", "inkorg", expires="2d")
    headers = {"Authorization": f"Bearer {token}"}
    assert portal.get("/api/v1/inbox", headers=headers).status_code == 200
    assert last_used("inkorg") == T0
    clock[0] = T0 + timedelta(seconds=40)
    assert portal.get("/api/v1/inbox", headers=headers).status_code == 200
    assert last_used("inkorg") == T0  # not rewritten within the minute
    clock[0] = T0 + timedelta(seconds=61)
    assert portal.get("/api/v1/inbox", headers=headers).status_code == 200
    assert last_used("inkorg") == T0 + timedelta(seconds=61)

    clock[0] = T0 + timedelta(days=2, seconds=1)
    resp = portal.get("/api/v1/inbox", headers=headers)
    assert resp.status_code == 401
    error = resp.json()["error"]
    assert error["code"] == "token_expired"
    assert "gick ut 2026-12-04 10:00" in error["message"]
    listed = {u["username"]: u for u in accounts.list_users()}["sara.sodermalm"]["tokens"]
    assert [(t["name"], t["status"]) for t in listed] == [("inkorg", "expired")]


def test_token_carries_the_accounts_current_role_and_units(portal: TestClient) -> None:
    token = accounts.create_api_token("sara.sodermalm", "inkorg")
    headers = {"Authorization": f"Bearer {token}"}
    # An intake token reaches the inbox, not the auditor's or the admin's API.
    assert portal.get("/api/v1/inbox", headers=headers).status_code == 200
    assert portal.get("/api/v1/admin/users", headers=headers).status_code == 403
    principal = accounts.principal_for_token(token)
    assert principal is not None and principal.units == {"sdf-sodermalm"}
    accounts.set_units("sara.sodermalm", ["intake-0182", "sj-0180"])
    principal = accounts.principal_for_token(token)
    assert principal is not None and principal.units == {"intake-0182", "sj-0180"}


def test_cli_token_expires_and_list_shows_name_expiry_and_last_use(
    sqlite_db: str,
) -> None:
    accounts.add_user(
        "kim.kurator",
        display_name="Kim",
        role="counselor",
        email="kim@example.se",
        password="korrekt-häst-batteri-47",
    )
    out = run_cli("users", "token", "kim.kurator", "--name", "journal", "--expires", "30d")
    assert out.returncode == 0, out.stderr
    issued = json.loads(out.stdout)
    assert issued["token"].startswith("ofl_") and issued["expires_at"]
    accounts.principal_for_token(issued["token"])  # used once
    bad = run_cli("users", "token", "kim.kurator", "--name", "x", "--expires", "igår")
    assert bad.returncode == 2 and "Ogiltig giltighetstid" in bad.stderr

    listed = json.loads(run_cli("users", "list").stdout)
    (kim,) = [u for u in listed if u["username"] == "kim.kurator"]
    (tok,) = kim["tokens"]
    assert tok["name"] == "journal" and tok["status"] == "active"
    expires = datetime.fromisoformat(tok["expires_at"])
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)
    assert tok["last_used_at"] is not None
    assert issued["token"] not in json.dumps(listed)  # never the token, only its name
