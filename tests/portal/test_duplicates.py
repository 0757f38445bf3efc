"""Issue 11, finding 5: duplicate reports. The same JSON sent twice at once became two reports,
both notified, and ``Idempotency-Key`` was ignored. Now a retry stores once and answers with the
first receipt, a reused key with another body is a 409, and a second report for the same child
from the same counselor within a day asks "Skicka ändå?" (portal) or is a 409 (API) unless
confirmed. Concurrent twins are tested with two threads on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import func, select

from models.accounts import Role
from models.tables import IdempotencyKey, RecentChildReport, Report
from orosflow.core.clock import set_clock
from orosflow.core.db import session_scope
from orosflow.handover import duplicates
from orosflow.handover.duplicates import DuplicateSuspected
from orosflow.handover.submission import Receipt
from orosflow.identity import accounts
from orosflow.views.counselor import submit_as

from factories import child, form, pnr
from portal_support import PASSWORD, api_headers, csrf_of, login

URL = "/api/v1/reports"
MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def flow_starts(monkeypatch: pytest.MonkeyPatch, flow_runs: None) -> list[list[tuple[str, str]]]:
    calls: list[list[tuple[str, str]]] = []

    async def start(items: list[tuple[str, str]], attempt: Any = None) -> dict[str, None]:
        calls.append(items)
        return {rid: None for rid, _ in items}

    monkeypatch.setattr("orosflow.handover.trigger.start_flow_runs", start)
    return calls


@pytest.fixture
def clock() -> Iterator[Callable[[timedelta], None]]:
    """Monday 10:00 in Stockholm; ``advance(delta)`` moves it on."""
    now = [MONDAY]
    set_clock(lambda: now[0])

    def advance(delta: timedelta) -> None:
        now[0] = now[0] + delta

    yield advance
    set_clock(None)


def reports() -> int:
    with session_scope() as s:
        return s.exec(select(func.count()).select_from(Report)).one()


def key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


# --- Idempotency-Key --------------------------------------------------------------------------


def test_same_key_and_body_give_the_first_receipt_and_store_once(
    portal: TestClient, clock: Any, flow_starts: list[Any]
) -> None:
    headers = {**api_headers("kim.kurator"), **key("3f1c9a6e-retry-1")}
    first = portal.post(URL, json=form(), headers=headers)
    assert first.status_code == 201, first.text
    again = portal.post(URL, json=form(), headers=headers)
    assert again.status_code == 201
    assert again.json() == first.json()  # same references, recipients, calls and message
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert reports() == 1
    assert len(flow_starts) == 1  # no second flow run, so no second mail


def test_same_key_in_another_key_order_is_the_same_body(portal: TestClient, clock: Any) -> None:
    headers = {**api_headers("kim.kurator"), **key("order")}
    body = form()
    assert portal.post(URL, json=body, headers=headers).status_code == 201
    reordered = dict(reversed(list(body.items())))
    assert portal.post(URL, json=reordered, headers=headers).status_code == 201
    assert reports() == 1


def test_same_key_with_another_body_is_409_and_stores_nothing(
    portal: TestClient, clock: Any
) -> None:
    headers = {**api_headers("kim.kurator"), **key("k-1")}
    assert portal.post(URL, json=form(), headers=headers).status_code == 201
    other = form(urgency="acute")
    resp = portal.post(URL, json=other, headers=headers)
    assert resp.status_code == 409
    error = resp.json()["error"]
    assert error["code"] == "idempotency_key_reused" and "redan använts" in error["message"]
    assert reports() == 1


def test_a_key_belongs_to_its_account(portal: TestClient, clock: Any) -> None:
    accounts.add_user(
        "ulla.umo",
        display_name="Ulla Umo",
        role=Role.COUNSELOR,
        password=PASSWORD,
        email="ulla.umo@example.se",
    )
    kim = portal.post(URL, json=form(), headers={**api_headers("kim.kurator"), **key("shared")})
    ulla_form = form(reporter={**form()["reporter"], "email": "ulla.umo@example.se"})
    ulla = portal.post(URL, json=ulla_form, headers={**api_headers("ulla.umo"), **key("shared")})
    assert kim.status_code == ulla.status_code == 201
    assert kim.json()["reports"][0]["reference"] != ulla.json()["reports"][0]["reference"]
    assert reports() == 2


def test_an_invalid_form_does_not_use_up_the_key(portal: TestClient, clock: Any) -> None:
    headers = {**api_headers("kim.kurator"), **key("fix-and-retry")}
    bad = portal.post(URL, json=form(urgency="soon"), headers=headers)
    assert bad.status_code == 422
    assert portal.post(URL, json=form(), headers=headers).status_code == 201


def test_keys_are_kept_for_24_hours_as_digests_only(portal: TestClient, clock: Any) -> None:
    headers = {**api_headers("kim.kurator"), **key("day-old")}
    assert portal.post(URL, json=form(), headers=headers).status_code == 201
    with session_scope() as s:
        [row] = s.exec(select(IdempotencyKey)).all()
        stored = " ".join(str(v) for v in row.model_dump().values())
    assert "day-old" not in stored and "Exempel" not in stored and "20120315" not in stored
    assert row.expires_at - row.created_at == timedelta(hours=24)
    clock(timedelta(hours=24, minutes=1))
    again = portal.post(URL, json=form(), headers=headers)
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    assert reports() == 2


def test_a_key_past_its_time_is_free_even_before_it_is_deleted(
    portal: TestClient, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Expired rows are deleted at most once a minute; until then the check ignores them."""
    monkeypatch.setattr(duplicates, "EXPIRE_EVERY", timedelta(days=30))
    monkeypatch.setattr(duplicates, "_last_expired", {})
    headers = {**api_headers("kim.kurator"), **key("reused-next-day")}
    assert portal.post(URL, json=form(), headers=headers).status_code == 201
    clock(timedelta(hours=24, minutes=1))
    other = form(children=[child(personal_number="20130101-0011", name="Annan Barnsson")])
    again = portal.post(URL, json=other, headers=headers)  # another body: 409 if still held
    assert again.status_code == 201, again.text
    assert "Idempotent-Replayed" not in again.headers
    assert reports() == 2


@pytest.mark.parametrize("bad", ["", "x" * 201, "nyckel-åäö", "a\tb"])
def test_unusable_key_is_422(portal: TestClient, clock: Any, bad: str) -> None:
    headers = {**api_headers("kim.kurator"), "Idempotency-Key": bad}
    try:
        resp = portal.post(URL, json=form(), headers=headers)
    except Exception:  # noqa: BLE001 - the HTTP client refuses some header values itself
        return
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "idempotency_key_invalid"
    assert reports() == 0


# --- the same child from the same counselor ---------------------------------------------------


def test_same_child_within_24_hours_is_409_naming_the_earlier_report(
    portal: TestClient, clock: Any
) -> None:
    headers = api_headers("kim.kurator")
    first = portal.post(URL, json=form(), headers=headers).json()["reports"][0]["reference"]
    clock(timedelta(hours=23))
    # Another wording, the same child (10-digit personnummer this time): still the same child.
    other = form(
        children=[child(personal_number=pnr(date(2012, 3, 15), serial="123", long=False))],
        concern={"categories": ["school_absence"], "observations": "Ny observation."},
    )
    resp = portal.post(URL, json=other, headers=headers)
    assert resp.status_code == 409
    error = resp.json()["error"]
    assert error["code"] == "duplicate_suspected"
    assert f"Det här liknar en anmälan du redan skickat ({first}). Skicka ändå?" in error["message"]
    assert error["fields"] == [
        {
            "field": "children.0.personal_number",
            "code": "duplicate_suspected",
            "message": f"Du skickade en anmälan om det här barnet nyss ({first}).",
        }
    ]
    assert reports() == 1
    confirmed = portal.post(URL, json={**other, "confirm_duplicate": True}, headers=headers)
    assert confirmed.status_code == 201 and reports() == 2


def test_after_24_hours_or_for_another_child_or_counselor_no_question(
    portal: TestClient, clock: Any
) -> None:
    headers = api_headers("kim.kurator")
    assert portal.post(URL, json=form(), headers=headers).status_code == 201
    sibling = form(children=[child(personal_number=pnr(date(2014, 7, 1)))])
    assert portal.post(URL, json=sibling, headers=headers).status_code == 201
    clock(timedelta(hours=24, seconds=1))
    assert portal.post(URL, json=form(), headers=headers).status_code == 201
    assert reports() == 3


def test_a_sibling_form_names_the_child_already_reported(portal: TestClient, clock: Any) -> None:
    headers = api_headers("kim.kurator")
    first = portal.post(URL, json=form(), headers=headers).json()["reports"][0]["reference"]
    both = form(children=[child(personal_number=pnr(date(2014, 7, 1))), child()])
    resp = portal.post(URL, json=both, headers=headers)
    assert resp.status_code == 409
    assert [f["field"] for f in resp.json()["error"]["fields"]] == ["children.1.personal_number"]
    assert first in resp.json()["error"]["message"]
    assert reports() == 1


def test_confirm_duplicate_must_be_a_boolean(portal: TestClient, clock: Any) -> None:
    resp = portal.post(
        URL, json={**form(), "confirm_duplicate": "ja"}, headers=api_headers("kim.kurator")
    )
    assert resp.status_code == 422
    assert resp.json()["error"]["fields"][0]["field"] == "confirm_duplicate"


def test_the_personnummer_is_never_stored_in_clear_or_as_a_plain_hash(
    portal: TestClient, clock: Any
) -> None:
    number = "201203151236"
    assert portal.post(URL, json=form(), headers=api_headers("kim.kurator")).status_code == 201
    with session_scope() as s:
        rows = s.exec(select(RecentChildReport)).all()
    assert len(rows) == 1
    stored = " ".join(str(v) for r in rows for v in r.model_dump().values())
    plain = [
        number,
        number[2:],
        hashlib.sha256(number.encode()).hexdigest(),
        hashlib.sha256(f"kim.kurator@example.se\0{number}".encode()).hexdigest(),
    ]
    assert not any(p in stored for p in plain)
    assert "kim.kurator" not in stored


# --- the portal form --------------------------------------------------------------------------


def _form_post(page: str) -> dict[str, Any]:
    from test_input_hardening import _valid_post

    data = _valid_post(csrf_of(page))
    [token] = re.findall(r'name="submission_token" value="([^"]+)"', page)
    return {**data, "submission_token": token}


def test_double_click_stores_once_and_shows_the_same_receipt(
    portal: TestClient, clock: Any, flow_starts: list[Any]
) -> None:
    login(portal, "kim.kurator")
    data = _form_post(portal.get("/my/reports/new").text)
    first = portal.post("/reports/new", data=data, follow_redirects=False)
    second = portal.post("/reports/new", data=data, follow_redirects=False)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert reports() == 1 and len(flow_starts) == 1
    # A fresh form has a fresh token.
    tokens = {_form_post(portal.get("/my/reports/new").text)["submission_token"] for _ in range(2)}
    assert len(tokens) == 2 and data["submission_token"] not in tokens


def test_resend_with_changed_content_stores_nothing_and_explains(
    portal: TestClient, clock: Any
) -> None:
    login(portal, "kim.kurator")
    data = _form_post(portal.get("/my/reports/new").text)
    assert portal.post("/reports/new", data=data, follow_redirects=False).status_code == 303
    changed = {**data, "concern-observations": "Ändrad text."}
    resp = portal.post("/reports/new", data=changed)
    assert resp.status_code == 409 and "redan skickats en gång" in resp.text
    assert "Ändrad text." in resp.text  # the input is kept
    [token] = re.findall(r'name="submission_token" value="([^"]+)"', resp.text)
    assert token != data["submission_token"]
    assert reports() == 1


def test_same_child_again_asks_skicka_anda_and_confirm_sends(
    portal: TestClient, clock: Any
) -> None:
    login(portal, "kim.kurator")
    first = portal.post(
        "/reports/new", data=_form_post(portal.get("/my/reports/new").text), follow_redirects=False
    )
    receipt = portal.get(first.headers["location"]).text
    [reference] = set(re.findall(r"OA-2026-\d{6}", receipt))
    data = _form_post(portal.get("/my/reports/new").text)
    asked = portal.post("/reports/new", data=data)
    assert asked.status_code == 409
    assert f"Det här liknar en anmälan du redan skickat ({reference}). Skicka ändå?" in asked.text
    assert 'value="submit_confirmed"' in asked.text and reports() == 1
    confirmed = portal.post(
        "/reports/new",
        data={**_form_post(asked.text), "action": "submit_confirmed"},
        follow_redirects=False,
    )
    assert confirmed.status_code == 303 and reports() == 2


# --- two identical submissions at the same moment ---------------------------------------------


def _principal() -> Any:
    from orosflow.core.crypto import load_keyring
    from orosflow.identity.accounts import principal_for_token

    load_keyring()  # the key file exists before the threads start (its creation is not raced)
    return principal_for_token(accounts.create_api_token("kim.kurator", "twins"))


def _twins(
    db: str, monkeypatch: pytest.MonkeyPatch, call: Callable[[], Receipt]
) -> list[Receipt | Exception]:
    """Run ``call`` in two threads at once. On PostgreSQL both are held inside their
    transactions until both have begun, so neither has committed when the other checks; on
    SQLite transactions queue (BEGIN IMMEDIATE), so they start together and the database
    orders them."""
    barrier = threading.Barrier(2, timeout=20)
    if db == "postgres":
        original = duplicates.SubmitOnce._expire
        arrivals = iter(range(100))
        lock = threading.Lock()

        def held(self: Any, session: Any, now: datetime) -> None:
            original(self, session, now)
            with lock:
                first_two = next(arrivals) < 2
            if first_two:  # the retry after a lost race is not held again
                barrier.wait()

        monkeypatch.setattr(duplicates.SubmitOnce, "_expire", held)
    results: list[Receipt | Exception] = []

    def run() -> None:
        if db != "postgres":
            barrier.wait()
        try:
            results.append(call())
        except Exception as exc:  # noqa: BLE001 - collected and checked below
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 2
    return results


def test_two_identical_submissions_with_one_key_at_once_store_once(
    portal: TestClient, db: str, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    principal = _principal()
    results = _twins(
        db, monkeypatch, lambda: submit_as(form(), principal, idempotency_key="twin-key")
    )
    assert all(isinstance(r, Receipt) for r in results), results
    a, b = results
    assert isinstance(a, Receipt) and isinstance(b, Receipt)
    assert a.sibling_group_id == b.sibling_group_id
    assert [r.reference for r in a.reports] == [r.reference for r in b.reports]
    assert sorted([a.replayed, b.replayed]) == [False, True]
    assert reports() == 1


def test_two_identical_submissions_without_key_at_once_store_once(
    portal: TestClient, db: str, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    principal = _principal()
    results = _twins(db, monkeypatch, lambda: submit_as(form(), principal))
    stored = [r for r in results if isinstance(r, Receipt)]
    asked = [r for r in results if isinstance(r, DuplicateSuspected)]
    assert len(stored) == 1 and len(asked) == 1, results
    assert asked[0].references == [stored[0].reports[0].reference]
    assert reports() == 1
