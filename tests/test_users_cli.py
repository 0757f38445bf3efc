"""``orosflow users add --external-id``, ``units`` and ``mfa-reset``: the same functions as the
admin page, audited, with Swedish errors on bad input."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from models.accounts import MfaRecoveryCode, UserAccount
from models.tables import AuditEvent
from orosflow.core.clock import utcnow
from orosflow.core.db import session_scope
from orosflow.identity import accounts
from orosflow.identity.accounts import AccountError

from support import run_cli


def test_add_units_and_mfa_reset_from_the_command_line(sqlite_db: str) -> None:
    out = run_cli(
        "users", "add", "ida.idp", "--role", "intake", "--unit", "sdf-sodermalm",
        "--external-id", "https://idp.example.se|ida",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr  # no password asked: the IdP proves who it is
    out = run_cli("users", "units", "ida.idp", "--unit", "intake-0182", "--unit", "sj-0180")
    assert out.returncode == 0 and json.loads(out.stdout)["units"] == ["intake-0182", "sj-0180"]

    with session_scope() as s:  # as if enrolled
        user = s.exec(select(UserAccount).where(UserAccount.username == "ida.idp")).one()
        user.totp_secret, user.mfa_enabled_at = "k-x:AAAA", utcnow()
        s.add(user)
        s.add(
            MfaRecoveryCode(
                id="c1", user_id=user.id, prefix="AB", code_hash="x", created_at=utcnow()
            )
        )
    out = run_cli("users", "mfa-reset", "ida.idp")
    assert out.returncode == 0, out.stderr
    (listed,) = [u for u in accounts.list_users() if u["username"] == "ida.idp"]
    assert listed["mfa"] is None and listed["sign_in"] == "external"
    with session_scope() as s:
        assert s.exec(select(MfaRecoveryCode)).all() == []
        reset = s.exec(select(AuditEvent).where(AuditEvent.action == "mfa.reset")).one()
    assert reset.actor.startswith("cli:")
    assert json.loads(reset.details) == {"username": "ida.idp", "was_enrolled": True}

    with pytest.raises(AccountError) as exc:
        accounts.set_units("ida.idp", ["finns-inte"])
    assert exc.value.message == "Okänd enhet: finns-inte."
    with pytest.raises(AccountError) as exc:
        accounts.reset_mfa("ingen")
    assert exc.value.message == "Det finns inget konto ingen."
