"""Issue 11, finding 11: every error is Swedish, names a field path (or ``body``) and never
repeats what was sent. Each attack sends a unique marker as the bad value and checks that the
answer does not contain it. Also the API defects the schemathesis run (test_api_fuzz) found."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from factories import form
from portal_support import api_headers, submit_example

URL = "/api/v1/reports"
MARKER = "Zqx7MarkörEko"
ENGLISH = ("There was an error", "JSON decode error", "Expecting", "Field required", "detail")


@pytest.fixture(autouse=True)
def no_prefect(monkeypatch: pytest.MonkeyPatch) -> None:
    async def start(items: list[tuple[str, str]], attempt: Any = None) -> dict[str, None]:
        return {rid: None for rid, _ in items}

    monkeypatch.setattr("orosflow.handover.trigger.start_flow_runs", start)


def swedish_422(resp: Any, code: str = "invalid_request") -> dict[str, tuple[str, str]]:
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == code, error
    for english in ENGLISH:
        assert english not in resp.text
    assert MARKER not in resp.text
    return {f["field"]: (f["code"], f["message"]) for f in error.get("fields") or []}


def post_raw(portal: TestClient, body: bytes) -> Any:
    headers = {**api_headers("kim.kurator"), "Content-Type": "application/json"}
    return portal.post(URL, content=body, headers=headers)


def test_deeply_nested_json_is_a_swedish_422_naming_the_body(portal: TestClient) -> None:
    """Was 400 "There was an error parsing the body" (the parser's RecursionError)."""
    resp = post_raw(portal, b"[" * 100_000 + json.dumps(MARKER).encode() + b"]" * 100_000)
    fields = swedish_422(resp)
    assert fields == {"body": ("body_unreadable", fields["body"][1])}
    assert "JSON" in fields["body"][1] and "nästlad" in fields["body"][1]


def test_body_that_is_not_utf8_is_a_swedish_422_naming_the_body(portal: TestClient) -> None:
    """Found by schemathesis: a body of byte 0xff was the same English 400."""
    fields = swedish_422(post_raw(portal, b'{"a": "\xff' + MARKER.encode() + b'"}'))
    assert set(fields) == {"body"} and fields["body"][0] == "body_unreadable"


def test_malformed_json_names_body_not_a_byte_offset(portal: TestClient) -> None:
    """Was ``{"field": "14"}``: the decoder's byte offset."""
    fields = swedish_422(post_raw(portal, b'{"children": [' + MARKER.encode() + b"]}"))
    assert fields == {"body": ("json_invalid", "Innehållet är inte giltig JSON.")}


def test_unknown_category_is_not_echoed(portal: TestClient, office_hours: None) -> None:
    data = form(concern={"categories": ["neglect", MARKER], "observations": "Observation."})
    resp = portal.post(URL, json=data, headers=api_headers("kim.kurator"))
    fields = swedish_422(resp, "form_invalid")
    code, message = fields["concern.categories"]
    assert code == "category_unknown" and message.startswith("Okänd kategori.")


def test_unknown_field_name_is_not_echoed_in_the_field_path(
    portal: TestClient, office_hours: None
) -> None:
    data = form()
    data["children"][0][MARKER] = "x"
    data[MARKER + "2"] = "y"
    fields = swedish_422(
        portal.post(URL, json=data, headers=api_headers("kim.kurator")), "form_invalid"
    )
    assert fields["children.0"][0] == "extra_forbidden"
    assert fields["body"] == ("extra_forbidden", "Innehåller ett okänt fält; ta bort det.")


def test_unknown_municipality_code_is_not_echoed(portal: TestClient, office_hours: None) -> None:
    data = form(clinic={"name": "Ungdomsmottagningen", "municipality": "0999"})
    resp = portal.post(URL, json=data, headers=api_headers("kim.kurator"))
    fields = swedish_422(resp, "form_invalid")
    assert fields["clinic.municipality"][0] == "municipality_unknown"
    assert "0999" not in resp.text


def test_phone_contact_unknown_unit_is_not_echoed(portal: TestClient, office_hours: None) -> None:
    """routing.Router.unit's message was "Okänd enhet '<input>' i katalogen."."""
    reference = submit_example()
    resp = portal.post(
        f"{URL}/{reference}/phone-contacts",
        json={"answered_by": "Eva", "called_at": "2026-11-23T09:30:00+01:00", "unit_id": MARKER},
        headers=api_headers("kim.kurator"),
    )
    assert swedish_422(resp, "unknown_unit") == {}
    assert "Okänd enhet" in resp.json()["error"]["message"]


def test_phone_contact_field_errors_name_the_field_in_swedish(portal: TestClient) -> None:
    reference = submit_example()
    resp = portal.post(
        f"{URL}/{reference}/phone-contacts",
        json={"called_at": MARKER, MARKER: 1},
        headers=api_headers("kim.kurator"),
    )
    fields = swedish_422(resp)
    assert fields["answered_by"] == ("missing", "Uppgiften saknas.")
    assert fields["called_at"][0] == "datetime_from_date_parsing"


def test_intake_reason_and_outcome_codes_are_not_echoed(
    portal: TestClient, notified_report: str
) -> None:
    headers = api_headers("sara.sodermalm")
    base = f"/api/v1/inbox/{notified_report}"
    bad = portal.post(f"{base}/decline", headers=headers, json={"reason": MARKER})
    assert swedish_422(bad, "reason_invalid") == {}
    unit = portal.post(
        f"{base}/decline",
        headers=headers,
        json={"reason": "wrong_district", "right_unit_id": MARKER},
    )
    assert swedish_422(unit, "unknown_unit") == {}
    assert portal.post(f"{base}/confirm", headers=headers).status_code == 200
    outcome = portal.post(f"{base}/feedback", headers=headers, json={"outcome": MARKER})
    assert swedish_422(outcome, "outcome_invalid") == {}


def test_admin_unknown_account_is_not_echoed(portal: TestClient) -> None:
    resp = portal.post(f"/api/v1/admin/users/{MARKER}/disable", headers=api_headers("adam.admin"))
    assert resp.status_code == 404 and MARKER not in resp.text
    assert resp.json()["error"]["message"] == "Det finns inget sådant konto."


def test_wrong_method_is_405_in_swedish_with_allow(portal: TestClient) -> None:
    """Found by schemathesis: the 405 lost its Allow header (RFC 9110 requires it)."""
    resp = portal.delete(URL, headers=api_headers("kim.kurator"))
    assert resp.status_code == 405
    assert set(resp.headers["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}
    assert resp.json()["error"]["code"] == "method_not_allowed"
    assert "inte tillåten" in resp.json()["error"]["message"]


@pytest.mark.parametrize(
    ("param", "value"), [("to_date", "9999-12-31"), ("from_date", "0001-01-01")]
)
def test_audit_date_filter_at_the_calendar_edge_is_422_not_500(
    portal: TestClient, param: str, value: str
) -> None:
    """to_date + one day, or local midnight in UTC, left the calendar: OverflowError, 500."""
    for path in ("/api/v1/audit/reports", "/api/v1/audit/stats", "/api/v1/audit/export.csv"):
        resp = portal.get(path, params={param: value}, headers=api_headers("anna.revisor"))
        assert resp.status_code == 422, (path, resp.status_code, resp.text[:300])
        [field] = resp.json()["error"]["fields"]
        assert field["field"] == param and field["code"] == "date_out_of_range"
    page_client_ok = portal.get("/api/v1/audit/reports", params={param: "2026-11-23"})
    assert page_client_ok.status_code == 401


def test_openapi_declares_the_error_answers_of_every_operation(portal: TestClient) -> None:
    """Found by schemathesis: 401/403/422 were undeclared on the audit and admin operations,
    and the 422 documented FastAPI's ``{"detail": ...}`` instead of the error shape sent."""
    doc = portal.get("/api/openapi.json").json()
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            for status in ("401", "403", "422"):
                declared = op["responses"].get(status)
                assert declared, f"{method.upper()} {path} does not declare {status}"
                schema = declared["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorOut"}, (path, status)
    assert "HTTPValidationError" not in doc["components"]["schemas"]
