"""Counselor pages over real HTTP: the concern form (errors, kept input, add/remove rows), the
receipt with "Ring nu", "my reports", one report's status, phone contact, and access."""

from __future__ import annotations

import json
import logging
import re
from datetime import date, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, func, select

from models.accounts import Role
from models.form import categories
from models.tables import AuditEvent, PhoneContact, Report
from orosflow.core.crypto import load_keyring
from orosflow.core.db import session_scope
from orosflow.handover import lifecycle
from orosflow.handover.content import read_report
from orosflow.identity import accounts
from routing import Decision, RoutingRequest, get_router
from routing.hours import TZ

from factories import SECRET_ADDRESS, SECRET_CONCERN, SECRET_NAME, SECRET_SCHOOL, pnr
from portal_support import PASSWORD, csrf_of, login, submit_example

REF = re.compile(r"OA-2026-\d{6}")
CHILD_PNR = "20120315-1236"  # 14 years old on 2026-11-23 (the office_hours clock)
Post = dict[str, Any]


@pytest.fixture(autouse=True)
def flow_starts(monkeypatch: pytest.MonkeyPatch, flow_runs: None) -> list[list[tuple[str, str]]]:
    """Record the background flow starts (turned on, as in production; no Prefect server)."""
    calls: list[list[tuple[str, str]]] = []

    async def start(items: list[tuple[str, str]], attempt: Any = None) -> dict[str, None]:
        calls.append(items)
        return {rid: None for rid, _ in items}  # as when Prefect is down

    monkeypatch.setattr("orosflow.handover.trigger.start_flow_runs", start)
    return calls


def valid_post(csrf: str, **overrides: Any) -> Post:
    """A complete form as the browser posts it: one child in Södermalm, not acute."""
    data: Post = {
        "csrf_token": csrf,
        "action": "submit",
        "children-count": "1",
        "other_children-count": "1",
        "guardians-count": "1",
        "consultations-count": "1",
        "children-0-name": SECRET_NAME,
        "children-0-personal_number": CHILD_PNR,
        "children-0-address": SECRET_ADDRESS,
        "children-0-municipality": "0180",
        "children-0-district": "sdf-sodermalm",
        "children-0-school": SECRET_SCHOOL,
        "other_children-0-name": "Lillebror Barnsson",
        "other_children-0-age": "9",
        "guardians-0-name": "Förälder Barnsson",
        "guardians-0-relation": "mamma",
        "guardians-0-phone": "070-000 00 00",
        "guardians-0-informed": "yes",
        "concern-categories": ["neglect", "school_absence"],
        "concern-observations": SECRET_CONCERN,
        "concern-child_said": "Det finns ingen hemma på kvällarna.",
        "urgency": "not_acute",
        "child_told": "yes",
        "child_view": "Vill ha hjälp.",
        "consultations-0-kind": "manager",
        "consultations-0-date": "",
        "consultations-0-note": "",
        "reporter-name": "Kim Kurator",
        "reporter-title": "Kurator",
        "reporter-phone": "08-000 00 01",
        "clinic-name": "Ungdomsmottagningen Exempel",
        "clinic-municipality": "0180",
        "report_date": "",
    }
    data.update(overrides)
    return data


def report_count() -> int:
    with session_scope() as s:
        return s.exec(select(func.count()).select_from(Report)).one()


def events(action: str, actor: str | None = None) -> list[AuditEvent]:
    with session_scope() as s:
        stmt = select(AuditEvent).where(AuditEvent.action == action)
        if actor:
            stmt = stmt.where(AuditEvent.actor == actor)
        return list(s.exec(stmt.order_by(col(AuditEvent.seq))))


def summary_links(html: str) -> list[str]:
    box = re.search(r'<div class="error-summary".*?</div>', html, re.S)
    assert box, "no error summary"
    assert 'role="alert"' in box.group(0)
    return re.findall(r'href="#([^"]+)"', box.group(0))


def submit_form(client: TestClient, csrf: str, **overrides: Any) -> str:
    """Post a valid form; returns the receipt page's path."""
    resp = client.post("/reports/new", data=valid_post(csrf, **overrides), follow_redirects=False)
    assert resp.status_code == 303, resp.text[:2000]
    return resp.headers["location"]


def add_counselor(username: str = "ulla.umo") -> None:
    accounts.add_user(
        username,
        display_name="Ulla Umo",
        role=Role.COUNSELOR,
        password=PASSWORD,
        email=f"{username}@example.se",
    )


# --- the form ---------------------------------------------------------------------------------


def test_form_renders_every_section_with_categories_help_and_labels(portal: TestClient) -> None:
    login(portal, "kim.kurator")
    resp = portal.get("/reports/new")
    assert resp.status_code == 200
    html = resp.text
    for cat in categories().values():
        assert f'id="concern-categories-{cat.id}"' in html
        assert cat.label in html
    for group in ("Våld och övergrepp", "Barnets eget beteende eller situation"):
        assert group in html
    for text in (
        "Du behöver inga bevis",  # report on suspicion
        "under 18 år",  # 18+ is not covered
        "Informera inte vårdnadshavarna före anmälan",  # why guardians are not told
        "ring 112",
        "skyddade personuppgifter",
        "Stadsdelsområde",
        "Södermalm",  # district select from routing
        "Nacka (0182)",  # municipality list from routing
    ):
        assert text.lower() in html.lower(), text
    for fid in (
        "children-0-name",
        "children-0-personal_number",
        "children-0-municipality",
        "children-0-district",
        "guardians-0-informed-yes",
        "urgency-acute",
        "urgency-not_acute",
        "child_told-yes",
        "concern-observations",
        "clinic-municipality",
        "submit-report",
    ):
        assert f'id="{fid}"' in html, fid
    assert ">Skicka anmälan</button>" in html
    assert 'value="kim.kurator@example.se"' in html and "readonly" in html
    assert 'value="Kim Kurator"' in html
    assert "<script" not in html
    # Every visible control has a label pointing at it.
    controls = re.findall(r"<(?:input|select|textarea)\b([^>]*)>", html)
    ids = [
        re.search(r'\bid="([^"]+)"', attrs).group(1)  # type: ignore[union-attr]
        for attrs in controls
        if 'type="hidden"' not in attrs and 'name="csrf_token"' not in attrs
    ]
    assert len(ids) > 30
    missing = [i for i in ids if f'for="{i}"' not in html]
    assert missing == []


def test_mistake_gives_400_with_summary_links_and_input_kept_and_nothing_stored(
    portal: TestClient, office_hours: None, flow_starts: list[Any]
) -> None:
    csrf = login(portal, "kim.kurator")
    bad = valid_post(
        csrf, **{"children-0-personal_number": "20120315-1235", "concern-categories": []}
    )
    resp = portal.post("/reports/new", data=bad)
    assert resp.status_code == 400
    links = summary_links(resp.text)
    assert "children-0-personal_number" in links
    first_category = next(iter(categories()))
    assert f"concern-categories-{first_category}" in links  # a list error → its first box
    for target in links:
        assert f'id="{target}"' in resp.text  # every link lands on an element
    assert 'id="children-0-personal_number-error"' in resp.text
    assert "Personnumret eller samordningsnumret är inte giltigt" in resp.text
    assert f'value="{SECRET_NAME}"' in resp.text
    assert 'value="20120315-1235"' in resp.text
    assert SECRET_CONCERN in resp.text
    assert 'value="sdf-sodermalm" selected' in resp.text
    assert report_count() == 0
    assert flow_starts == []


def test_guardian_informed_despite_violence_points_at_the_radio(
    portal: TestClient, office_hours: None
) -> None:
    csrf = login(portal, "kim.kurator")
    resp = portal.post(
        "/reports/new",
        data=valid_post(csrf, **{"concern-categories": ["violence_by_guardian"]}),
    )
    assert resp.status_code == 400
    assert summary_links(resp.text) == ["guardians-0-informed-yes"]
    assert "Vårdnadshavare ska inte informeras före anmälan" in resp.text
    assert report_count() == 0


def test_child_of_18_is_refused_with_guidance(portal: TestClient, office_hours: None) -> None:
    csrf = login(portal, "kim.kurator")
    adult = pnr(date(2008, 11, 23))  # 18 today
    resp = portal.post(
        "/reports/new", data=valid_post(csrf, **{"children-0-personal_number": adult})
    )
    assert resp.status_code == 400
    assert summary_links(resp.text) == ["children-0-personal_number"]
    assert "fyllt 18 år" in resp.text and "samtycke" in resp.text
    assert report_count() == 0


def test_missing_choices_and_empty_fields_are_each_reported(
    portal: TestClient, office_hours: None
) -> None:
    csrf = login(portal, "kim.kurator")
    resp = portal.post(
        "/reports/new",
        data=valid_post(
            csrf,
            **{
                "urgency": "",
                "child_told": "",
                "guardians-0-informed": "",
                "children-0-name": "",
                "reporter-phone": "",
            },
        ),
    )
    assert resp.status_code == 400
    links = summary_links(resp.text)
    assert set(links) == {
        "children-0-name",
        "guardians-0-informed-yes",
        "urgency-acute",
        "child_told-yes",
        "reporter-phone",
    }
    assert 'id="urgency-error"' in resp.text  # the message also sits at the radio group


def test_add_and_remove_rows_keep_input_and_show_no_errors(portal: TestClient) -> None:
    csrf = login(portal, "kim.kurator")
    post = valid_post(csrf, action="add_child")
    resp = portal.post("/reports/new", data=post)
    assert resp.status_code == 200
    assert 'class="error-summary"' not in resp.text
    assert 'id="children-1-name"' in resp.text
    assert re.search(r'id="children-1-name"[^>]*autofocus', resp.text)
    assert f'value="{SECRET_NAME}"' in resp.text
    assert SECRET_CONCERN in resp.text
    assert 'id="urgency-not_acute" name="urgency" value="not_acute" checked' in resp.text
    assert 'value="neglect" checked' in resp.text
    assert 'name="children-count" value="2"' in resp.text

    two = valid_post(
        csrf,
        action="remove_child:0",
        **{"children-count": "2", "children-1-name": "Syster Barnsson"},
    )
    resp = portal.post("/reports/new", data=two)
    assert resp.status_code == 200
    assert 'id="children-1-name"' not in resp.text
    assert 'name="children-0-name" value="Syster Barnsson"' in resp.text
    assert SECRET_NAME not in resp.text

    resp = portal.post("/reports/new", data=valid_post(csrf, action="add_guardian"))
    assert 'id="guardians-1-name"' in resp.text and 'value="Förälder Barnsson"' in resp.text
    resp = portal.post("/reports/new", data=valid_post(csrf, action="remove_guardian:0"))
    assert 'id="guardians-0-name"' not in resp.text
    assert 'id="add-guardian"' in resp.text
    assert report_count() == 0


def test_enter_in_a_field_does_not_send_the_report(portal: TestClient) -> None:
    csrf = login(portal, "kim.kurator")
    resp = portal.post("/reports/new", data=valid_post(csrf, action="refresh"))
    assert resp.status_code == 200 and "Anmälan är inte skickad än" in resp.text
    assert report_count() == 0


def test_post_without_csrf_token_is_refused(portal: TestClient) -> None:
    login(portal, "kim.kurator")
    post = valid_post("")
    del post["csrf_token"]
    assert portal.post("/reports/new", data=post).status_code == 403
    assert report_count() == 0


# --- submission and receipt --------------------------------------------------------------------


def test_correct_form_redirects_to_receipt_and_starts_the_flow(
    portal: TestClient, office_hours: None, flow_starts: list[Any]
) -> None:
    csrf = login(portal, "kim.kurator")
    location = submit_form(portal, csrf, **{"children-0-staying_municipality": "Nacka"})
    assert re.fullmatch(r"/my/receipts/[0-9a-f-]{36}", location)
    with session_scope() as s:
        report = s.exec(select(Report)).one()
        content = read_report(s, report.id, keyring=load_keyring(), actor="test", purpose="test")
    assert flow_starts == [[(report.id, report.reference)]]
    assert content.child.staying_municipality == "0182"  # a typed name becomes its code
    assert content.form.reporter.email == "kim.kurator@example.se"
    assert [o.name for o in content.form.other_children] == ["Lillebror Barnsson"]

    page = portal.get(location)
    assert page.status_code == 200
    assert report.reference in page.text and "sparad" in page.text
    assert "Vad händer nu?" in page.text and "Södermalms stadsdelsförvaltning" in page.text
    assert "Ring nu" not in page.text  # not acute, in office hours
    reads = events("content.read", "user:kim.kurator")
    assert [json.loads(e.details)["purpose"] for e in reads] == ["receipt"]


def test_acute_receipt_says_ring_nu_with_the_number(portal: TestClient, office_hours: None) -> None:
    csrf = login(portal, "kim.kurator")
    page = portal.get(submit_form(portal, csrf, urgency="acute"))
    assert page.status_code == 200
    call = re.search(r'<section class="callout-urgent" id="call-now".*?</section>', page.text, re.S)
    assert call, "no call-now box"
    box = call.group(0)
    phone = get_router().unit("sdf-sodermalm").phone
    assert "Ring nu" in box and "Södermalms stadsdelsförvaltning" in box
    assert phone and phone in box and 'href="tel:' in box
    assert "Vid fara för liv: ring 112" in box
    # Why, in words: the rule code stays with the auditor (issue 12).
    assert "akut och enheten har öppet nu" in box and "R-ACUTE-PHONE" not in box


def test_protected_identity_needs_a_call_even_when_not_acute(
    portal: TestClient, office_hours: None
) -> None:
    csrf = login(portal, "kim.kurator")
    page = portal.get(
        submit_form(
            portal,
            csrf,
            **{"children-0-protected_identity": "true", "children-0-address": ""},
        )
    )
    assert 'id="call-now"' in page.text and "skyddade personuppgifter" in page.text
    assert "R-PROTECTED-IDENTITY" not in page.text


def test_siblings_get_one_reference_each(portal: TestClient, office_hours: None) -> None:
    csrf = login(portal, "kim.kurator")
    sister = pnr(date(2014, 6, 1))
    page = portal.get(
        submit_form(
            portal,
            csrf,
            **{
                "children-count": "2",
                "children-1-name": "Syster Barnsson",
                "children-1-personal_number": sister,
                "children-1-municipality": "0182",
            },
        )
    )
    refs = sorted(set(REF.findall(page.text)))
    assert len(refs) == 2 and report_count() == 2
    assert "Syster Barnsson" in page.text
    mine = portal.get("/my/reports").text
    assert all(r in mine for r in refs)


# --- my reports and status ----------------------------------------------------------------------


def test_my_reports_lists_state_recipient_deadline_and_feedback(
    portal: TestClient, notified_report: str
) -> None:
    login(portal, "kim.kurator")
    page = portal.get("/my/reports")
    assert page.status_code == 200
    row = re.search(rf"<tr>\s*<td[^>]*><a[^>]*>{notified_report}</a>.*?</tr>", page.text, re.S)
    assert row, "report not listed"
    assert "Södermalms stadsdelsförvaltning" in row.group(0)
    # The state in words (issue 12), not the bare label "dirigerad".
    assert "väntar på bekräftelse" in row.group(0) and "bekräftar senast" in row.group(0)
    assert ">dirigerad<" not in row.group(0)
    assert re.search(r"<td[^>]*>Nej</td>\s*</tr>$", row.group(0))

    status = portal.get(f"/my/reports/{notified_report}")
    assert status.status_code == 200
    assert "Södermalms stadsdelsförvaltning" in status.text and "Bekräftas senast" in status.text

    lifecycle.confirm(notified_report, "sdf-sodermalm", by="user:sara.sodermalm")
    lifecycle.record_feedback(
        notified_report, "sdf-sodermalm", "opened", date(2026, 11, 23), by="user:sara.sodermalm"
    )
    status = portal.get(f"/my/reports/{notified_report}")
    assert "Utredning inleds" in status.text and "Sara Södermalm" in status.text
    assert "user:" not in status.text
    purposes = [
        json.loads(e.details)["purpose"] for e in events("content.read", "user:kim.kurator")
    ]
    assert purposes == ["counselor-feedback"]
    assert '<td data-label="Återkoppling">Ja</td>' in portal.get("/my/reports").text


def test_counselor_records_the_phone_call(portal: TestClient, office_hours: None) -> None:
    reference = submit_example(urgency="acute")
    csrf = login(portal, "kim.kurator")
    page = portal.get(f"/my/reports/{reference}")
    assert "Telefonkontakt krävs" in page.text
    url = f"/my/reports/{reference}/phone"
    resp = portal.post(
        url,
        data={
            "csrf_token": csrf,
            "phone-answered_by": "",
            "phone-called_date": "2026-11-23",
            "phone-called_time": "10:00",
        },
    )
    assert resp.status_code == 400 and summary_links(resp.text) == ["phone-answered_by"]
    resp = portal.post(
        url,
        data={
            "csrf_token": csrf,
            "phone-answered_by": "Eva Ek, mottagningen",
            "phone-called_date": "2026-11-23",
            "phone-called_time": "10:00",
            "phone-unit_id": "sdf-sodermalm",
        },
        follow_redirects=False,
    )
    assert resp.status_code == 303
    page = portal.get(resp.headers["location"])
    assert "Telefonkontakten är registrerad" in page.text and "Eva Ek, mottagningen" in page.text
    with session_scope() as s:
        call = s.exec(select(PhoneContact)).one()
    assert call.recorded_by == "user:kim.kurator" and call.unit_id == "sdf-sodermalm"


# --- access ------------------------------------------------------------------------------------


def test_other_counselor_gets_404_and_every_attempt_is_audited(
    portal: TestClient, office_hours: None, caplog: pytest.LogCaptureFixture
) -> None:
    csrf = login(portal, "kim.kurator")
    receipt = submit_form(portal, csrf)
    reference = REF.findall(portal.get(receipt).text)[0]
    add_counselor()
    portal.cookies.clear()
    other_csrf = login(portal, "ulla.umo")
    caplog.set_level(logging.WARNING, logger="orosflow.portal")
    attempts = [
        portal.get(receipt),
        portal.get(f"/my/reports/{reference}"),
        portal.post(
            f"/my/reports/{reference}/phone",
            data={
                "csrf_token": other_csrf,
                "phone-answered_by": "X",
                "phone-called_date": "2026-11-23",
                "phone-called_time": "10:00",
            },
        ),
    ]
    for resp in attempts:
        assert resp.status_code == 404
        assert SECRET_NAME not in resp.text
    assert portal.get("/my/reports/OA-2026-999999").text == attempts[1].text
    denied = events("access.denied", "user:ulla.umo")
    assert [json.loads(e.details)["via"] for e in denied] == [
        "receipt",
        "status",
        "phone",
        "status",
    ]
    assert sum("access denied: user:ulla.umo" in r.getMessage() for r in caplog.records) == 4
    assert reference not in portal.get("/my/reports").text
    with session_scope() as s:
        assert s.exec(select(func.count()).select_from(PhoneContact)).one() == 0
    # An intake officer has no counselor pages at all.
    portal.cookies.clear()
    login(portal, "sara.sodermalm")
    assert portal.get(f"/my/reports/{reference}").status_code == 403
    assert portal.get(receipt).status_code == 403


def test_no_personal_data_in_audit_details_or_logs(
    portal: TestClient, office_hours: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    csrf = login(portal, "kim.kurator")
    portal.post(
        "/reports/new", data=valid_post(csrf, **{"children-0-personal_number": "20120315-1235"})
    )
    receipt = submit_form(portal, csrf, urgency="acute")
    reference = REF.findall(portal.get(receipt).text)[0]
    portal.get("/my/reports")
    portal.get(f"/my/reports/{reference}")
    secrets = [SECRET_NAME, SECRET_ADDRESS, SECRET_CONCERN, SECRET_SCHOOL, "Förälder Barnsson"]
    secrets += [CHILD_PNR, CHILD_PNR.replace("-", ""), CHILD_PNR[2:], "20120315-1235"]
    with session_scope() as s:
        details = [e.details for e in s.exec(select(AuditEvent))]
    assert details
    logged = [r.getMessage() for r in caplog.records]
    for secret in secrets:
        assert not any(secret in d for d in details), secret
        assert not any(secret in m for m in logged), secret


def test_form_posted_after_the_session_ended_is_kept_through_a_new_sign_in(
    portal: TestClient, office_hours: None, flow_starts: list[Any]
) -> None:
    """Nothing the counselor wrote is lost when the session idles out before "Skicka"."""
    from datetime import UTC, datetime

    from orosflow.core.clock import set_clock

    csrf = login(portal, "kim.kurator")
    set_clock(lambda: datetime(2026, 11, 23, 9, 45, tzinfo=UTC))  # 45 min later: idle too long
    try:
        expired = portal.post("/reports/new", data=valid_post(csrf))
        assert expired.status_code == 401 and "Din session hade gått ut" in expired.text
        assert SECRET_CONCERN in expired.text  # carried in the page, in this browser only
        assert report_count() == 0
        keep = re.findall(r'name="(keep:[^"]+)" value="([^"]*)"', expired.text)
        assert ("keep:children-0-name", SECRET_NAME) in keep
        relogin = portal.post(
            "/login",
            data={
                "username": "kim.kurator",
                "password": PASSWORD,
                "csrf_token": csrf_of(expired.text),
                "next": "/reports/new",
                **_multi(keep),
            },
        )
        assert relogin.status_code == 200 and "Inget har skickats än" in relogin.text
        new_csrf = csrf_of(relogin.text)
        assert new_csrf != csrf
        resume_form = relogin.text.split('action="/reports/new"', 1)[1].split("</form>", 1)[0]
        hidden = re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', resume_form)
        assert ("csrf_token", new_csrf) in hidden
        resumed = portal.post("/reports/new", data={**_multi(hidden), "action": "refresh"})
        assert resumed.status_code == 200 and "inte skickad än" in resumed.text
        assert SECRET_NAME in resumed.text and report_count() == 0
        sent = portal.post("/reports/new", data=valid_post(new_csrf), follow_redirects=False)
        assert sent.status_code == 303 and report_count() == 1
    finally:
        set_clock(None)
    # The kept text went through the sign-in, but never into the audit trail.
    with session_scope() as s:
        trail = " ".join(e.details for e in s.exec(select(AuditEvent)))
    assert SECRET_CONCERN not in trail and SECRET_NAME not in trail


@pytest.mark.parametrize("case", ["no_token", "foreign_token", "no_cookie"])
def test_cross_site_post_cannot_prefill_the_form_after_sign_in(
    portal: TestClient, office_hours: None, case: str
) -> None:
    """Another site posts a filled form to /reports/new: its fields are dropped, not carried
    through the sign-in into the counselor's form (before: the login page kept them all and
    the resume page put them in the form)."""
    from datetime import UTC, datetime

    from orosflow.core.clock import set_clock

    own = login(portal, "kim.kurator")  # this browser's session, about to idle out
    attacker = TestClient(portal.app, base_url="http://127.0.0.1:8000")
    foreign = login(attacker, "adam.admin")  # a real token, of somebody else's session
    token = {"no_token": "", "foreign_token": foreign, "no_cookie": own}[case]
    if case == "no_cookie":  # as a cross-site post arrives: the SameSite=Strict cookie stays home
        portal.cookies.clear()
    set_clock(lambda: datetime(2026, 11, 23, 9, 45, tzinfo=UTC))  # 45 min later
    try:
        planted = portal.post("/reports/new", data=valid_post(token), follow_redirects=False)
        assert planted.status_code == 303
        assert planted.headers["location"] == "/login?next=%2Freports%2Fnew"
        assert SECRET_NAME not in planted.text
        page = portal.get(planted.headers["location"])
        assert "keep:" not in page.text and SECRET_NAME not in page.text
        assert "Din session hade gått ut" not in page.text
        signed_in = portal.post(
            "/login",
            data={
                "username": "kim.kurator",
                "password": PASSWORD,
                "csrf_token": csrf_of(page.text),
                "next": "/reports/new",
            },
            follow_redirects=False,
        )
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/reports/new"
        form_page = portal.get("/reports/new")
        assert form_page.status_code == 200
        for planted_value in (SECRET_NAME, SECRET_ADDRESS, SECRET_CONCERN):
            assert planted_value not in form_page.text
    finally:
        set_clock(None)
    assert report_count() == 0


def _multi(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in pairs:
        out.setdefault(name, []).append(value)
    return {k: v[0] if len(v) == 1 else v for k, v in out.items()}


# --- the receipt shows the routing decision stored at submission -------------------------------

#: A time the written channel opens (after the Christmas holidays), as routing would store it.
OPENS = datetime(2026, 12, 28, 8, 0, tzinfo=TZ)
OPENS_WORDS = "läses tidigast måndag 28 december kl. 08:00"


def _report_of(receipt_path: str) -> Report:
    with session_scope() as s:
        group = receipt_path.rsplit("/", 1)[-1]
        return s.exec(select(Report).where(Report.sibling_group_id == group)).one()


def _store_decision(report_id: str, decision: Decision | None) -> None:
    with session_scope() as s:
        report = s.get(Report, report_id)
        assert report is not None
        report.decision_json = decision.model_dump_json() if decision is not None else None
        s.add(report)


def _receipt_table(html: str) -> str:
    table = re.search(r"<table>.*?</table>", html, re.S)
    assert table, "no reference table on the receipt"
    return table.group(0)


def test_receipt_shows_the_stored_decision_not_a_new_route(
    portal: TestClient, office_hours: None
) -> None:
    csrf = login(portal, "kim.kurator")
    location = submit_form(portal, csrf)  # Södermalm, not acute
    report = _report_of(location)
    # A decision unlike what routing the form again gives: acute, Nacka, read after Christmas.
    stored = get_router().route(
        RoutingRequest(
            municipality="0182", clinic_municipality="0180", urgency="acute", at=report.submitted_at
        )
    )
    stored = stored.model_copy(update={"opens_at": OPENS})
    _store_decision(report.id, stored)

    page = portal.get(location)
    assert page.status_code == 200
    table = _receipt_table(page.text)
    assert stored.unit_name in table and "Södermalms stadsdelsförvaltning" not in table
    assert f"Går till {stored.unit_name} och {OPENS_WORDS}." in table
    call = re.search(r'<section class="callout-urgent" id="call-now".*?</section>', page.text, re.S)
    assert call and stored.unit_name in call.group(0) and stored.rule not in call.group(0)
    reads = events("content.read", "user:kim.kurator")
    assert [json.loads(e.details)["purpose"] for e in reads] == ["receipt"]  # the child's name


def test_receipt_of_an_old_report_without_stored_decision_routes_again(
    portal: TestClient, office_hours: None
) -> None:
    csrf = login(portal, "kim.kurator")
    location = submit_form(portal, csrf, urgency="acute")
    _store_decision(_report_of(location).id, None)  # as stored before decisions were kept

    page = portal.get(location)
    assert page.status_code == 200
    assert "Södermalms stadsdelsförvaltning" in _receipt_table(page.text)
    assert 'id="call-now"' in page.text and "akut och enheten har öppet nu" in page.text
    assert "R-ACUTE-PHONE" not in page.text
    assert "läses tidigast" not in page.text


def _set_opens_at(reference: str, opens_at: datetime | None) -> None:
    with session_scope() as s:
        report = lifecycle.report_by_reference(s, reference)
        for h in lifecycle.report_handovers(s, report.id):
            h.opens_at = opens_at
            s.add(h)


def test_status_page_says_when_the_unit_reads_the_report(
    portal: TestClient, notified_report: str
) -> None:
    login(portal, "kim.kurator")
    page = portal.get(f"/my/reports/{notified_report}").text
    assert "läses tidigast" not in page  # opens_at unset: the unit was open when routed

    _set_opens_at(notified_report, OPENS)
    page = portal.get(f"/my/reports/{notified_report}").text
    row = re.search(r'<table id="handovers">.*?</table>', page, re.S)
    assert row and f"Anmälan {OPENS_WORDS}; fristen räknas därifrån." in row.group(0)
