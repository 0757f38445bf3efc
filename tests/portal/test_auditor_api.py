"""The auditor's JSON API: the same service as the pages, behind an auditor's bearer token."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import col, select

from models.tables import AuditEvent, Report
from orosflow.core.clock import set_clock
from orosflow.core.db import session_scope
from orosflow.handover import delivery as handovers
from orosflow.handover import lifecycle

from portal_support import api_headers, submit_example

SODERMALM = "sdf-sodermalm"
FLOW_RUN = "5f1c6a4e-0000-4000-8000-00000000abcd"


def report_id(reference: str) -> str:
    with session_scope() as s:
        return s.exec(select(Report).where(Report.reference == reference)).one().id


def test_api_gives_the_chain_handovers_and_flow_run_link(
    portal: TestClient, notified_report: str
) -> None:
    lifecycle.confirm(notified_report, SODERMALM, by="user:sara.sodermalm")
    handovers.attach_flow_run(report_id(notified_report), FLOW_RUN)
    headers = api_headers("anna.revisor")

    resp = portal.get(f"/api/v1/audit/reports/{notified_report.lower()}", headers=headers)

    assert resp.status_code == 200
    body = resp.json()
    assert body["reference"] == notified_report
    assert body["flow_run_url"] == f"http://127.0.0.1:4200/runs/flow-run/{FLOW_RUN}"
    actions = [e["action"] for e in body["events"]]
    for expected in ("report.received", "handover.created", "handover.notified"):
        assert expected in actions
    assert actions.index("handover.notified") < actions.index("handover.confirmed")
    assert [e["seq"] for e in body["events"]] == sorted(e["seq"] for e in body["events"])
    confirmed = next(e for e in body["events"] if e["action"] == "handover.confirmed")
    assert confirmed["actor"] == "user:sara.sodermalm"
    assert confirmed["action_label"] == "Mottagandet bekräftat"
    assert confirmed["rule"] == "L-CONFIRM" and confirmed["rule_explanation"]
    [h] = body["handovers"]
    created = next(e for e in body["events"] if e["action"] == "handover.created")
    assert created["rule"] == h["rule"] == "R-STOCKHOLM-DISTRICT"
    assert created["rule_explanation"] == h["explanation"]
    assert h["confirmed_by"] == "user:sara.sodermalm" and h["minutes_to_confirmation"] == 0
    assert body["chain"]["ok"] is True
    assert body["chain"]["message"].startswith("Kedjan är hel")


def test_api_chain_reports_the_first_tampered_event(
    portal: TestClient, notified_report: str
) -> None:
    headers = api_headers("anna.revisor")
    assert portal.get("/api/v1/audit/chain", headers=headers).json()["ok"] is True
    with session_scope() as s:
        seq = s.exec(
            select(AuditEvent.seq)
            .where(AuditEvent.action == "handover.created")
            .order_by(col(AuditEvent.seq))
        ).first()
        s.exec(  # type: ignore[call-overload]
            text("UPDATE audit_event SET actor = 'user:mallory' WHERE seq = :seq").bindparams(
                seq=seq
            )
        )

    chain = portal.get("/api/v1/audit/chain", headers=headers).json()
    report = portal.get(f"/api/v1/audit/reports/{notified_report}", headers=headers).json()

    assert chain["ok"] is False and chain["first_broken_seq"] == seq
    assert "bruten" in chain["message"]
    assert report["chain"]["first_broken_seq"] == seq
    assert [e["seq"] for e in report["events"] if e["broken"]] == [seq]


def test_api_lists_with_filters_and_paging(portal: TestClient) -> None:
    # Monday 10:00 in Stockholm: the acute report goes to the open intake unit only (out of
    # hours it would also name the socialjour), so each report has exactly one recipient.
    set_clock(lambda: datetime(2026, 11, 23, 9, 0, tzinfo=UTC))
    try:
        _lists_with_filters_and_paging(portal)
    finally:
        set_clock(None)


def _lists_with_filters_and_paging(portal: TestClient) -> None:
    refs = [submit_example() for _ in range(3)]
    acute = submit_example(urgency="acute")
    headers = api_headers("anna.revisor")

    first = portal.get("/api/v1/audit/reports", params={"per_page": 2}, headers=headers).json()
    second = portal.get(
        "/api/v1/audit/reports", params={"per_page": 2, "page": 2}, headers=headers
    ).json()
    not_acute = portal.get(
        "/api/v1/audit/reports", params={"urgency": "not_acute"}, headers=headers
    ).json()

    assert first["total"] == 4 and first["pages"] == 2
    seen = [r["reference"] for r in first["items"] + second["items"]]
    assert sorted(seen) == sorted([*refs, acute])
    assert seen == sorted(seen, reverse=True)  # newest first
    assert {r["reference"] for r in not_acute["items"]} == set(refs)
    assert not_acute["filters"]["urgency"] == "not_acute"
    # Routed at submission: each has its recipient before any mail went out.
    assert all(r["status"] == "routed" and len(r["recipients"]) == 1 for r in first["items"])


def test_api_refuses_a_bad_filter_with_field_errors(portal: TestClient) -> None:
    resp = portal.get(
        "/api/v1/audit/reports",
        params={"from_date": "2026-13-01", "municipality": "Nacka"},
        headers=api_headers("anna.revisor"),
    )
    assert resp.status_code == 422
    error = resp.json()["error"]
    assert error["code"] == "invalid_filter"
    assert {f["field"] for f in error["fields"]} == {"from_date", "municipality"}


def test_api_stats_time_confirmation_from_notification(
    portal: TestClient, notified_report: str
) -> None:
    later = datetime(2026, 11, 23, 9, 25, tzinfo=UTC)  # notified at 09:00 UTC
    set_clock(lambda: later)
    lifecycle.confirm(notified_report, SODERMALM, by="user:sara.sodermalm")
    headers = api_headers("anna.revisor")

    stats = portal.get("/api/v1/audit/stats", headers=headers).json()

    assert stats["reports"] == 1
    assert stats["percentile_method"] == "nearest-rank"
    overall = next(d for d in stats["time_to_confirmation"] if d["group"] == "all")
    assert overall["count"] == 1
    assert overall["p50_minutes"] == overall["p95_minutes"] == 25.0
    acute = next(d for d in stats["time_to_confirmation"] if d["group"] == "acute")
    assert acute["count"] == 0 and acute["p50_minutes"] is None
    assert [(r["key"], r["count"]) for r in stats["per_municipality"]] == [("0180", 1)]
    assert {r["key"]: r["count"] for r in stats["per_category"]} == {
        "neglect": 1,
        "school_absence": 1,
    }
    assert stats["per_month"] == [{"key": "2026-11", "label": "2026-11", "count": 1}]
    assert stats["handovers"]["confirmed"] == 1 and stats["handovers"]["confirmed_late"] == 0
    future = portal.get(
        "/api/v1/audit/stats", params={"from_date": "2026-11-24"}, headers=headers
    ).json()
    assert future["reports"] == 0 and future["per_municipality"] == []


def test_api_exports_are_recorded(portal: TestClient, notified_report: str) -> None:
    headers = api_headers("anna.revisor")

    as_json = portal.get("/api/v1/audit/export.json", params={"status": "routed"}, headers=headers)
    as_csv = portal.get("/api/v1/audit/export.csv", headers=headers)

    assert json.loads(as_json.text)["reports"][0]["reference"] == notified_report
    rows = list(csv.DictReader(io.StringIO(as_csv.content.decode("utf-8-sig")), delimiter=";"))
    assert [r["reference"] for r in rows] == [notified_report]
    with session_scope() as s:
        events = s.exec(
            select(AuditEvent)
            .where(AuditEvent.action == "audit.exported")
            .order_by(col(AuditEvent.seq))
        ).all()
    assert [(e.actor, json.loads(e.details)["format"]) for e in events] == [
        ("user:anna.revisor", "json"),
        ("user:anna.revisor", "csv"),
    ]
    assert json.loads(events[0].details)["filters"] == {"status": "routed"}


def test_api_unknown_report_and_missing_token(portal: TestClient) -> None:
    headers = api_headers("anna.revisor")
    missing = portal.get("/api/v1/audit/reports/OA-2026-999999", headers=headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    anonymous = portal.get("/api/v1/audit/chain")
    assert anonymous.status_code == 401


def test_openapi_documents_the_audit_api(portal: TestClient) -> None:
    spec = portal.get("/api/openapi.json").json()
    reports = spec["paths"]["/api/v1/audit/reports"]["get"]
    assert {p["name"] for p in reports["parameters"]} >= {
        "from_date",
        "to_date",
        "municipality",
        "status",
        "urgency",
        "page",
        "per_page",
    }
    ok = reports["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/AuditReportPage"}
    chain = spec["paths"]["/api/v1/audit/reports/{reference}"]["get"]["responses"]["200"]
    assert chain["content"]["application/json"]["schema"]["$ref"].endswith("/AuditReportChain")
    assert "AuditStats" in spec["components"]["schemas"]
    assert "/api/v1/audit/chain" in spec["paths"]
