"""The intake officer's pages: the inbox (metadata only, urgent first), opening a report
(audited), confirm / decline / feedback with Swedish notices and errors, the print view and an
erased report. Runs on SQLite and PostgreSQL with a real SMTP server."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from models.accounts import Role
from models.tables import AuditEvent, Feedback, Handover, Report
from orosflow.core.clock import set_clock
from orosflow.core.db import session_scope
from orosflow.core.smtp_capture import MailCapture
from orosflow.handover.lifecycle import read_feedback
from orosflow.handover.retention import erase_report
from orosflow.handover.submission import submit
from orosflow.identity.accounts import add_user

from factories import (
    SECRET_ADDRESS,
    SECRET_CONCERN,
    SECRET_NAME,
    SECRET_SCHOOL,
    child,
    form,
    pnr,
)
from portal_support import PASSWORD, api_headers, hand_over, login, submit_example

EXAMPLE = form()
EXAMPLE_CHILD = EXAMPLE["children"][0]
SARA = "user:sara.sodermalm"


def events(action: str, actor: str | None = None) -> list[AuditEvent]:
    with session_scope() as s:
        stmt = select(AuditEvent).where(AuditEvent.action == action)
        if actor:
            stmt = stmt.where(AuditEvent.actor == actor)
        return list(s.exec(stmt.order_by(AuditEvent.seq)))


def handover_of(reference: str) -> tuple[Report, Handover]:
    with session_scope() as s:
        report = s.exec(select(Report).where(Report.reference == reference)).one()
        h = s.exec(select(Handover).where(Handover.report_id == report.id)).one()
        return report, h


def inbox_references(html: str) -> list[str]:
    return re.findall(r'href="/intake/reports/(OA-\d{4}-\d{6})"', html)


@pytest.fixture
def clock() -> Iterator[list[datetime]]:
    """A settable clock: append a new time to move it."""
    times = [datetime(2026, 11, 23, 8, 0, tzinfo=UTC)]  # Monday 09:00 in Stockholm
    set_clock(lambda: times[-1])
    yield times
    set_clock(None)


# --- inbox -----------------------------------------------------------------------------------


def test_inbox_lists_the_notified_report_without_child_data(
    portal: TestClient, notified_report: str
) -> None:
    login(portal, "sara.sodermalm")
    page = portal.get("/intake")
    assert page.status_code == 200
    assert notified_report in inbox_references(page.text)
    assert "Att bekräfta (1)" in page.text
    assert "aviserad" in page.text and "Södermalms stadsdelsförvaltning" in page.text
    assert "2026-11-23 10:00" in page.text  # notified, in Stockholm time
    for secret in (
        EXAMPLE_CHILD["name"],
        EXAMPLE_CHILD["personal_number"],
        EXAMPLE_CHILD["address"],
        EXAMPLE["concern"]["observations"][:30],
        EXAMPLE["guardians"][0]["name"],
    ):
        assert secret not in page.text
    assert not events("content.read", SARA)  # listing decrypts nothing


async def test_inbox_never_shows_child_data_and_only_own_units(
    portal: TestClient, smtp: MailCapture, office_hours: None
) -> None:
    secret = submit_example(
        children=[child(name=SECRET_NAME, address=SECRET_ADDRESS, school=SECRET_SCHOOL)],
        concern={"categories": ["neglect"], "observations": SECRET_CONCERN},
    )
    nacka = submit_example(children=[child(municipality="0182", district=None)])
    await hand_over(secret)
    await hand_over(nacka)
    login(portal, "sara.sodermalm")
    page = portal.get("/intake?status=all")
    assert inbox_references(page.text) == [secret]
    for value in (SECRET_NAME, SECRET_ADDRESS, SECRET_SCHOOL, SECRET_CONCERN):
        assert value not in page.text
    portal.cookies.clear()
    login(portal, "nils.nacka")
    assert inbox_references(portal.get("/intake?status=all").text) == [nacka]


async def test_acute_and_overdue_first_then_newest_first(
    portal: TestClient, smtp: MailCapture, clock: list[datetime]
) -> None:
    acute = submit_example(urgency="acute")
    await hand_over(acute)  # notified 09:00, the oldest
    clock.append(datetime(2026, 11, 23, 8, 20, tzinfo=UTC))
    older = submit_example()
    await hand_over(older)
    clock.append(datetime(2026, 11, 23, 8, 40, tzinfo=UTC))
    newer = submit_example()
    await hand_over(newer)
    csrf = login(portal, "sara.sodermalm")
    page = portal.get("/intake")
    assert inbox_references(page.text) == [acute, newer, older]
    assert page.text.count('class="priority"') == 1

    clock.append(datetime(2026, 11, 23, 8, 45, tzinfo=UTC))
    portal.post(f"/intake/reports/{acute}/confirm", data={"csrf_token": csrf})
    page = portal.get("/intake")
    assert inbox_references(page.text) == [newer, older]  # confirmed: no longer to confirm
    page = portal.get("/intake?status=feedback")
    assert inbox_references(page.text) == [acute]


async def test_overdue_report_sorts_before_a_newer_one(
    portal: TestClient, smtp: MailCapture, clock: list[datetime]
) -> None:
    late = submit_example()
    await hand_over(late)  # Monday 09:00: confirm by Tuesday 12:00
    clock.append(datetime(2026, 11, 24, 11, 30, tzinfo=UTC))  # Tuesday 12:30 in Stockholm
    fresh = submit_example()
    await hand_over(fresh)
    login(portal, "sara.sodermalm")
    page = portal.get("/intake")
    assert inbox_references(page.text) == [late, fresh]
    assert page.text.count("Försenad") == 1
    items = portal.get("/api/v1/inbox", headers=api_headers("sara.sodermalm")).json()["items"]
    assert [(i["reference"], i["handover"]["overdue"]) for i in items] == [
        (late, True),
        (fresh, False),
    ]


def test_empty_inbox_says_so(portal: TestClient) -> None:
    login(portal, "sara.sodermalm")
    page = portal.get("/intake")
    assert page.status_code == 200
    assert "Inga anmälningar väntar på bekräftelse just nu." in page.text
    assert "<table" not in page.text


# --- opening ---------------------------------------------------------------------------------


def test_opening_shows_content_and_audits_each_opening_once(
    portal: TestClient, notified_report: str
) -> None:
    login(portal, "sara.sodermalm")
    page = portal.get(f"/intake/reports/{notified_report}")
    assert page.status_code == 200
    for shown in (
        EXAMPLE_CHILD["name"],
        "20120315-1236",
        EXAMPLE["concern"]["observations"],
        EXAMPLE["concern"]["child_said"],
        EXAMPLE["guardians"][0]["name"],
        EXAMPLE["reporter"]["phone"],
        EXAMPLE["clinic"]["name"],
        "Brister i omsorgen",  # category label, not its code
        "Lillebror Barnsson",
        "Chef",  # consultation
        "Södermalms stadsdelsförvaltning",
        "ansvarig är Södermalms stadsdelsförvaltning",  # why this unit, without rule codes
        "2026-11-24 12:00",  # confirm by noon the next working day
    ):
        assert shown in page.text, shown
    assert EXAMPLE_CHILD["name"] not in page.text.split("</title>")[0]  # not in the tab title
    reads = events("content.read", SARA)
    assert len(reads) == 1 and json.loads(reads[0].details)["purpose"] == "intake-open"
    portal.get(f"/intake/reports/{notified_report}")
    assert len(events("content.read", SARA)) == 2


def test_erased_report_shows_a_notice_instead_of_content(
    portal: TestClient, notified_report: str
) -> None:
    report, _ = handover_of(notified_report)
    erase_report(report.id, actor="system:test", rule="RET-TEST")
    login(portal, "sara.sodermalm")
    page = portal.get(f"/intake/reports/{notified_report}")
    assert page.status_code == 200
    assert "har raderats enligt gallringsreglerna" in page.text
    assert EXAMPLE_CHILD["name"] not in page.text
    assert not events("content.read", SARA)  # nothing could be read


# --- actions ---------------------------------------------------------------------------------


def test_confirm_hands_over_once_and_a_second_confirm_is_refused(
    portal: TestClient, notified_report: str
) -> None:
    csrf = login(portal, "sara.sodermalm")
    resp = portal.post(
        f"/intake/reports/{notified_report}/confirm",
        data={"csrf_token": csrf},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    page = portal.get(resp.headers["location"])
    assert "Mottagandet är bekräftat." in page.text
    report, h = handover_of(notified_report)
    assert h.status == "confirmed" and h.confirmed_by == SARA
    assert report.status == "handed_over"
    assert len(events("handover.confirmed", SARA)) == 1

    again = portal.post(f"/intake/reports/{notified_report}/confirm", data={"csrf_token": csrf})
    assert again.status_code == 409
    assert "redan bekräftat" in again.text and "Inget har ändrats" in again.text
    assert 'class="error-summary"' in again.text
    assert len(events("handover.confirmed")) == 1
    assert len([e for e in events("report.status") if '"handed_over"' in e.details]) == 1


def test_feedback_is_refused_before_confirmation_and_recorded_after(
    portal: TestClient, notified_report: str
) -> None:
    csrf = login(portal, "sara.sodermalm")
    url = f"/intake/reports/{notified_report}"
    early = portal.post(
        f"{url}/feedback",
        data={"csrf_token": csrf, "outcome": "opened", "decided_on": "2026-11-23"},
    )
    assert early.status_code == 409 and "kan inte få återkoppling" in early.text
    portal.post(f"{url}/confirm", data={"csrf_token": csrf})

    missing = portal.post(f"{url}/feedback", data={"csrf_token": csrf, "decided_on": ""})
    assert missing.status_code == 400
    assert (
        'href="#outcome"' in missing.text and "Välj vad socialtjänsten har beslutat" in missing.text
    )

    resp = portal.post(
        f"{url}/feedback",
        data={"csrf_token": csrf, "outcome": "not_opened", "decided_on": "2026-11-23"},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    assert "Återkopplingen är registrerad" in portal.get(resp.headers["location"]).text
    report, _ = handover_of(notified_report)
    assert report.status == "feedback_received"
    with session_scope() as s:
        assert len(s.exec(select(Feedback)).all()) == 1
    [fb] = read_feedback(notified_report, actor="system:test")
    assert fb["outcome"] == "not_opened" and fb["recorded_by"] == SARA


def test_decline_needs_a_reason_and_reroutes(portal: TestClient, notified_report: str) -> None:
    csrf = login(portal, "sara.sodermalm")
    url = f"/intake/reports/{notified_report}/decline"
    bad = portal.post(url, data={"csrf_token": csrf, "reason": ""})
    assert bad.status_code == 400 and "Välj varför enheten avböjer" in bad.text
    assert handover_of(notified_report)[1].status == "notified"

    resp = portal.post(
        url,
        data={"csrf_token": csrf, "reason": "wrong_district", "right_unit_id": "sdf-norrmalm"},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    assert "Du har avböjt anmälan" in portal.get(resp.headers["location"]).text
    with session_scope() as s:
        rows = {h.unit_id: h for h in s.exec(select(Handover))}
    assert rows["sdf-sodermalm"].status == "declined"
    assert rows["sdf-sodermalm"].decline_reason == "wrong_district"
    assert rows["sdf-norrmalm"].rerouted_from == rows["sdf-sodermalm"].id


# --- print -----------------------------------------------------------------------------------


def test_print_view_renders_without_navigation_and_is_audited(
    portal: TestClient, notified_report: str
) -> None:
    login(portal, "sara.sodermalm")
    page = portal.get(f"/intake/reports/{notified_report}/print")
    assert page.status_code == 200
    assert f"Orosanmälan {notified_report}" in page.text
    assert "Utskriven" in page.text and "Sara Södermalm" in page.text
    assert "user:" not in page.text
    assert "2026-11-23 10:00" in page.text  # printed at, Stockholm time
    assert EXAMPLE_CHILD["name"] in page.text
    assert "Huvudmeny" not in page.text and "<nav" not in page.text
    assert "<script" not in page.text
    reads = events("content.read", SARA)
    assert [json.loads(e.details)["purpose"] for e in reads] == ["print"]


# --- after a decline --------------------------------------------------------------------------


def test_declining_unit_loses_content_access_and_the_new_unit_gains_it(
    portal: TestClient, notified_report: str
) -> None:
    """Finding 9: a unit that declined (the report went to another unit) sees metadata only in
    the page, the print view and the API; each attempt is an ``access.denied`` event."""
    url = f"/intake/reports/{notified_report}"
    secrets = (EXAMPLE_CHILD["name"], "20120315-1236", EXAMPLE["concern"]["observations"])
    csrf = login(portal, "sara.sodermalm")
    before = portal.get(url)
    assert all(secret in before.text for secret in secrets)

    resp = portal.post(
        f"{url}/decline",
        data={"csrf_token": csrf, "reason": "wrong_district", "right_unit_id": "sdf-norrmalm"},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    reads_before = [json.loads(e.details)["purpose"] for e in events("content.read", SARA)]
    assert reads_before == ["intake-open"]

    headers = api_headers("sara.sodermalm")
    page = portal.get(url)
    printed = portal.get(f"{url}/print")
    api = portal.get(f"/api/v1/inbox/{notified_report}", headers=headers)
    for answer in (page, printed, api):
        assert answer.status_code == 200
        for secret in secrets:
            assert secret not in answer.text, secret
    for html in (page.text, printed.text):
        assert "Er enhet har avböjt anmälan" in html
        assert notified_report in html and "Avböjd" in html  # metadata: its own decline
    body = api.json()
    assert body["content"] is None and body["withheld"] is True and body["erased"] is False
    assert "avböjt" in body["content_notice"]
    assert body["handover"]["status"] == "declined"
    assert body["handover"]["decline_reason"] == "wrong_district"
    assert not body["can_confirm"] and not body["can_feedback"] and not body["can_decline"]
    assert [json.loads(e.details)["purpose"] for e in events("content.read", SARA)] == reads_before
    denied = [json.loads(e.details) for e in events("access.denied", SARA)]
    assert [(d["via"], d["reason"], d["reference"]) for d in denied] == [
        ("intake-open", "declined", notified_report),
        ("print", "declined", notified_report),
        ("api-open", "declined", notified_report),
    ]
    assert {e.report_id for e in events("access.denied", SARA)} == {report_id_of(notified_report)}

    add_user(
        "nora.norrmalm",
        password=PASSWORD,
        role=Role.INTAKE,
        display_name="Nora Norrmalm",
        units=["sdf-norrmalm"],
    )
    login(portal, "nora.norrmalm")
    theirs = portal.get(url)
    assert theirs.status_code == 200
    assert all(secret in theirs.text for secret in secrets)
    assert "Er enhet har avböjt anmälan" not in theirs.text
    assert len(events("content.read", "user:nora.norrmalm")) == 1


def report_id_of(reference: str) -> str:
    """The report id of ``reference`` (it may have several handovers)."""
    with session_scope() as s:
        return s.exec(select(Report).where(Report.reference == reference)).one().id


# --- decline by name, feedback shown and corrected, siblings (issue 12) -----------------------


def _options(html: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """The right-receiver list of the decline form: (group label, [(value, name)])."""
    select_ = re.search(r'<select id="right_unit_id".*?</select>', html, re.S)
    assert select_, "no right-receiver list"
    groups = re.findall(r'<optgroup label="([^"]*)">(.*?)</optgroup>', select_.group(0), re.S)
    return [
        (label, re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', body))
        for label, body in groups
    ]


def test_decline_offers_units_by_name_own_municipality_first(
    portal: TestClient, notified_report: str
) -> None:
    csrf = login(portal, "sara.sodermalm")
    groups = _options(portal.get(f"/intake/reports/{notified_report}").text)
    labels = [label for label, _ in groups]
    assert labels[0] == "Er kommun: Stockholm" and labels[-1].startswith("Alla kommuner")
    own = dict(groups[0][1])
    assert own["sdf-norrmalm"] == "Norrmalms stadsdelsförvaltning"
    assert "sdf-sodermalm" not in own  # not the declining unit itself
    assert list(own)[-2:] == ["intake-0180", "sj-0180"]  # districts, then the city, its jour
    everyone = dict(groups[-1][1])
    assert len(everyone) == 289  # every other municipality's intake unit, by name
    assert everyone["intake-0182"] == "Socialtjänsten i Nacka, mottagning barn och unga"
    names = list(everyone.values())
    assert names[0] == "Socialtjänsten i Ale, mottagning barn och unga"
    assert names[-1].startswith("Socialtjänsten i Ö")  # Swedish order: Å, Ä, Ö last

    # Without JavaScript the list posts the unit id; the name "Norrmalm" is not an id.
    bad = portal.post(
        f"/intake/reports/{notified_report}/decline",
        data={"csrf_token": csrf, "reason": "wrong_district", "right_unit_id": "Norrmalm"},
    )
    assert bad.status_code == 400 and 'href="#right_unit_id"' in bad.text
    assert handover_of(notified_report)[1].status == "notified"
    resp = portal.post(
        f"/intake/reports/{notified_report}/decline",
        data={"csrf_token": csrf, "reason": "wrong_district", "right_unit_id": "sdf-norrmalm"},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    with session_scope() as s:
        units = {h.unit_id: h.status for h in s.exec(select(Handover))}
    assert units == {"sdf-sodermalm": "declined", "sdf-norrmalm": "created"}


async def test_feedback_outcome_is_shown_and_a_change_is_an_audited_correction(
    portal: TestClient, notified_report: str
) -> None:
    csrf = login(portal, "sara.sodermalm")
    url = f"/intake/reports/{notified_report}"
    portal.post(f"{url}/confirm", data={"csrf_token": csrf})
    portal.post(
        f"{url}/feedback",
        data={"csrf_token": csrf, "outcome": "opened", "decided_on": "2026-11-23"},
    )
    page = portal.get(url).text
    box = re.search(r'<div id="feedback".*?</div>\s*\n\s*\n', page, re.S)
    assert box, "no feedback box"
    given = box.group(0)
    assert "Utredning inleds" in given and "2026-11-23" in given
    assert "Registrerad</dt><dd>2026-11-23 10:00 av Sara Södermalm" in given
    assert "user:" not in given
    assert 'action="/intake/reports/' + notified_report + '/feedback"' not in given  # no plain form
    assert "<summary>Rätta återkopplingen</summary>" in given

    # A plain second recording with another outcome is refused: nothing changes.
    other = portal.post(
        f"{url}/feedback",
        data={"csrf_token": csrf, "outcome": "not_opened", "decided_on": "2026-11-23"},
    )
    assert other.status_code == 409 and "Rätta återkopplingen" in other.text
    assert not events("feedback.corrected")

    resp = portal.post(
        f"{url}/feedback/correct",
        data={"csrf_token": csrf, "outcome": "not_opened", "decided_on": "2026-11-23"},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    page = portal.get(resp.headers["location"]).text
    assert "Återkopplingen är rättad" in page
    assert "Utredning inleds inte" in page and "Rättad</dt>" in page
    assert "Före rättelsen: Utredning inleds (beslut 2026-11-23)" in page
    [event] = events("feedback.corrected", SARA)
    details = json.loads(event.details)
    assert (details["previous_outcome"], details["outcome"]) == ("opened", "not_opened")
    assert event.rule == "L-FEEDBACK-CORRECT"
    for secret in (EXAMPLE_CHILD["name"], EXAMPLE_CHILD["personal_number"]):
        assert secret not in event.details

    same = portal.post(
        f"{url}/feedback/correct",
        data={"csrf_token": csrf, "outcome": "not_opened", "decided_on": "2026-11-23"},
    )
    assert same.status_code == 409 and len(events("feedback.corrected")) == 1
    items = read_feedback(notified_report, actor="system:test")
    assert [(i["outcome"], i["corrected"], i["superseded"]) for i in items] == [
        ("opened", False, True),
        ("not_opened", True, False),
    ]

    # The same through the API: a correction endpoint; the plain one refuses a change.
    headers = api_headers("sara.sodermalm")
    refused = portal.post(
        f"/api/v1/inbox/{notified_report}/feedback",
        json={"outcome": "already_ongoing", "decided_on": "2026-11-23"},
        headers=headers,
    )
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "feedback_exists"
    fixed = portal.post(
        f"/api/v1/inbox/{notified_report}/feedback/correction",
        json={"outcome": "already_ongoing", "decided_on": "2026-11-23"},
        headers=headers,
    )
    assert fixed.status_code == 200 and fixed.json()["changed"] is True
    body = portal.get(f"/api/v1/inbox/{notified_report}", headers=headers).json()
    assert [f["outcome"] for f in body["feedback"] if not f["superseded"]] == ["already_ongoing"]
    assert body["feedback"][-1]["recorded_by_name"] == "Sara Södermalm"

    # The counselor sees the current outcome, marked as corrected.
    login(portal, "kim.kurator")
    status = portal.get(f"/my/reports/{notified_report}").text
    assert "Utredning pågår redan" in status and "rättat en tidigare återkoppling" in status
    assert "Utredning inleds inte" not in status


async def test_officer_sees_sibling_references_and_municipalities_only(
    portal: TestClient, smtp: MailCapture, office_hours: None
) -> None:
    receipt = submit(
        form(
            children=[
                child(),
                child(
                    name="Syster Hemligsson",
                    personal_number=pnr(date(2014, 6, 1)),
                    municipality="0182",
                    district=None,
                    school="Systerns hemliga skola",
                ),
            ]
        ),
        actor="user:kim.kurator",
    )
    sodermalm, nacka = (r.reference for r in receipt.reports)
    await hand_over(sodermalm)
    await hand_over(nacka)

    login(portal, "sara.sodermalm")
    page = portal.get(f"/intake/reports/{sodermalm}").text
    section = re.search(r'<section aria-labelledby="siblings-h">.*?</section>', page, re.S)
    assert section, "no siblings section"
    assert f"{nacka}</span> – Nacka (0182)" in section.group(0)
    assert f'href="/intake/reports/{nacka}"' not in page  # not Södermalm's to open
    for secret in ("Syster Hemligsson", "Systerns hemliga skola"):
        assert secret not in page
    api = portal.get(f"/api/v1/inbox/{sodermalm}", headers=api_headers("sara.sodermalm"))
    assert api.json()["siblings"] == [
        {
            "reference": nacka,
            "municipality": "0182",
            "municipality_name": "Nacka (0182)",
            "visible": False,
        }
    ]
    assert portal.get(f"/intake/reports/{nacka}").status_code == 404

    login(portal, "nils.nacka")
    theirs = portal.get(f"/intake/reports/{nacka}").text
    assert f"{sodermalm}</span> – Stockholm (0180)" in theirs
    assert EXAMPLE_CHILD["name"] not in theirs.split('id="content-h"')[0]
