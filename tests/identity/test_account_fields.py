"""What an account carries into mail headers and pages is checked where accounts are made:
the same rule for the CLI, the admin page and the IdP's claims."""

from __future__ import annotations

import pytest

from models.accounts import Role
from orosflow.identity import accounts
from orosflow.identity.accounts import AccountError

PASSWORD = "ett långt lösenord 42"


@pytest.mark.parametrize(
    "email",
    ["kim@example.se\r\nBcc: alla@example.se", "Kim <kim@example.se>", "kim@localhost", "kim"],
)
def test_an_address_that_is_not_one_plain_address_is_refused_and_nothing_is_stored(
    sqlite_db: str, email: str
) -> None:
    with pytest.raises(AccountError) as refused:
        accounts.add_user(
            "kim", display_name="Kim", role=Role.COUNSELOR, password=PASSWORD, email=email
        )
    assert refused.value.code == "email_invalid"
    assert "e-postadress" in refused.value.message and email not in refused.value.message
    assert [u["username"] for u in accounts.list_users()] == []


def test_a_display_name_with_a_control_character_is_refused(sqlite_db: str) -> None:
    with pytest.raises(AccountError) as refused:
        accounts.add_user(
            "kim",
            display_name="Kim\nKurator",
            role=Role.COUNSELOR,
            password=PASSWORD,
            email="kim@example.se",
        )
    assert refused.value.code == "display_name_invalid"
    assert [u["username"] for u in accounts.list_users()] == []


def test_a_plain_address_is_kept_in_lower_case(sqlite_db: str) -> None:
    accounts.add_user(
        "kim",
        display_name=" Kim ",
        role=Role.COUNSELOR,
        password=PASSWORD,
        email=" Kim@Example.SE ",
    )
    [user] = accounts.list_users()
    assert user["email"] == "kim@example.se" and user["display_name"] == "Kim"
