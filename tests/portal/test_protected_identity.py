"""Protected identity (skyddade personuppgifter): an address or district is never taken, stored
or shown for such a child (they are given by phone, so a misrouted report never carries them).

The web form drops what was typed and shows an explanation instead of the fields; the API
refuses them with field errors; the database (raw, and the decrypted content) never holds
them; the intake page, print view and inbox API never show them, even for a report stored
before they were refused. Routing still works: in Stockholm city the city-wide intake
receives the report and the counselor must phone.
"""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import SQLModel, col, func, select, text

from models.accounts import Role
from models.form import Child, ConcernForm
from models.tables import AuditEvent, Handover, Report
from orosflow.core.crypto import load_keyring
from orosflow.core.db import get_engine, session_scope
from orosflow.core.smtp_capture import MailCapture
from orosflow.handover import delivery
from orosflow.handover.content import read_report
from orosflow.handover.submission import store_form
from orosflow.identity import accounts
from routing import get_router

from factories import SECRET_ADDRESS, child, form, pnr
from portal_support import PASSWORD, api_headers, csrf_of, hand_over, login

#: The address a counselor types (the scan looks for it, and for its first part alone).
TYPED_ADDRESS = SECRET_ADDRESS  # "Hemligvägen 77B"
MARKERS = (TYPED_ADDRESS, "Hemligvägen")
CITY_INTAKE = "intake-0180"
PROTECTED_ERROR = "Lämna inte adress för ett barn med skyddade personuppgifter"


@pytest.fixture(autouse=True)
def flow_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """No Prefect here: the background flow start does nothing."""

    async def start(items: list[tuple[str, str]], attempt: Any = None) -> dict[str, None]:
        return {rid: None for rid, _ in items}

    monkeypatch.setattr("orosflow.handover.trigger.start_flow_runs", start)


def browser_post(csrf: str, *, protected: bool, **overrides: Any) -> dict[str, Any]:
    """The form as the browser posts it: a Stockholm child with a typed address and district."""
    data: dict[str, Any] = {
        "csrf_token": csrf,
        "action": "submit",
        "children-count": "1",
        "other_children-count": "0",
        "guardians-count": "1",
        "consultations-count": "0",
        "children-0-name": "Skyddad Barnsson",
        "children-0-personal_number": "20120315-1236",
        "children-0-address": TYPED_ADDRESS,
        "children-0-municipality": "0180",
        "children-0-district": "sdf-sodermalm",
        "guardians-0-name": "Förälder Barnsson",
        "guardians-0-relation": "mamma",
        "guardians-0-informed": "yes",
        "concern-categories": ["neglect"],
        "concern-observations": "Barnet saknar mat hemma.",
        "urgency": "not_acute",
        "child_told": "yes",
        "reporter-name": "Kim Kurator",
        "reporter-title": "Kurator",
        "reporter-phone": "08-000 00 01",
        "clinic-name": "Ungdomsmottagningen",
        "clinic-municipality": "0180",
    }
    if protected:
        data["children-0-protected_identity"] = "true"
    data.update(overrides)
    return data


def protected_form() -> dict[str, Any]:
    """The API body: a protected Stockholm child with an address and a district."""
    return form(
        children=[child(protected_identity=True, address=TYPED_ADDRESS, district="sdf-sodermalm")]
    )


def report_count() -> int:
    with session_scope() as s:
        return s.exec(select(func.count()).select_from(Report)).one()


def database_holds(marker: str) -> list[str]:
    """Tables where ``marker`` occurs in any column, as text or raw bytes (UTF-8 or hex)."""
    needles = (marker.encode(), marker.encode().hex().encode())
    found = []
    with get_engine().connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            for row in conn.execute(text(f'SELECT * FROM "{table.name}"')):
                for value in row:
                    if isinstance(value, memoryview):
                        value = value.tobytes()
                    raw = value if isinstance(value, bytes) else str(value).encode()
                    if any(n in raw for n in needles) or any(n in raw.lower() for n in needles):
                        found.append(table.name)
    return found


def decrypted_contents() -> list[ConcernForm]:
    """Every stored report's content, opened with the app's own content loader."""
    with session_scope() as s:
        ids = list(s.exec(select(Report.id)))
        return [
            read_report(s, rid, keyring=load_keyring(), actor="test:scan", purpose="test").form
            for rid in ids
        ]


def assert_nothing_stored_of_the_address() -> None:
    for marker in MARKERS:
        assert database_holds(marker) == [], marker
    for content in decrypted_contents():
        dumped = content.model_dump_json()
        for marker in MARKERS:
            assert marker not in dumped
        for c in content.children:
            if c.protected_identity:
                assert c.address is None and c.district is None


# --- the web form --------------------------------------------------------------------------------


def test_portal_drops_a_typed_address_and_district_and_routes_to_the_city_intake(
    portal: TestClient, office_hours: None
) -> None:
    csrf = login(portal, "kim.kurator")
    resp = portal.post(
        "/reports/new", data=browser_post(csrf, protected=True), follow_redirects=False
    )
    assert resp.status_code == 303, resp.text[:2000]  # no error at the counselor
    receipt = portal.get(resp.headers["location"])
    assert receipt.status_code == 200
    for marker in MARKERS:
        assert marker not in receipt.text
    assert report_count() == 1
    assert_nothing_stored_of_the_address()
    [content] = decrypted_contents()
    assert content.children[0].protected_identity and content.children[0].municipality == "0180"
    # Stockholm without a district: the city-wide intake, phone required, Södermalm never named.
    with session_scope() as s:
        report = s.exec(select(Report)).one()
        handovers = list(s.exec(select(Handover).where(Handover.report_id == report.id)))
        decision = report.decision_json or ""
    assert [h.unit_id for h in handovers] == [CITY_INTAKE]
    assert all(h.phone_required for h in handovers)
    assert "R-PROTECTED-IDENTITY" in decision
    assert "sodermalm" not in decision.lower() and "södermalm" not in decision.lower()
    assert 'id="call-now"' in receipt.text
    assert get_router().unit(CITY_INTAKE).name in receipt.text


def test_portal_without_protected_identity_keeps_the_address(
    portal: TestClient, office_hours: None
) -> None:
    """The control: the same post without the box stores the address (so the scan can see)."""
    csrf = login(portal, "kim.kurator")
    resp = portal.post(
        "/reports/new", data=browser_post(csrf, protected=False), follow_redirects=False
    )
    assert resp.status_code == 303
    [content] = decrypted_contents()
    assert content.children[0].address == TYPED_ADDRESS
    assert content.children[0].district == "sdf-sodermalm"


def test_form_shows_the_explanation_instead_of_the_fields(
    portal: TestClient, office_hours: None
) -> None:
    csrf = login(portal, "kim.kurator")
    # Ticked, then "Uppdatera fälten": the typed address is gone, the explanation is shown.
    page = portal.post(
        "/reports/new", data=browser_post(csrf, protected=True, action="update_child:0")
    )
    assert page.status_code == 200
    for marker in MARKERS:
        assert marker not in page.text
    assert 'id="children-0-address"' not in page.text
    assert 'name="children-0-district"' not in page.text
    assert 'id="children-0-protected-note"' in page.text
    assert "lämnar du till socialtjänsten per telefon" in page.text
    assert re.search(r'id="children-0-protected_identity"[^>]*checked', page.text)
    assert re.search(r'id="update-child-0"[^>]*autofocus', page.text)
    assert report_count() == 0
    # Untick and update: the fields are back, empty.
    again = portal.post(
        "/reports/new",
        data=browser_post(
            csrf_of(page.text),
            protected=False,
            action="update_child:0",
            **{"children-0-address": "", "children-0-district": ""},
        ),
    )
    assert 'id="children-0-address"' in again.text and 'name="children-0-district"' in again.text
    assert 'id="children-0-protected-note"' not in again.text
    # An error elsewhere re-renders the form without the dropped address and without
    # blaming the counselor for it.
    bad = portal.post(
        "/reports/new",
        data=browser_post(csrf, protected=True, **{"concern-observations": ""}),
    )
    assert bad.status_code == 400
    for marker in MARKERS:
        assert marker not in bad.text
    assert PROTECTED_ERROR not in bad.text
    assert report_count() == 0


def test_form_with_siblings_drops_only_the_protected_childs_address(
    portal: TestClient, office_hours: None
) -> None:
    csrf = login(portal, "kim.kurator")
    post = browser_post(
        csrf,
        protected=True,
        **{
            "children-count": "2",
            "children-1-name": "Syster Barnsson",
            "children-1-personal_number": pnr(date(2014, 6, 1)),
            "children-1-address": "Öppna gatan 3",
            "children-1-municipality": "0182",
        },
    )
    resp = portal.post("/reports/new", data=post, follow_redirects=False)
    assert resp.status_code == 303, resp.text[:2000]
    by_name = {c.children[0].name: c.children[0] for c in decrypted_contents()}
    assert by_name["Skyddad Barnsson"].address is None
    assert by_name["Syster Barnsson"].address == "Öppna gatan 3"
    assert database_holds(TYPED_ADDRESS) == []


# --- the API ----------------------------------------------------------------------------------


def test_api_refuses_address_and_district_for_a_protected_child(
    portal: TestClient, office_hours: None
) -> None:
    resp = portal.post("/api/v1/reports", json=protected_form(), headers=api_headers("kim.kurator"))
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "form_invalid"
    fields = {f["field"]: f for f in error["fields"]}
    assert set(fields) == {"children.0.address", "children.0.district"}
    assert {f["code"] for f in fields.values()} == {"protected_identity_detail"}
    assert fields["children.0.address"]["message"] == (
        "Lämna inte adress för ett barn med skyddade personuppgifter – uppgiften lämnas per "
        "telefon."
    )
    assert "stadsdelsområde" in fields["children.0.district"]["message"]
    for marker in MARKERS:
        assert marker not in resp.text
    assert report_count() == 0
    assert_nothing_stored_of_the_address()
    # Without them the same child is accepted and goes to the city-wide intake.
    body = form(children=[child(protected_identity=True, address=None, district=None)])
    ok = portal.post("/api/v1/reports", json=body, headers=api_headers("kim.kurator"))
    assert ok.status_code == 201, ok.text
    assert [r["unit_id"] for r in ok.json()["reports"][0]["recipients"]] == [CITY_INTAKE]
    assert ok.json()["reports"][0]["calls"], "a protected child always needs a call"


# --- showing a report (also one stored before the refusal) ------------------------------------


def store_legacy_report(monkeypatch: pytest.MonkeyPatch) -> str:
    """A report as stored before this rule: a protected child's address and district kept."""
    data = ConcernForm.model_validate(protected_form())
    with monkeypatch.context() as m:
        m.setattr(Child, "without_protected_details", lambda self: self)
        with session_scope() as s:
            receipt = store_form(s, data, actor="user:kim.kurator", keyring=load_keyring())
    [content] = decrypted_contents()
    assert content.children[0].address == TYPED_ADDRESS  # the old state, really stored
    return receipt.reports[0].reference


async def test_intake_page_print_view_and_api_never_show_address_or_district(
    portal: TestClient,
    smtp: MailCapture,
    office_hours: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reference = store_legacy_report(monkeypatch)
    with session_scope() as s:
        rid = s.exec(select(Report.id).where(Report.reference == reference)).one()
    # The flow's re-validation does not fail such a report closed: it is still delivered.
    delivery.load_and_revalidate(rid)
    with session_scope() as s:
        failed = s.exec(
            select(AuditEvent).where(col(AuditEvent.action) == "report.undeliverable")
        ).all()
    assert failed == []
    await hand_over(reference)
    for message in smtp.messages():
        assert all(m not in message.as_string() for m in MARKERS)
    accounts.add_user(
        "stina.stad",
        password=PASSWORD,
        role=Role.INTAKE,
        display_name="Stina Stad",
        units=[CITY_INTAKE],
    )
    login(portal, "stina.stad")
    for url in (f"/intake/reports/{reference}", f"/intake/reports/{reference}/print"):
        page = portal.get(url)
        assert page.status_code == 200, url
        assert "Barnet har skyddade personuppgifter" in page.text
        assert "Exempel Barnsson" in page.text  # the content is shown …
        # The decline form lists every unit (Södermalm's too): what is shown of the report is
        # the rest of the page.
        shown = re.sub(r"<select.*?</select>", "", page.text, flags=re.S)
        for hidden in (*MARKERS, "<dt>Adress</dt>", "<dt>Stadsdelsområde</dt>", "sdf-sodermalm"):
            assert hidden not in shown, (url, hidden)  # … but not these
    api = portal.get(f"/api/v1/inbox/{reference}", headers=api_headers("stina.stad"))
    assert api.status_code == 200, api.text
    shown = api.json()["content"]["children"][0]
    assert shown["protected_identity"] is True
    assert shown["address"] is None and shown["district"] is None
    assert all(m not in api.text for m in MARKERS) and "sdf-sodermalm" not in api.text
    assert json.loads(api.text)["content"]["children"][0]["name"] == "Exempel Barnsson"
