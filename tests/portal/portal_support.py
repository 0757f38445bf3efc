"""Helpers for the portal tests: accounts, sign-in, API tokens, reports handed over
without Prefect (route, real SMTP, mark notified).

Accounts (password ``PASSWORD``):
  kim.kurator    counselor, e-mail kim.kurator@example.se (the example form's reporter)
  sara.sodermalm intake officer for Södermalm (sdf-sodermalm), Stockholm 0180
  nils.nacka     intake officer for Nacka (intake-0182), another municipality
  anna.revisor   auditor
  adam.admin     admin
"""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from models.accounts import Role
from orosflow.handover.submission import submit
from orosflow.identity import accounts

from factories import form
from support import hand_over  # noqa: F401  (portal tests import it from here)

PASSWORD = "korrekt-häst-batteri-47"
COUNSELOR_EMAIL = "kim.kurator@example.se"
ACCOUNTS: dict[str, dict[str, Any]] = {
    "kim.kurator": {
        "role": Role.COUNSELOR,
        "display_name": "Kim Kurator",
        "email": COUNSELOR_EMAIL,
    },
    "sara.sodermalm": {
        "role": Role.INTAKE,
        "display_name": "Sara Södermalm",
        "units": ["sdf-sodermalm"],
    },
    "nils.nacka": {"role": Role.INTAKE, "display_name": "Nils Nacka", "units": ["intake-0182"]},
    "anna.revisor": {"role": Role.AUDITOR, "display_name": "Anna Revisor"},
    "adam.admin": {"role": Role.ADMIN, "display_name": "Adam Admin"},
}


def csrf_of(html: str) -> str:
    """The CSRF token in a rendered page (every form carries it)."""
    tokens = re.findall(r'name="csrf_token" value="([^"]*)"', html)
    assert tokens, "page has no CSRF token"
    assert all(tokens), "a form on the page carries an empty CSRF token"
    assert len(set(tokens)) == 1, "forms on the page carry different CSRF tokens"
    return tokens[0]


def create_accounts() -> None:
    for username, spec in ACCOUNTS.items():
        accounts.add_user(username, password=PASSWORD, **spec)


def login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Sign in through the login form; returns the session's CSRF token."""
    client.cookies.clear()
    page = client.get("/login")
    resp = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert resp.status_code == 303, resp.text[:500]
    home = client.get(resp.headers["location"])
    return csrf_of(home.text)


def api_headers(username: str) -> dict[str, str]:
    """Authorization header with a fresh API token for ``username``."""
    return {"Authorization": f"Bearer {accounts.create_api_token(username, 'test')}"}


def submit_example(**overrides: Any) -> str:
    """Submit the example form (Södermalm, reporter kim.kurator) directly; returns the reference."""
    receipt = submit(form(**overrides), actor="user:kim.kurator")
    return receipt.reports[0].reference
