"""The auditor's pages: the handover chain with its verification status, filters, exports and
statistics — metadata only, never the child's data."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import col, select

from models.form import categories as form_categories
from models.tables import AuditEvent, Handover, Report
from orosflow.core.clock import set_clock
from orosflow.core.csvfile import csv_cell, write_csv
from orosflow.core.db import session_scope
from orosflow.core.smtp_capture import MailCapture
from orosflow.handover import delivery as handovers
from orosflow.handover import lifecycle
from orosflow.views import auditor as audit_view
from routing.hours import TZ

from factories import SECRET_ADDRESS, SECRET_CONCERN, SECRET_NAME, SECRET_SCHOOL, child
from portal_support import PASSWORD, api_headers, csrf_of, hand_over, login, submit_example

#: Strings from the child's data that must never reach an auditor (the personnummer in
#: every spelling, the birth date, names of the child, guardian and siblings, concern text).
SECRETS = [
    SECRET_NAME,
    SECRET_ADDRESS,
    SECRET_CONCERN,
    SECRET_SCHOOL,
    "20120315-1236",
    "201203151236",
    "120315-1236",
    "20120315",
    "Barnsson",
    "070-000 00 00",
]
SODERMALM = "sdf-sodermalm"


def events_of(reference: str) -> list[AuditEvent]:
    with session_scope() as s:
        rid = s.exec(select(Report).where(Report.reference == reference)).one().id
        return list(
            s.exec(
                select(AuditEvent).where(AuditEvent.report_id == rid).order_by(col(AuditEvent.seq))
            )
        )


def handovers_of(reference: str) -> list[Handover]:
    with session_scope() as s:
        rid = s.exec(select(Report).where(Report.reference == reference)).one().id
        return list(s.exec(select(Handover).where(Handover.report_id == rid)))


def confirm_all(reference: str, by: str = "user:sara.sodermalm") -> None:
    for h in handovers_of(reference):
        lifecycle.confirm(reference, h.unit_id, by=by)


def tamper(seq: int) -> None:
    """What an attacker with database access would do: rewrite an event's details."""
    with session_scope() as s:
        s.exec(  # type: ignore[call-overload]
            text("UPDATE audit_event SET details = :d WHERE seq = :seq").bindparams(
                d='{"tampered": true}', seq=seq
            )
        )


@pytest.fixture
def clock() -> Iterator[dict[str, datetime]]:
    """A settable "now" for tests that move time between notification and confirmation."""
    now = {"t": datetime(2026, 11, 23, 9, 0, tzinfo=UTC)}  # Monday 10:00 in Stockholm
    set_clock(lambda: now["t"])
    yield now
    set_clock(None)


# --- the chain --------------------------------------------------------------------------------


def test_auditor_sees_the_whole_chain_with_actors_rules_and_an_intact_chain(
    portal: TestClient, notified_report: str
) -> None:
    lifecycle.confirm(notified_report, SODERMALM, by="user:sara.sodermalm")
    with session_scope() as s:
        rid = s.exec(select(Report).where(Report.reference == notified_report)).one().id
    handovers.attach_flow_run(rid, "5f1c6a4e-0000-4000-8000-000000000001")
    h = handovers_of(notified_report)[0]
    total = len(events_of(notified_report))
    login(portal, "anna.revisor")
    with session_scope() as s:
        all_events = len(s.exec(select(AuditEvent)).all())

    page = portal.get(f"/audit/reports/{notified_report}")

    assert page.status_code == 200
    html = page.text
    steps = [
        "Anmälan mottagen",
        "Överlämning skapad",
        "Mottagaren aviserad via e-post",
        "Mottagandet bekräftat",
    ]
    positions = [html.index(label) for label in steps]
    assert positions == sorted(positions), "events are shown in chain order"
    for actor in ("user:kim.kurator", "system:concern-report", "user:sara.sodermalm"):
        assert actor in html
    assert h.rule == "R-STOCKHOLM-DISTRICT" and h.rule in html
    assert h.explanation in html  # the routing decision's own explanation
    assert "L-CONFIRM" in html and "R-INTAKE" in html
    assert f"Kedjan är hel ({all_events} händelser)" in html
    assert total >= 5
    assert 'href="http://127.0.0.1:4200/runs/flow-run/5f1c6a4e-0000-4000-8000-000000000001"' in html
    assert "Stockholm" in html and "Södermalm" in html  # recipient, not the child's address


def test_a_tampered_event_shows_the_chain_as_broken_at_its_seq(
    portal: TestClient, notified_report: str
) -> None:
    notified = next(e for e in events_of(notified_report) if e.action == "handover.notified")
    assert notified.seq is not None
    tamper(notified.seq)
    login(portal, "anna.revisor")

    html = portal.get(f"/audit/reports/{notified_report}").text

    assert "Kedjan är hel" not in html
    assert f"Kedjan är bruten vid händelse {notified.seq}" in html
    assert "ändrad händelse" in html
    assert f'<tr id="event-{notified.seq}" class="broken-row">' in html
    assert f'href="#event-{notified.seq}"' in html


def test_unknown_reference_is_a_404_page(portal: TestClient) -> None:
    login(portal, "anna.revisor")
    resp = portal.get("/audit/reports/OA-2026-999999")
    assert resp.status_code == 404
    assert "finns inte" in resp.text


# --- no child data ----------------------------------------------------------------------------


def _secret_report() -> str:
    kid = child(name=SECRET_NAME, address=SECRET_ADDRESS, school=SECRET_SCHOOL)
    return submit_example(
        children=[kid],
        concern={
            "categories": ["neglect"],
            "observations": SECRET_CONCERN,
            "child_said": "Exempeltext.",
        },
    )


async def test_auditor_pages_exports_and_api_never_show_the_childs_data(
    portal: TestClient, smtp: MailCapture, office_hours: None
) -> None:
    reference = _secret_report()
    await hand_over(reference)
    lifecycle.confirm(reference, SODERMALM, by="user:sara.sodermalm")
    lifecycle.record_feedback(
        reference, SODERMALM, "opened", date(2026, 11, 23), by="user:sara.sodermalm"
    )
    lifecycle.record_phone_contact(
        reference, "Handläggare på Södermalm", datetime(2026, 11, 23, 8, 30, tzinfo=UTC),
        by="user:kim.kurator", unit_id=SODERMALM,
    )  # fmt: skip
    login(portal, "anna.revisor")
    headers = api_headers("anna.revisor")

    bodies: dict[str, str] = {}
    for url in (
        "/audit",
        "/audit?status=handed_over&municipality=0180",
        f"/audit/reports/{reference}",
        "/audit/stats",
        "/audit/export.csv",
        "/audit/export.json",
    ):
        resp = portal.get(url)
        assert resp.status_code == 200, url
        bodies[url] = resp.text
    for url in (
        "/api/v1/audit/reports",
        f"/api/v1/audit/reports/{reference}",
        "/api/v1/audit/stats",
        "/api/v1/audit/chain",
        "/api/v1/audit/export.json",
        "/api/v1/audit/export.csv",
    ):
        resp = portal.get(url, headers=headers)
        assert resp.status_code == 200, url
        bodies[url] = resp.text

    assert reference in bodies[f"/audit/reports/{reference}"]
    assert "Återkoppling registrerad" in bodies[f"/audit/reports/{reference}"]
    for url, body in bodies.items():
        for secret in SECRETS:
            assert secret not in body, f"{secret!r} leaked in {url}"
        for outcome in lifecycle.FEEDBACK_OUTCOMES.values():
            assert outcome not in body, f"feedback outcome leaked in {url}"
    with session_scope() as s:
        reads = s.exec(select(AuditEvent).where(AuditEvent.action == "content.read")).all()
    assert reads, "the flow itself read the content (so the check below can fail)"
    assert not [e for e in reads if e.actor.startswith("user:anna")]


# --- filters and exports ----------------------------------------------------------------------


def _at(local_iso: str) -> datetime:
    return datetime.fromisoformat(local_iso).replace(tzinfo=TZ).astimezone(UTC)


async def _populate(clock: dict[str, datetime]) -> dict[str, str]:
    """Reports with known recipients, categories, times and confirmation delays.

    Delays from notification to confirmation: 10, 20, 30, 40 min (not acute) and 100 min
    (acute, its deadline is 60 min, so late). One more notified but never confirmed, one routed
    at submission and never delivered (submitted 00:30 on 1 December, Stockholm time, i.e.
    30 November in UTC).
    """
    nacka = child(municipality="0182", district=None)
    plan: list[tuple[str, dict[str, Any], int | None]] = [
        ("sod1", {"concern": _concern(["neglect", "school_absence"])}, 10),
        ("sod2", {"concern": _concern(["neglect"])}, 20),
        ("nacka1", {"children": [nacka], "concern": _concern(["school_absence"])}, 30),
        ("nacka2", {"children": [nacka], "concern": _concern(["family_conflict"])}, 40),
        ("acute", {"urgency": "acute", "concern": _concern(["neglect"])}, 100),
        ("open", {"concern": _concern(["other"])}, None),
    ]
    refs: dict[str, str] = {}
    for name, overrides, delay in plan:
        refs[name] = submit_example(**overrides)
        await hand_over(refs[name])
        if delay is not None:
            clock["t"] += timedelta(minutes=delay)
            confirm_all(refs[name])
        clock["t"] += timedelta(minutes=1)
    clock["t"] = _at("2026-12-01T00:30")
    refs["december"] = submit_example(concern=_concern(["neglect"]))
    with session_scope() as s:  # an old row from before categories were kept
        s.exec(  # type: ignore[call-overload]
            text("UPDATE report SET categories = NULL WHERE reference = :r").bindparams(
                r=refs["december"]
            )
        )
    return refs


def _concern(categories: list[str]) -> dict[str, Any]:
    return {"categories": categories, "observations": "Exempeltext.", "child_said": "Exempel."}


def _listed(html: str) -> set[str]:
    import re

    return set(re.findall(r'href="/audit/reports/(OA-\d{4}-\d{6})"', html))


async def test_filters_select_by_period_municipality_and_state(
    portal: TestClient, smtp: MailCapture, clock: dict[str, datetime]
) -> None:
    refs = await _populate(clock)
    login(portal, "anna.revisor")

    everything = portal.get("/audit")
    assert _listed(everything.text) == set(refs.values())
    december = portal.get("/audit", params={"from_date": "2026-12-01"})
    assert _listed(december.text) == {refs["december"]}  # 00:30 Stockholm is 1 December
    november = portal.get("/audit", params={"from_date": "2026-11-01", "to_date": "2026-11-30"})
    assert _listed(november.text) == set(refs.values()) - {refs["december"]}
    nacka = portal.get("/audit", params={"municipality": "0182"})
    assert _listed(nacka.text) == {refs["nacka1"], refs["nacka2"]}
    # Routed at submission (the route is decided then): none is left merely received.
    received = portal.get("/audit", params={"status": "received"})
    assert _listed(received.text) == set()
    routed = portal.get("/audit", params={"status": "routed", "municipality": "0180"})
    assert _listed(routed.text) == {refs["open"], refs["december"]}
    acute = portal.get("/audit", params={"urgency": "acute"})
    assert _listed(acute.text) == {refs["acute"]}

    page = nacka.text
    assert '<option value="0182" selected>0182 Nacka</option>' in page
    assert 'href="/audit/export.csv?municipality=0182"' in page
    assert 'href="/audit/export.json?municipality=0182"' in page
    assert '<label for="from_date">' in page and '<label for="municipality">' in page


def test_invalid_filter_is_explained_next_to_the_field(portal: TestClient) -> None:
    login(portal, "anna.revisor")
    resp = portal.get("/audit", params={"from_date": "2026-12-05", "to_date": "2026-12-01"})
    assert resp.status_code == 400
    assert 'class="error-summary"' in resp.text and 'href="#to_date"' in resp.text
    assert "Slutdatumet ligger före startdatumet" in resp.text
    bad = portal.get("/audit", params={"from_date": "igår", "status": "hacked"})
    assert bad.status_code == 400
    assert 'href="#from_date"' in bad.text and 'href="#status"' in bad.text


async def test_csv_export_has_one_row_per_handover_and_defuses_formulas(
    portal: TestClient, smtp: MailCapture, office_hours: None
) -> None:
    placed = submit_example(children=[child(placed_by="0182")])  # Södermalm + Nacka
    await hand_over(placed)
    lifecycle.confirm(placed, SODERMALM, by='=HYPERLINK("http://evil.example","klicka")')
    undelivered = submit_example()  # routed at submission, its mail not sent yet
    login(portal, "anna.revisor")

    resp = portal.get("/audit/export.csv")

    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/csv")
    assert 'attachment; filename="orosflow-granskning-' in resp.headers["content-disposition"]
    assert resp.headers["content-disposition"].endswith('.csv"')
    rows = list(csv.DictReader(io.StringIO(resp.content.decode("utf-8-sig")), delimiter=";"))
    assert list(rows[0].keys()) == list(audit_view.CSV_COLUMNS)
    by_ref: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_ref.setdefault(row["reference"], []).append(row)
    assert {r["municipality"] for r in by_ref[placed]} == {"0180", "0182"}
    assert len(by_ref[placed]) == 2
    [waiting] = by_ref[undelivered]
    assert (waiting["unit_id"], waiting["handover_status"]) == (SODERMALM, "created")
    sodermalm = next(r for r in by_ref[placed] if r["unit_id"] == SODERMALM)
    assert sodermalm["confirmed_by"] == '\'=HYPERLINK("http://evil.example","klicka")'
    assert sodermalm["handover_status"] == "confirmed"
    assert sodermalm["rule"] and sodermalm["explanation"]


def test_csv_cells_that_look_like_formulas_get_a_quote() -> None:
    for dangerous in ("=1+1", "+46 8 123", "-2+3", "@SUM(A1)", "\t=1", "\r=1"):
        assert csv_cell(dangerous) == "'" + dangerous
    assert csv_cell("Södermalm") == "Södermalm"
    assert csv_cell(None) == ""
    assert csv_cell(12) == "12"


def test_csv_cells_in_swedish_conventions() -> None:
    """Times in Stockholm with the offset (winter +01:00, summer +02:00), decimal comma with
    semicolons and a decimal point with commas, ja/nej."""
    assert csv_cell(datetime(2026, 11, 26, 9, 42, tzinfo=UTC)) == "2026-11-26T10:42:00+01:00"
    assert csv_cell(datetime(2026, 6, 1, 8, 0, tzinfo=UTC)) == "2026-06-01T10:00:00+02:00"
    assert csv_cell(0.48) == "0,48" and csv_cell(0.48, sep="comma") == "0.48"
    assert csv_cell(5.0) == "5" and csv_cell(True) == "ja" and csv_cell(False) == "nej"
    text = write_csv(("a", "b"), [["x;y", 1.5]])
    assert text == '\ufeffa;b\r\n"x;y";1,5\r\n'
    assert write_csv(("a", "b"), [["x;y", 1.5]], sep="comma") == "\ufeffa,b\r\nx;y,1.5\r\n"


def test_durations_under_a_minute_are_in_seconds() -> None:
    duration = audit_view.duration_text
    assert [duration(m) for m in (29 / 60, 0.48, 0.0, 59 / 60)] == ["29 s", "29 s", "0 s", "59 s"]
    assert [duration(m) for m in (1.0, 45.0, 125.0)] == ["1 min", "45 min", "2 h 5 min"]


async def test_exports_open_right_in_excel_and_confirmations_in_seconds(
    portal: TestClient, notified_report: str
) -> None:
    """Issue 12 item 9: semicolons, BOM, Stockholm times with offset, ?sep=comma; a unit that
    confirmed 29 s after the notification shows "29 s" (not "0 min") and 29 in the stats CSV."""
    [h] = handovers_of(notified_report)
    assert h.notified_at is not None
    set_clock(lambda: h.notified_at + timedelta(seconds=29))
    try:
        lifecycle.confirm(notified_report, SODERMALM, by="user:sara.sodermalm")
    finally:
        set_clock(None)
    login(portal, "anna.revisor")

    resp = portal.get("/audit/export.csv")
    assert resp.content.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel reads å, ä, ö
    text = resp.content.decode("utf-8-sig")
    assert text.splitlines()[0] == ";".join(audit_view.CSV_COLUMNS)
    [row] = list(csv.DictReader(io.StringIO(text), delimiter=";"))
    assert row["submitted_at"] == "2026-11-23T10:00:00+01:00"  # 09:00 UTC, in Stockholm
    assert row["notified_at"].endswith("+01:00") and row["confirmed_at"].endswith("+01:00")
    assert row["minutes_to_confirmation"] == "0,48"  # decimal comma beside semicolons
    assert row["unit_name"] == "Södermalms stadsdelsförvaltning"

    comma = portal.get("/audit/export.csv", params={"sep": "comma"}).content.decode("utf-8-sig")
    assert comma.splitlines()[0] == ",".join(audit_view.CSV_COLUMNS)
    [row] = list(csv.DictReader(io.StringIO(comma)))
    assert row["minutes_to_confirmation"] == "0.48"
    assert row["submitted_at"] == "2026-11-23T10:00:00+01:00"
    bad = portal.get("/audit/export.csv", params={"sep": "tab"})
    assert bad.status_code == 400 and "Okänd avgränsare" in bad.text
    api_bad = portal.get(
        "/api/v1/audit/export.csv", params={"sep": "tab"}, headers=api_headers("anna.revisor")
    )
    assert api_bad.status_code == 422
    assert api_bad.json()["error"]["code"] == "invalid_separator"

    exported = json.loads(portal.get("/audit/export.json").text)
    assert exported["reports"][0]["submitted_at"] == "2026-11-23T10:00:00+01:00"
    assert exported["reports"][0]["handovers"][0]["confirmed_at"].endswith("+01:00")

    assert "29 s" in portal.get("/audit").text
    assert "29 s" in portal.get(f"/audit/reports/{notified_report}").text
    stats = portal.get("/audit/stats").text
    assert _table(stats, "confirmation-times")["Alla"] == ["1", "29 s", "29 s", "29 s"]
    assert "0 min" not in stats

    for resp in (
        portal.get("/audit/stats.csv"),
        portal.get("/api/v1/audit/stats.csv", headers=api_headers("anna.revisor")),
    ):
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/csv")
        assert 'filename="orosflow-statistik-' in resp.headers["content-disposition"]
        assert resp.content.startswith(b"\xef\xbb\xbf")
        rows = list(csv.reader(io.StringIO(resp.content.decode("utf-8-sig")), delimiter=";"))
        assert rows[0] == list(audit_view.STATS_CSV_COLUMNS)
        times = {r[1]: r[3:] for r in rows if r[0] == "time_to_confirmation"}
        assert times["all"] == ["1", "29", "29", "29"]  # seconds
        assert ["reports", "", "Anmälningar i urvalet", "1"] in rows
    with session_scope() as s:
        formats = [
            json.loads(e.details)["format"]
            for e in s.exec(
                select(AuditEvent)
                .where(AuditEvent.action == "audit.exported")
                .order_by(col(AuditEvent.seq))
            )
        ]
    assert formats == ["csv", "csv", "json", "stats-csv", "stats-csv"]


async def test_json_export_parses_and_is_itself_on_record(
    portal: TestClient, notified_report: str
) -> None:
    login(portal, "anna.revisor")

    resp = portal.get("/audit/export.json", params={"municipality": "0180"})

    assert resp.status_code == 200
    assert resp.headers["content-disposition"].endswith('.json"')
    data = json.loads(resp.text)
    assert data["filters"]["municipality"] == "0180"
    assert data["exported_by"] == "user:anna.revisor"
    [report] = data["reports"]
    assert report["reference"] == notified_report
    assert report["handovers"][0]["unit_id"] == SODERMALM
    assert report["handovers"][0]["notified_at"]
    with session_scope() as s:
        [event] = s.exec(select(AuditEvent).where(AuditEvent.action == "audit.exported")).all()
    assert event.actor == "user:anna.revisor"
    assert json.loads(event.details) == {
        "format": "json",
        "filters": {"municipality": "0180"},
        "reports": 1,
        "rows": 1,
    }
    portal.get("/audit/export.csv")
    with session_scope() as s:
        assert (
            len(s.exec(select(AuditEvent).where(AuditEvent.action == "audit.exported")).all()) == 2
        )
    chain = portal.get(f"/audit/reports/{notified_report}").text
    assert "Kedjan är hel" in chain


# --- statistics -------------------------------------------------------------------------------


def _table(html: str, table_id: str) -> dict[str, list[str]]:
    """Rows of an accessible table: header cell text → the data cells' text."""
    import re

    start = html.index(f'id="{table_id}"')
    body = html[start : html.index("</table>", start)]
    rows = {}
    for tr in re.findall(r"<tr>(.*?)</tr>", body, flags=re.S):
        head = re.search(r'<th scope="row">(.*?)</th>', tr, flags=re.S)
        if head:
            rows[head.group(1).strip()] = [
                c.strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, flags=re.S)
            ]
    return rows


async def test_statistics_count_and_time_confirmations(
    portal: TestClient, smtp: MailCapture, clock: dict[str, datetime]
) -> None:
    await _populate(clock)
    login(portal, "anna.revisor")

    resp = portal.get("/audit/stats")

    assert resp.status_code == 200
    html = resp.text
    assert "<caption id=" in html and '<th scope="col">' in html
    # Every report has its recipient from submission on (december's mail is not sent yet).
    assert _table(html, "per-municipality") == {
        "0180 Stockholm": ["5"],
        "0182 Nacka": ["2"],
    }
    categories = {c.id: c.label for c in form_categories().values()}
    assert _table(html, "per-category") == {
        categories["neglect"]: ["3"],  # sod1, sod2, acute (december's categories are unknown)
        categories["school_absence"]: ["2"],
        categories["family_conflict"]: ["1"],
        categories["other"]: ["1"],
        "okänd": ["1"],
    }
    assert _table(html, "per-month") == {"2026-11": ["6"], "2026-12": ["1"]}
    # Nearest rank over 10, 20, 30, 40, 100 min: p50 = 3rd = 30, p90 = p95 = 5th = 100.
    assert _table(html, "confirmation-times") == {
        "Alla": ["5", "30 min", "1 h 40 min", "1 h 40 min"],
        "Akut": ["1", "1 h 40 min", "1 h 40 min", "1 h 40 min"],
        "Inte akut": ["4", "20 min", "40 min", "40 min"],
    }
    counts = _table(html, "handover-counts")
    assert counts["Överlämningar totalt"] == ["7"]  # december's too, created at submission
    assert counts["Bekräftade efter fristen"] == ["1"]  # the acute one: 100 > 60 min
    assert counts["Obekräftade efter fristen (försenade nu)"] == ["1"]  # "open", days later
    assert "närmaste rang" in html

    nacka = portal.get("/audit/stats", params={"municipality": "0182"}).text
    assert _table(nacka, "per-municipality") == {"0182 Nacka": ["2"]}
    assert _table(nacka, "confirmation-times")["Alla"] == ["2", "30 min", "40 min", "40 min"]


def test_percentiles_are_nearest_rank() -> None:
    values = [10.0, 20.0, 30.0, 40.0, 100.0]
    assert [audit_view.nearest_rank(values, p) for p in (50, 90, 95)] == [30.0, 100.0, 100.0]
    assert audit_view.nearest_rank([7.0], 95) == 7.0
    assert audit_view.nearest_rank([], 50) is None
    ten = [float(i) for i in range(1, 11)]
    assert [audit_view.nearest_rank(ten, p) for p in (50, 90, 95)] == [5.0, 9.0, 10.0]


# --- roles ------------------------------------------------------------------------------------


@pytest.mark.parametrize("username", ["kim.kurator", "sara.sodermalm"])
def test_other_roles_get_403_on_audit_pages_and_api(portal: TestClient, username: str) -> None:
    page = portal.get("/login")  # signed in without visiting the role's own home page
    resp = portal.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    for url in ("/audit", "/audit/stats", "/audit/export.csv", "/audit/reports/OA-2026-000001"):
        assert portal.get(url).status_code == 403, url
    headers = api_headers(username)
    for url in ("/api/v1/audit/reports", "/api/v1/audit/chain", "/api/v1/audit/stats"):
        resp = portal.get(url, headers=headers)
        assert resp.status_code == 403, url
        assert resp.json()["error"]["code"] == "forbidden"
    with session_scope() as s:
        assert not s.exec(select(AuditEvent).where(AuditEvent.action == "audit.exported")).all()
