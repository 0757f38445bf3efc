"""The intake JSON API (/api/v1/inbox): list, open (audited), confirm, feedback, decline,
structured errors, token auth and the OpenAPI description."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlmodel import select

from models.tables import AuditEvent, Handover, Report
from orosflow.core.db import session_scope
from orosflow.handover.lifecycle import read_feedback

from factories import form
from portal_support import api_headers

EXAMPLE_CHILD = form()["children"][0]
SARA = "user:sara.sodermalm"


def events(action: str, actor: str | None = None) -> list[AuditEvent]:
    with session_scope() as s:
        stmt = select(AuditEvent).where(AuditEvent.action == action)
        if actor:
            stmt = stmt.where(AuditEvent.actor == actor)
        return list(s.exec(stmt.order_by(AuditEvent.seq)))


def state_of(reference: str) -> tuple[str, str]:
    with session_scope() as s:
        report = s.exec(select(Report).where(Report.reference == reference)).one()
        h = s.exec(select(Handover).where(Handover.report_id == report.id)).one()
        return report.status, h.status


def test_list_is_metadata_only(portal: TestClient, notified_report: str) -> None:
    resp = portal.get("/api/v1/inbox", headers=api_headers("sara.sodermalm"))
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "open" and body["counts"]["open"] == 1
    [item] = body["items"]
    assert item["reference"] == notified_report
    assert item["urgency"] == "not_acute" and item["priority"] is False
    assert item["handover"]["unit_id"] == "sdf-sodermalm"
    assert item["handover"]["status_text"] == "aviserad"
    assert item["handover"]["deadline_at"].startswith("2026-11-24T12:00:00+01:00")
    assert EXAMPLE_CHILD["name"] not in resp.text and "personal_number" not in resp.text
    assert not events("content.read", SARA)
    bad = portal.get("/api/v1/inbox?status=nonsense", headers=api_headers("sara.sodermalm"))
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"


def test_open_returns_content_and_is_audited(portal: TestClient, notified_report: str) -> None:
    resp = portal.get(f"/api/v1/inbox/{notified_report}", headers=api_headers("sara.sodermalm"))
    assert resp.status_code == 200
    body = resp.json()
    assert body["erased"] is False
    assert body["content"]["children"][0]["name"] == EXAMPLE_CHILD["name"]
    assert body["content"]["reporter"]["phone"] == "08-000 00 01"
    assert body["category_labels"]["neglect"].startswith("Brister i omsorgen")
    assert body["handover"]["rule"] == "R-STOCKHOLM-DISTRICT"
    assert body["can_confirm"] is True and body["can_feedback"] is False
    reads = events("content.read", SARA)
    assert [json.loads(e.details)["purpose"] for e in reads] == ["api-open"]


def test_confirm_then_feedback(portal: TestClient, notified_report: str) -> None:
    headers = api_headers("sara.sodermalm")
    base = f"/api/v1/inbox/{notified_report}"
    early = portal.post(f"{base}/feedback", headers=headers, json={"outcome": "opened"})
    assert early.status_code == 409
    assert early.json()["error"]["code"] == "illegal_transition"
    assert "återkoppling" in early.json()["error"]["message"]

    resp = portal.post(f"{base}/confirm", headers=headers)
    assert resp.status_code == 200 and resp.json()["changed"] is True
    assert state_of(notified_report) == ("handed_over", "confirmed")
    repeat = portal.post(f"{base}/confirm", headers=headers)
    assert repeat.status_code == 200 and repeat.json()["changed"] is False
    assert "redan bekräftat" in repeat.json()["message"]
    assert len(events("handover.confirmed")) == 1

    unknown = portal.post(f"{base}/feedback", headers=headers, json={"outcome": "maybe"})
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "outcome_invalid"
    future = portal.post(
        f"{base}/feedback", headers=headers, json={"outcome": "opened", "decided_on": "2027-01-01"}
    )
    assert future.status_code == 422 and future.json()["error"]["code"] == "date_future"
    ok = portal.post(
        f"{base}/feedback",
        headers=headers,
        json={"outcome": "already_ongoing", "decided_on": "2026-11-23"},
    )
    assert ok.status_code == 200 and ok.json()["changed"] is True
    assert state_of(notified_report) == ("feedback_received", "confirmed")
    [fb] = read_feedback(notified_report, actor="system:test")
    assert fb["outcome"] == "already_ongoing" and fb["recorded_by"] == SARA


def test_decline_with_reason_code(portal: TestClient, notified_report: str) -> None:
    headers = api_headers("sara.sodermalm")
    base = f"/api/v1/inbox/{notified_report}"
    bad = portal.post(f"{base}/decline", headers=headers, json={"reason": "busy"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "reason_invalid"
    ok = portal.post(
        f"{base}/decline",
        headers=headers,
        json={"reason": "wrong_district", "right_unit_id": "sdf-norrmalm"},
    )
    assert ok.status_code == 200 and "avböjt" in ok.json()["message"]
    again = portal.post(f"{base}/confirm", headers=headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "illegal_transition"


def test_token_is_required(portal: TestClient, notified_report: str) -> None:
    for resp in (
        portal.get("/api/v1/inbox"),
        portal.get(f"/api/v1/inbox/{notified_report}"),
        portal.post(f"/api/v1/inbox/{notified_report}/confirm"),
    ):
        assert resp.status_code == 401
        assert resp.json()["error"]["code"] == "unauthenticated"
        assert resp.headers["www-authenticate"] == "Bearer"
    wrong = portal.get("/api/v1/inbox", headers={"Authorization": "Bearer not-a-token"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_token"
    assert state_of(notified_report) == ("routed", "notified")


def test_openapi_documents_the_inbox(portal: TestClient) -> None:
    spec = portal.get("/api/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/api/v1/inbox",
        "/api/v1/inbox/{reference}",
        "/api/v1/inbox/{reference}/confirm",
        "/api/v1/inbox/{reference}/feedback",
        "/api/v1/inbox/{reference}/decline",
    ):
        assert path in paths, path
    schemas = spec["components"]["schemas"]
    assert schemas["FeedbackIn"]["properties"]["outcome"]["enum"] == [
        "opened",
        "not_opened",
        "already_ongoing",
    ]
    assert "ReportView" in schemas and "InboxItem" in schemas
