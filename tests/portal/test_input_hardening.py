"""Issue 11 attacks on input through the real app (API and web form): control characters in
free text (finding 1), digits, dates, list and body limits (finding 7). Each is refused with a
Swedish field error, and nothing is stored."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import func, select

from models.tables import AuditEvent, Report
from orosflow.core.db import session_scope

from factories import child, form
from portal_support import api_headers, login

URL = "/api/v1/reports"


@pytest.fixture(autouse=True)
def no_prefect(monkeypatch: pytest.MonkeyPatch) -> None:
    async def start(items: list[tuple[str, str]], attempt: Any = None) -> dict[str, None]:
        return {rid: None for rid, _ in items}

    monkeypatch.setattr("orosflow.handover.trigger.start_flow_runs", start)


def stored() -> tuple[int, int]:
    """(reports, audit events): both stay 0 when a submission is refused."""
    with session_scope() as s:
        reports = s.exec(select(func.count()).select_from(Report)).one()
        events = s.exec(select(func.count()).select_from(AuditEvent)).one()
        return reports, events


def api_fields(resp: Any) -> dict[str, tuple[str, str]]:
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "form_invalid"
    return {f["field"]: (f["code"], f["message"]) for f in error["fields"]}


# --- finding 1: control characters ------------------------------------------------------------


def test_api_crlf_in_clinic_name_is_422_naming_the_field_and_nothing_is_stored(
    portal: TestClient, office_hours: None
) -> None:
    headers = api_headers("kim.kurator")
    before = stored()
    attack = "Ungdomsmottagningen\r\nBcc: angripare@example.com"
    resp = portal.post(
        URL, json=form(clinic={"name": attack, "municipality": "0180"}), headers=headers
    )
    fields = api_fields(resp)
    code, message = fields["clinic.name"]
    assert code == "text_control_character" and "styrtecken" in message
    assert "angripare" not in resp.text and "Bcc" not in resp.text
    assert stored() == before


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("reporter.name", "Kim\x00Kurator"),
        ("children.0.name", "\u202eKalle"),
        ("children.0.name", "\u200b\u200b"),
        ("other_children.0.name", "Lill\x1b[2Jebror"),
        ("guardians.0.relation", "mamma\u2066"),
        ("consultations.0.note", "rad\nrad"),
        ("concern.observations", "Text\x07"),
    ],
)
def test_api_refuses_control_bidi_and_invisible_text_in_nested_fields(
    portal: TestClient, office_hours: None, path: str, value: str
) -> None:
    data = form(consultations=[{"kind": "manager", "note": "ok"}])
    node: Any = data
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node[part]
    node[parts[-1]] = value
    headers = api_headers("kim.kurator")
    before = stored()
    fields = api_fields(portal.post(URL, json=data, headers=headers))
    assert path in fields and fields[path][0].startswith("text_")
    assert stored() == before


def test_web_form_refuses_control_characters_with_the_field_marked_and_input_kept(
    portal: TestClient, office_hours: None
) -> None:
    csrf = login(portal, "kim.kurator")
    before = stored()
    resp = portal.post(
        "/reports/new",
        data={
            **_valid_post(csrf),
            "clinic-name": "UM\r\nBcc: angripare@example.com",
            "children-0-name": "\u202eAnna",
            "concern-observations": "Rad ett\r\nRad två",  # line breaks are fine here
        },
    )
    assert resp.status_code == 400
    assert 'href="#clinic-name"' in resp.text and 'href="#children-0-name"' in resp.text
    assert (
        "concern-observations"
        not in resp.text.split('class="error-summary"', 1)[1].split("</div>", 1)[0]
    )
    assert "styrtecken" in resp.text and "riktning" in resp.text
    assert stored() == before


def test_phone_contact_answered_by_refuses_control_characters(
    portal: TestClient, office_hours: None
) -> None:
    from portal_support import submit_example

    reference = submit_example()
    resp = portal.post(
        f"{URL}/{reference}/phone-contacts",
        json={"answered_by": "Eva\r\nX-Evil: 1", "called_at": "2026-11-23T09:30:00+01:00"},
        headers=api_headers("kim.kurator"),
    )
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "answered_by_invalid"
    assert "X-Evil" not in resp.text


def _valid_post(csrf: str) -> dict[str, Any]:
    data = form()
    c = data["children"][0]
    return {
        "csrf_token": csrf,
        "action": "submit",
        "children-count": "1",
        "other_children-count": "0",
        "guardians-count": "1",
        "consultations-count": "0",
        "children-0-name": c["name"],
        "children-0-personal_number": c["personal_number"],
        "children-0-municipality": "0180",
        "children-0-district": "sdf-sodermalm",
        "guardians-0-name": "Förälder",
        "guardians-0-relation": "mamma",
        "guardians-0-informed": "yes",
        "concern-categories": ["neglect"],
        "concern-observations": "Observation.",
        "urgency": "not_acute",
        "child_told": "yes",
        "reporter-name": "Kim Kurator",
        "reporter-title": "Kurator",
        "reporter-phone": "08-000 00 01",
        "clinic-name": "Ungdomsmottagningen Exempel",
        "clinic-municipality": "0180",
        "report_date": "",
    }


def test_valid_web_post_helper_is_accepted(portal: TestClient, office_hours: None) -> None:
    """The helper above is a valid form: the refusals in this module are the attacks'."""
    csrf = login(portal, "kim.kurator")
    resp = portal.post("/reports/new", data=_valid_post(csrf), follow_redirects=False)
    assert resp.status_code == 303, resp.text[:3000]
    assert stored()[0] == 1


# --- finding 7: request body limit ------------------------------------------------------------


def test_api_body_over_1_mb_is_413_in_the_api_error_shape_and_nothing_is_stored(
    portal: TestClient, office_hours: None
) -> None:
    headers = api_headers("kim.kurator")
    before = stored()
    data = form(other_children=[{"name": "Syskon " + "x" * 150, "age": 5}] * 7000)
    body = json.dumps(data).encode()
    assert len(body) > 1024 * 1024
    resp = portal.post(URL, content=body, headers={**headers, "Content-Type": "application/json"})
    assert resp.status_code == 413
    assert resp.json() == {"error": {"code": "body_too_large", "message": ANY_SWEDISH}}
    assert "1 MB" in resp.json()["error"]["message"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert stored() == before


def test_chunked_body_without_length_is_cut_at_the_limit(
    portal: TestClient, office_hours: None
) -> None:
    headers = api_headers("kim.kurator")

    def chunks() -> Any:
        yield b'{"children": ['
        for _ in range(2000):
            yield b'{"name": "' + b"x" * 1000 + b'"},'
        yield b"{}]}"

    resp = portal.post(
        URL, content=chunks(), headers={**headers, "Content-Type": "application/json"}
    )
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "body_too_large"


def test_web_form_over_1_mb_gets_the_form_again_with_a_swedish_413_notice(
    portal: TestClient,
) -> None:
    """Finding 11: was a generic error page whose advice ("go back, your input is there") the
    no-store pages cannot keep. Now the form itself, saying why nothing was stored."""
    csrf = login(portal, "kim.kurator")
    marker = "Zqx7Markör"
    resp = portal.post(
        "/reports/new",
        data={**_valid_post(csrf), "concern-observations": marker + "ö" * 600_000},
    )
    assert resp.status_code == 413
    assert "<form" in resp.text and 'name="csrf_token"' in resp.text  # the form, ready to send
    assert "större än 1 MB" in resp.text and "kunde därför inte läsas" in resp.text
    assert "Inget har sparats" in resp.text
    assert marker not in resp.text and "öööö" not in resp.text
    assert stored()[0] == 0


def test_other_page_post_over_1_mb_gets_a_swedish_413_page(portal: TestClient) -> None:
    csrf = login(portal, "kim.kurator")
    resp = portal.post("/logout", data={"csrf_token": csrf, "x": "ö" * 600_000})
    assert resp.status_code == 413
    assert "Formuläret är för stort" in resp.text and "inget har sparats" in resp.text


def test_a_large_but_real_form_is_under_the_limit(portal: TestClient, office_hours: None) -> None:
    """Twelve children is the form's maximum; long texts at their limits still fit."""
    headers = api_headers("kim.kurator")
    big = {k: "Å" * 2000 for k in ("address", "school", "staying_description")}
    data = form(
        children=[child(**big) for _ in range(12)],
        concern={"categories": ["neglect"], "observations": "ä" * 20000, "child_said": "ö" * 20000},
        other_children=[{"name": "Syskon", "age": 5}] * 20,
    )
    body = json.dumps(data, ensure_ascii=True).encode()  # every ä as \\u00e4: 6 bytes
    assert len(body) < 1024 * 1024
    resp = portal.post(URL, content=body, headers={**headers, "Content-Type": "application/json"})
    assert resp.status_code == 201, resp.text[:500]


class _AnySwedish(str):
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and "Begäran är för stor" in other

    __hash__ = str.__hash__


ANY_SWEDISH = _AnySwedish()
