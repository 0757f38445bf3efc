"""Sign-in throttling per (account, address): a guesser slows only itself, the answer never says
which accounts exist, successes cost nothing, and X-Forwarded-For counts only from a proxy."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select
from starlette.requests import Request

from models.tables import AuditEvent
from orosflow.core.db import session_scope
from orosflow.core.settings import reset_settings
from orosflow.identity import accounts, throttle
from orosflow.identity.accounts import LocalPasswords, LoginRefused
from orosflow.portal.web import client_address

from portal_support import PASSWORD, csrf_of

ATTACKER = "203.0.113.9"
CLINIC = "198.51.100.7"
PROXY = "10.0.0.5"


class FakeClock:
    """The throttle's monotonic clock, moved by hand (no test sleeps through a wait)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(accounts.login_throttle, "clock", fake)
    return fake


def client_at(portal: TestClient, address: str, **headers: str) -> TestClient:
    return TestClient(
        portal.app, base_url="http://127.0.0.1:8000", client=(address, 40000), headers=headers
    )


def try_login(client: TestClient, username: str, password: str) -> Any:
    client.cookies.clear()
    page = client.get("/login")
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )


def error_of(html: str) -> str:
    found = re.search(r'<div class="error-summary".*?</div>', html, re.S)
    assert found, "no error on the page"
    return found.group(0)


def test_attacker_hammering_one_account_does_not_lock_out_its_owner(
    portal: TestClient, clock: FakeClock
) -> None:
    attacker, owner = client_at(portal, ATTACKER), client_at(portal, CLINIC)
    for _ in range(12):  # before: the 5th failure locked kim.kurator for everyone, 15 minutes
        assert try_login(attacker, "kim.kurator", "gissning").status_code == 401
        clock.now += 0.5
    assert try_login(owner, "kim.kurator", PASSWORD).status_code == 303
    # The attacker's own pair waits: even the right password is refused from there, for now.
    assert try_login(attacker, "kim.kurator", PASSWORD).status_code == 401
    assert accounts.login_throttle.wait_left("kim.kurator", ATTACKER) > 0
    clock.now += throttle.PAIR_MAX_WAIT_S + 1
    assert try_login(attacker, "kim.kurator", PASSWORD).status_code == 303


def test_waits_grow_from_one_second_and_are_capped(clock: FakeClock) -> None:
    t = accounts.login_throttle
    waits = [t.failed("kim.kurator", ATTACKER)[1] for _ in range(throttle.PAIR_FREE_FAILURES + 14)]
    assert waits[: throttle.PAIR_FREE_FAILURES - 1] == [0.0] * (throttle.PAIR_FREE_FAILURES - 1)
    assert waits[throttle.PAIR_FREE_FAILURES - 1 : throttle.PAIR_FREE_FAILURES + 3] == [
        1.0,
        2.0,
        4.0,
        8.0,
    ]
    assert waits[-1] == throttle.PAIR_MAX_WAIT_S
    assert t.wait_left("kim.kurator", CLINIC) == 0  # another address: no wait
    assert t.wait_left("sara.sodermalm", ATTACKER) == 0  # another account: no wait


def test_unknown_throttled_and_wrong_get_the_same_answer(
    portal: TestClient, clock: FakeClock
) -> None:
    c = client_at(portal, ATTACKER)
    wrong = try_login(c, "kim.kurator", "fel-lösenord")
    unknown = try_login(c, "finns.inte", "fel-lösenord")
    for _ in range(throttle.PAIR_FREE_FAILURES):
        try_login(c, "anna.revisor", "fel-lösenord")
    throttled = try_login(c, "anna.revisor", PASSWORD)  # right password, pair waiting
    assert accounts.login_throttle.wait_left("anna.revisor", ATTACKER) > 0
    answers = {r.status_code for r in (wrong, unknown, throttled)}
    assert answers == {401}
    assert error_of(wrong.text) == error_of(unknown.text) == error_of(throttled.text)
    assert "Fel användarnamn eller lösenord" in error_of(wrong.text)
    assert "låst" not in throttled.text


def test_every_refusal_that_names_an_account_costs_one_hash_verification(
    portal: TestClient, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Timing: unknown, wrong and throttled all do one argon2 verify (the locked account
    answered in 8-20 ms without one, against 140-350 ms for the others)."""
    calls: list[str] = []
    real: Callable[[str, str], bool] = accounts._verify
    monkeypatch.setattr(accounts, "_verify", lambda h, p: calls.append(h) or real(h, p))

    def verifies(username: str, password: str) -> int:
        calls.clear()
        with pytest.raises(LoginRefused) as refused:
            LocalPasswords().authenticate(username, password, ATTACKER)
        assert refused.value.code == "bad_credentials"
        return len(calls)

    assert verifies("finns.inte", "fel") == 1
    assert verifies("kim.kurator", "fel") == 1
    for _ in range(throttle.PAIR_FREE_FAILURES):
        verifies("nils.nacka", "fel")
    assert verifies("nils.nacka", PASSWORD) == 1  # throttled: a dummy verify
    assert verifies("finns.inte", PASSWORD) == 1


def test_successes_do_not_count_and_reset_their_pair(portal: TestClient, clock: FakeClock) -> None:
    clinic = client_at(portal, CLINIC)
    # Before: 20 attempts (successes too) per 5 minutes per address, then everyone was refused.
    for _ in range(21):
        assert try_login(clinic, "kim.kurator", PASSWORD).status_code == 303
    for _ in range(3):  # four typos, a success, four more: never a wait
        for _ in range(throttle.PAIR_FREE_FAILURES - 1):
            assert try_login(clinic, "kim.kurator", "stavfel").status_code == 401
        assert try_login(clinic, "kim.kurator", PASSWORD).status_code == 303
    assert accounts.login_throttle.wait_left("kim.kurator", CLINIC) == 0


def test_address_budget_counts_failures_only(
    portal: TestClient, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(throttle, "ADDRESS_FAILURES", 6)
    clinic = client_at(portal, CLINIC)
    for i in range(6):  # guesses across accounts from one address
        assert "från din adress" not in try_login(clinic, f"gissning{i}", "x").text
    blocked = try_login(clinic, "kim.kurator", PASSWORD)
    assert blocked.status_code == 401 and "från din adress" in blocked.text
    assert try_login(client_at(portal, ATTACKER), "kim.kurator", PASSWORD).status_code == 303
    clock.now += throttle.ADDRESS_WINDOW_S + 1
    assert try_login(clinic, "kim.kurator", PASSWORD).status_code == 303


def test_throttled_attempts_are_audited_without_password_or_address(
    portal: TestClient, clock: FakeClock
) -> None:
    c = client_at(portal, ATTACKER)
    for _ in range(throttle.PAIR_FREE_FAILURES):
        try_login(c, "kim.kurator", "hemligt-fel")
        try_login(c, "19121212-1212", "hemligt-fel")  # a typed name that is no account
    try_login(c, "kim.kurator", "hemligt-fel")  # refused during the wait
    with session_scope() as s:
        events = s.exec(select(AuditEvent).where(AuditEvent.action == "login.throttled")).all()
    details = [json.loads(e.details) for e in events]
    assert {"username": "kim.kurator", "refused": False, "retry_after_s": 1, "failures": 5} in (
        details
    )
    assert {"username": "kim.kurator", "refused": True, "retry_after_s": 1} in details
    assert {"username": None, "refused": False, "retry_after_s": 1, "failures": 5} in details
    text = " ".join(e.details for e in events)
    for secret in ("hemligt-fel", ATTACKER, "19121212"):
        assert secret not in text


# --- X-Forwarded-For ---------------------------------------------------------------------------


def _request(peer: str, forwarded: list[str]) -> Request:
    headers = [(b"x-forwarded-for", v.encode()) for v in forwarded]
    return Request({"type": "http", "client": (peer, 1234), "headers": headers})


def test_forwarded_for_is_believed_only_from_a_trusted_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OROSFLOW_TRUSTED_PROXIES", raising=False)
    reset_settings()
    assert client_address(_request(ATTACKER, ["1.2.3.4"])) == ATTACKER  # default: the peer
    monkeypatch.setenv("OROSFLOW_TRUSTED_PROXIES", f"{PROXY}, 10.1.0.0/16")
    reset_settings()
    try:
        assert client_address(_request(ATTACKER, ["1.2.3.4"])) == ATTACKER  # not a proxy
        assert client_address(_request(PROXY, [CLINIC])) == CLINIC
        assert client_address(_request(PROXY, [])) == PROXY
        # What the client wrote left of its own address is not believed; proxy hops are skipped.
        assert client_address(_request(PROXY, [f"1.2.3.4, {CLINIC}, 10.1.2.3"])) == CLINIC
        assert client_address(_request(PROXY, ["1.2.3.4", CLINIC])) == CLINIC
        assert client_address(_request(PROXY, [f"nonsense, {CLINIC}"])) == CLINIC
        assert client_address(_request(PROXY, ["nonsense"])) == PROXY  # cannot pick a bucket
        assert client_address(_request(PROXY, [f"{CLINIC}:51000"])) == CLINIC
    finally:
        reset_settings()


def test_behind_the_proxy_each_client_is_throttled_on_its_own(
    portal: TestClient, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OROSFLOW_TRUSTED_PROXIES", PROXY)
    reset_settings()
    attacker = client_at(portal, PROXY, **{"X-Forwarded-For": ATTACKER})
    owner = client_at(portal, PROXY, **{"X-Forwarded-For": CLINIC})
    for _ in range(throttle.PAIR_FREE_FAILURES + 1):
        try_login(attacker, "kim.kurator", "gissning")
    assert try_login(attacker, "kim.kurator", PASSWORD).status_code == 401
    assert try_login(owner, "kim.kurator", PASSWORD).status_code == 303
    # From an untrusted peer the header is ignored: varying it does not escape the wait.
    monkeypatch.delenv("OROSFLOW_TRUSTED_PROXIES")
    reset_settings()
    for i in range(throttle.PAIR_FREE_FAILURES):
        try_login(
            client_at(portal, ATTACKER, **{"X-Forwarded-For": f"192.0.2.{i}"}), "anna.revisor", "x"
        )
    spoofed = client_at(portal, ATTACKER, **{"X-Forwarded-For": "192.0.2.99"})
    assert try_login(spoofed, "anna.revisor", PASSWORD).status_code == 401
