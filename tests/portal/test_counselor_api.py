"""Counselor JSON API over real HTTP: submit (201 / 422 form_invalid / 401 / 403), my reports,
one report's status, feedback and phone contact — each limited to the caller's own reports."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, func, select

from models.accounts import Role
from models.tables import AuditEvent, Report
from orosflow.core.clock import STOCKHOLM, set_clock
from orosflow.core.db import session_scope
from orosflow.handover import lifecycle
from orosflow.identity import accounts
from routing import get_router

from factories import SECRET_CONCERN, SECRET_NAME, child, form
from portal_support import PASSWORD, api_headers

URL = "/api/v1/reports"


@pytest.fixture(autouse=True)
def flow_starts(monkeypatch: pytest.MonkeyPatch, flow_runs: None) -> list[list[tuple[str, str]]]:
    """Record the background flow starts (turned on, as in production; no Prefect server)."""
    calls: list[list[tuple[str, str]]] = []

    async def start(items: list[tuple[str, str]], attempt: Any = None) -> dict[str, None]:
        calls.append(items)
        return {rid: None for rid, _ in items}

    monkeypatch.setattr("orosflow.handover.trigger.start_flow_runs", start)
    return calls


def report_count() -> int:
    with session_scope() as s:
        return s.exec(select(func.count()).select_from(Report)).one()


def denied(actor: str) -> list[dict[str, Any]]:
    with session_scope() as s:
        rows = s.exec(
            select(AuditEvent)
            .where(AuditEvent.action == "access.denied", AuditEvent.actor == actor)
            .order_by(col(AuditEvent.seq))
        )
        return [json.loads(e.details) for e in rows]


def other_counselor() -> dict[str, str]:
    accounts.add_user(
        "ulla.umo",
        display_name="Ulla Umo",
        role=Role.COUNSELOR,
        password=PASSWORD,
        email="ulla.umo@example.se",
    )
    return api_headers("ulla.umo")


def test_submit_returns_201_with_the_receipt_and_starts_the_flow(
    portal: TestClient, office_hours: None, flow_starts: list[Any]
) -> None:
    resp = portal.post(URL, json=form(), headers=api_headers("kim.kurator"))
    assert resp.status_code == 201, resp.text
    body = resp.json()
    [item] = body["reports"]
    assert item["reference"].startswith("OA-2026-") and item["call_now"] is None
    assert body["urgency"] == "not_acute" and body["sibling_group_id"]
    assert item["reference"] in body["message"]
    assert report_count() == 1
    assert flow_starts == [[(item["report_id"], item["reference"])]]


def test_acute_submit_tells_whom_to_call(portal: TestClient, office_hours: None) -> None:
    resp = portal.post(URL, json=form(urgency="acute"), headers=api_headers("kim.kurator"))
    assert resp.status_code == 201
    call = resp.json()["reports"][0]["call_now"]
    assert call["unit_name"] == "Södermalms stadsdelsförvaltning"
    assert call["phone"] == get_router().unit("sdf-sodermalm").phone
    assert call["rule"] == "R-ACUTE-PHONE"
    assert "112" in resp.json()["message"]


def test_invalid_form_gives_422_form_invalid_with_swedish_field_errors(
    portal: TestClient, office_hours: None, flow_starts: list[Any]
) -> None:
    bad = form(children=[child(personal_number="20120315-1235")])
    del bad["concern"]["categories"]
    resp = portal.post(URL, json=bad, headers=api_headers("kim.kurator"))
    assert resp.status_code == 422
    error = resp.json()["error"]
    assert error["code"] == "form_invalid" and "inget har sparats" in error["message"]
    fields = {f["field"]: f for f in error["fields"]}
    assert fields["children.0.personal_number"]["code"] == "personal_number_invalid"
    assert "inte giltigt" in fields["children.0.personal_number"]["message"]
    assert fields["concern.categories"] == {
        "field": "concern.categories",
        "code": "missing",
        "message": "Uppgiften saknas.",
    }
    assert SECRET_NAME not in resp.text
    assert report_count() == 0 and flow_starts == []


def test_plus_with_four_digit_year_gives_a_field_error_and_stores_nothing(
    portal: TestClient, office_hours: None, flow_starts: list[Any]
) -> None:
    """``20120315+1236`` was read as a 2012 child; "+" means 100 or older: contradictory."""
    data = form(children=[child(personal_number="20120315+1236")])
    resp = portal.post(URL, json=data, headers=api_headers("kim.kurator"))
    assert resp.status_code == 422
    (field,) = resp.json()["error"]["fields"]
    assert field["field"] == "children.0.personal_number"
    assert field["code"] == "personal_number_separator_invalid"
    assert "motsägelsefullt" in field["message"] and "20120315" not in field["message"]
    assert report_count() == 0 and flow_starts == []


def test_body_that_is_not_an_object_is_form_invalid(portal: TestClient) -> None:
    resp = portal.post(URL, json=["nej"], headers=api_headers("kim.kurator"))
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "form_invalid"
    assert resp.json()["error"]["fields"][0]["code"] == "model_type"


def test_reporter_email_is_the_accounts(portal: TestClient, office_hours: None) -> None:
    headers = api_headers("kim.kurator")
    data = form()
    data["reporter"]["email"] = "någon.annan@example.se"
    data["children"][0]["personal_number"] = "nej"
    resp = portal.post(URL, json=data, headers=headers)
    assert resp.status_code == 422
    codes = {f["field"]: f["code"] for f in resp.json()["error"]["fields"]}
    assert codes == {
        "reporter.email": "reporter_email_mismatch",
        "children.0.personal_number": "personal_number_invalid",
    }
    del data["reporter"]["email"]
    data["children"][0]["personal_number"] = "20120315-1236"
    resp = portal.post(URL, json=data, headers=headers)
    assert resp.status_code == 201  # filled in from the account
    mine = portal.get(URL, headers=headers).json()
    assert [r["reference"] for r in mine] == [resp.json()["reports"][0]["reference"]]


def test_api_needs_a_counselor_token(portal: TestClient) -> None:
    resp = portal.post(URL, json=form())
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "unauthenticated"
    resp = portal.get(URL, headers={"Authorization": "Bearer fel"})
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "invalid_token"
    resp = portal.post(URL, json=form(), headers=api_headers("sara.sodermalm"))
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "forbidden"
    assert report_count() == 0


def test_my_reports_and_status_only_for_the_caller(
    portal: TestClient, notified_report: str, caplog: pytest.LogCaptureFixture
) -> None:
    headers = api_headers("kim.kurator")
    mine = portal.get(URL, headers=headers).json()
    assert [r["reference"] for r in mine] == [notified_report]
    st = portal.get(f"{URL}/{notified_report}", headers=headers).json()
    assert st["state"] == "routed" and st["state_text"] == "dirigerad"
    [h] = st["handovers"]
    assert h["unit_id"] == "sdf-sodermalm" and h["status"] == "notified" and h["deadline_at"]
    assert st["feedback"]["received"] == [] and st["phone"]["required"] is False

    other = other_counselor()
    caplog.set_level(logging.WARNING, logger="orosflow.portal")
    assert portal.get(URL, headers=other).json() == []
    for path in (f"{URL}/{notified_report}", f"{URL}/{notified_report}/feedback"):
        resp = portal.get(path, headers=other)
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
    resp = portal.post(
        f"{URL}/{notified_report}/phone-contacts",
        json={"answered_by": "X", "called_at": "2026-11-23T10:00:00+01:00"},
        headers=other,
    )
    assert resp.status_code == 404
    missing = portal.get(f"{URL}/OA-2026-999999", headers=other)
    assert missing.json() == portal.get(f"{URL}/{notified_report}", headers=other).json()
    vias = [d["via"] for d in denied("user:ulla.umo")]
    assert vias == ["api-status", "api-feedback", "api-phone", "api-status", "api-status"]
    assert any("access denied: user:ulla.umo" in r.getMessage() for r in caplog.records)


def test_feedback_is_read_with_an_audit_event(portal: TestClient, notified_report: str) -> None:
    headers = api_headers("kim.kurator")
    assert portal.get(f"{URL}/{notified_report}/feedback", headers=headers).json() == []
    lifecycle.confirm(notified_report, "sdf-sodermalm", by="user:sara.sodermalm")
    lifecycle.record_feedback(
        notified_report, "sdf-sodermalm", "not_opened", date(2026, 11, 23), by="user:sara"
    )
    st = portal.get(f"{URL}/{notified_report}", headers=headers).json()
    assert st["state"] == "feedback_received" and len(st["feedback"]["received"]) == 1
    [item] = portal.get(f"{URL}/{notified_report}/feedback", headers=headers).json()
    assert item["outcome"] == "not_opened" and item["outcome_text"] == "utredning inleds inte"
    with session_scope() as s:
        reads = s.exec(
            select(AuditEvent).where(
                AuditEvent.action == "content.read", AuditEvent.actor == "user:kim.kurator"
            )
        ).all()
    assert [json.loads(e.details)["purpose"] for e in reads] == ["counselor-feedback"] * 2


def test_phone_contact_is_recorded_once(portal: TestClient, office_hours: None) -> None:
    headers = api_headers("kim.kurator")
    reference = portal.post(URL, json=form(urgency="acute"), headers=headers).json()["reports"][0][
        "reference"
    ]
    call = {
        "answered_by": "Eva Ek",
        "called_at": "2026-11-23T10:05:00+01:00",
        "unit_id": "sdf-sodermalm",
    }
    first = portal.post(f"{URL}/{reference}/phone-contacts", json=call, headers=headers)
    assert first.status_code == 201 and first.json()["changed"] is True
    again = portal.post(f"{URL}/{reference}/phone-contacts", json=call, headers=headers)
    assert again.json()["changed"] is False
    future = portal.post(
        f"{URL}/{reference}/phone-contacts",
        json={**call, "called_at": "2026-11-24T10:00:00+01:00"},
        headers=headers,
    )
    assert future.status_code == 422 and future.json()["error"]["code"] == "at_future"
    st = portal.get(f"{URL}/{reference}", headers=headers).json()
    assert [p["answered_by"] for p in st["phone"]["recorded"]] == ["Eva Ek"]


def test_openapi_documents_the_form_body_and_responses(portal: TestClient) -> None:
    spec = portal.get("/api/openapi.json").json()
    post = spec["paths"]["/api/v1/reports"]["post"]
    schema = post["requestBody"]["content"]["application/json"]["schema"]
    assert {"children", "concern", "urgency", "reporter", "clinic"} <= set(schema["properties"])
    assert "#/$defs/" not in json.dumps(schema)  # self-contained inside the OpenAPI document
    assert post["requestBody"]["content"]["application/json"]["example"]["urgency"]
    assert {"201", "401", "422"} <= set(post["responses"])
    assert "/api/v1/reports/{reference}" in spec["paths"]
    assert "/api/v1/reports/{reference}/phone-contacts" in spec["paths"]
    assert not any(p.startswith("/my/") or p.startswith("/reports") for p in spec["paths"])


def test_no_personal_data_in_audit_details_or_logs(
    portal: TestClient, office_hours: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    headers = api_headers("kim.kurator")
    data = form(children=[child(name=SECRET_NAME)])
    data["concern"]["observations"] = SECRET_CONCERN
    bad = json.loads(json.dumps(data))
    bad["children"][0]["personal_number"] = "20120315-1235"
    assert portal.post(URL, json=bad, headers=headers).status_code == 422
    resp = portal.post(URL, json=data, headers=headers)
    reference = resp.json()["reports"][0]["reference"]
    portal.get(f"{URL}/{reference}", headers=headers)
    with session_scope() as s:
        details = [e.details for e in s.exec(select(AuditEvent))]
    logged = [r.getMessage() for r in caplog.records]
    for secret in (SECRET_NAME, SECRET_CONCERN, "20120315-1236", "201203151236", "1203151236"):
        assert not any(secret in d for d in details), secret
        assert not any(secret in m for m in logged), secret


def test_api_receipt_names_the_written_recipient_and_when_it_is_read(portal: TestClient) -> None:
    """A report sent out of office hours: the receipt says where it goes and when it is first
    read, as decided at submission (``opens_at`` with offset, and in Swedish words)."""
    set_clock(lambda: datetime(2026, 12, 23, 17, 0, tzinfo=STOCKHOLM))
    try:
        resp = portal.post(URL, json=form(), headers=api_headers("kim.kurator"))
    finally:
        set_clock(None)
    assert resp.status_code == 201, resp.text
    [item] = resp.json()["reports"]
    [recipient] = item["recipients"]
    assert recipient["unit_id"] == "sdf-sodermalm" and item["calls"] == []
    # 24–26 December are off and the 27th is a Sunday.
    assert recipient["opens_at"] == "2026-12-28T08:00:00+01:00"
    assert recipient["opens_text"] == "läses tidigast måndag 28 december kl. 08:00"
    assert recipient["opens_text"] in resp.json()["message"]


def test_with_flow_runs_turned_off_a_submission_starts_none(
    portal: TestClient, office_hours: None, flow_starts: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # OROSFLOW_FLOW_RUNS=false: the receipt as always, and the reconciler starts the run later.
    from orosflow.core.settings import reset_settings

    monkeypatch.setenv("OROSFLOW_FLOW_RUNS", "false")
    reset_settings()
    resp = portal.post(URL, json=form(), headers=api_headers("kim.kurator"))
    assert resp.status_code == 201, resp.text
    assert report_count() == 1
    assert flow_starts == []
