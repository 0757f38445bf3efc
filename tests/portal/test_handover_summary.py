"""One handover summary for every role: the counselor's status, the intake officer's report and
the auditor's chain show the same handover the same way, each only the fields it may see, and
all three say when the unit next reads written reports (``opens_at``)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient

from orosflow.core.db import session_scope
from orosflow.handover import lifecycle
from orosflow.views import auditor as av
from orosflow.views.handover_summary import handover_summary
from routing.hours import TZ

from portal_support import api_headers, login

OPENS = datetime(2026, 12, 28, 8, 0, tzinfo=TZ)
OPENS_WORDS = "läses tidigast måndag 28 december kl. 08:00"


def _set_opens_at(reference: str, opens_at: datetime | None) -> None:
    with session_scope() as s:
        report = lifecycle.report_by_reference(s, reference)
        for h in lifecycle.report_handovers(s, report.id):
            h.opens_at = opens_at
            s.add(h)


def test_every_role_sees_the_same_handover_with_its_own_fields(
    portal: TestClient, notified_report: str
) -> None:
    _set_opens_at(notified_report, OPENS)

    [mine] = portal.get(
        f"/api/v1/reports/{notified_report}", headers=api_headers("kim.kurator")
    ).json()["handovers"]
    theirs = portal.get(
        f"/api/v1/inbox/{notified_report}", headers=api_headers("sara.sodermalm")
    ).json()["handover"]
    with session_scope() as s:
        chain = av.report_chain(s, notified_report)
    assert chain is not None
    [audited] = chain.handovers

    assert mine["handover_id"] == theirs["handover_id"] == audited.id
    assert mine["unit_name"] == theirs["unit_name"] == audited.unit_name
    assert mine["status_text"] == theirs["status_text"] == audited.status_label
    deadlines = {datetime.fromisoformat(x["deadline_at"]) for x in (mine, theirs)}
    assert deadlines == {audited.deadline_at}
    # Times: Stockholm for the counselor and the officer, UTC for the auditor's export.
    assert mine["opens_at"] == theirs["opens_at"] == "2026-12-28T08:00:00+01:00"
    assert audited.opens_at == OPENS and audited.opens_at.tzinfo == UTC
    assert mine["opens_at_text"] == theirs["opens_at_text"] == OPENS_WORDS
    # Each role only what it may see.
    assert "explanation" not in mine and "directory_version" not in mine
    assert "explanation" in theirs and "directory_version" not in theirs
    assert audited.directory_version and audited.explanation


def test_intake_page_says_when_the_unit_reads_the_report(
    portal: TestClient, notified_report: str
) -> None:
    login(portal, "sara.sodermalm")
    page = portal.get(f"/intake/reports/{notified_report}").text
    assert "läses tidigast" not in page

    _set_opens_at(notified_report, OPENS)
    page = portal.get(f"/intake/reports/{notified_report}").text
    assert f"Anmälan {OPENS_WORDS}; fristen räknas därifrån." in page


def test_no_opens_at_means_no_words(portal: TestClient, notified_report: str) -> None:
    """None means "open when routed": "during today's office hours" would be wrong days later."""
    with session_scope() as s:
        report = lifecycle.report_by_reference(s, notified_report)
        [h] = lifecycle.report_handovers(s, report.id)
        summary = handover_summary(h)
    assert summary["opens_at"] is None and summary["opens_at_text"] is None
    assert summary["deadline_at"].tzinfo == TZ
