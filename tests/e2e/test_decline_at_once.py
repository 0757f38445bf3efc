"""A decline reaches the new unit at once, the same way from the API and from the portal form:
the decline queues the new unit's notification in its own transaction, and a concern-report
flow run started after the commit delivers it — through a real ``orosflow serve`` (Prefect
server, runner, SMTP capture in var/mail), not at the 5-minute sweep."""

from __future__ import annotations

import json
import time
from datetime import date
from typing import Any

import httpx

from support import run_cli

LIMIT = 20.0  # seconds from the decline to the new unit's mail in var/mail


def _token(embedded: Any, username: str) -> str:
    done = run_cli("users", "token", username, "--name", "e2e", env=embedded.env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["token"]


def _submit(embedded: Any, serial: str) -> str:
    """A counselor's report through the API about a child of its own (``serial`` of the
    personnummer: the same child twice within 24 h would be asked "Skicka ändå?"); returns
    its reference once it was notified."""
    from factories import child, form, pnr

    body = form(children=[child(personal_number=pnr(date(2012, 3, 15), serial=serial))])
    headers = {"Authorization": f"Bearer {_token(embedded, 'kurator')}"}
    r = httpx.post(f"{embedded.url}/api/v1/reports", json=body, headers=headers, timeout=30)
    assert r.status_code == 201, r.text
    reference = r.json()["reports"][0]["reference"]
    embedded.wait_for_mail(reference, timeout=120)  # the district's notification
    return reference


def _mail_to(embedded: Any, address: str, reference: str, seconds: float) -> float:
    """Seconds until a mail to ``address`` about ``reference`` is in var/mail."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        for path in embedded.mails():
            text = path.read_text(encoding="utf-8", errors="replace")
            if reference in text and f"To: {address}" in text:
                return time.monotonic() - start
        time.sleep(0.2)
    raise AssertionError(f"no mail to {address} within {seconds:.0f} s:\n{embedded.tail()}")


def test_decline_through_the_api_reaches_the_new_unit_within_20_s(embedded: Any) -> None:
    reference = _submit(embedded, serial="401")
    headers = {"Authorization": f"Bearer {_token(embedded, 'mottagning')}"}
    start = time.monotonic()
    r = httpx.post(
        f"{embedded.url}/api/v1/inbox/{reference}/decline",
        json={"reason": "wrong_district", "right_unit_id": "sdf-bromma"},
        headers=headers,
        timeout=30,
    )
    assert r.status_code == 200, r.text
    waited = _mail_to(embedded, "sdf-bromma@example.se", reference, LIMIT)
    print(f"API decline → new unit's mail: {time.monotonic() - start:.1f} s", flush=True)
    assert waited < LIMIT
    # The counselor's notice goes out on the same run.
    _mail_to(embedded, "kim.kurator@example.se", reference, 10)


def test_decline_in_the_portal_form_reaches_the_new_unit_within_20_s(
    embedded: Any, browser: Any
) -> None:
    reference = _submit(embedded, serial="402")
    account = embedded.accounts["intake"]
    page = browser.new_page(locale="sv-SE")
    page.goto(f"{embedded.url}/login")
    page.fill("#username", account["username"])
    page.fill("#password", account["password"])
    with page.expect_navigation():
        page.click("main button[type=submit]")
    page.goto(f"{embedded.url}/intake/reports/{reference}")
    page.click("#decline summary")
    page.select_option("#reason", "wrong_district")
    # The right receiver is chosen by name from the list (its value is the unit id).
    page.select_option("#right_unit_id", label="Norrmalms stadsdelsförvaltning")
    assert page.input_value("#right_unit_id") == "sdf-norrmalm"
    start = time.monotonic()
    with page.expect_navigation():
        page.click("#decline button[type=submit]")
    assert "avböjt" in page.content()
    waited = _mail_to(embedded, "sdf-norrmalm@example.se", reference, LIMIT)
    print(f"portal decline → new unit's mail: {time.monotonic() - start:.1f} s", flush=True)
    assert waited < LIMIT
    page.close()
