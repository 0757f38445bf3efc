"""Counselors and intake officers read names, never internal ids or rule codes.

Walks every counselor and intake page state a test can reach — the form and its errors, the
receipts (not acute, acute out of hours with the socialjour to call, protected identity,
siblings), "Mina anmälningar", one report's status (notified, phone recorded, confirmed,
feedback given and corrected, declined and re-routed), the inbox with each filter, an opened
report (to confirm, confirmed, feedback given and corrected, a refused action, declined and
withheld, with siblings, erased) and the print view — and scans each page's visible text for
unit ids (``sdf-…``, ``sj-…``, ``intake-…``), actors (``user:…``) and rule codes (``R-…``,
``L-…``). Attribute values the browser needs (form values, hrefs, ids) may hold ids; visible
attributes (``label``, ``title``, ``aria-label``, ``alt``, ``placeholder``) may not. Runs on
SQLite and PostgreSQL with a real SMTP server.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select
from test_counselor import valid_post

from models.accounts import Role
from models.tables import Report
from orosflow.core.clock import set_clock
from orosflow.core.db import session_scope
from orosflow.core.smtp_capture import MailCapture
from orosflow.handover.retention import erase_report
from orosflow.identity.accounts import add_user

from factories import pnr
from portal_support import PASSWORD, hand_over, login

#: What must never be read on these pages (the brief's patterns, rule codes of both kinds).
INTERNAL = re.compile(r"\b(?:sdf|sj|intake)-[a-z0-9-]+|user:|\b[RL]-(?:\d|[A-Z]{2,})")
#: Attributes a person reads (the rest — value, href, action, id, name, for — the browser).
VISIBLE_ATTRIBUTES = frozenset({"label", "title", "aria-label", "alt", "placeholder"})
MONDAY_10 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
MONDAY_22 = datetime(2026, 11, 23, 21, 0, tzinfo=UTC)  # out of office hours in Stockholm
SAM = "sam.mottagning"  # like the demo account: Södermalm, Stockholm's intake, its socialjour


class _VisibleText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        for name, value in attrs:
            if value and name in VISIBLE_ATTRIBUTES:
                self.parts.append(value)
        kind = dict(attrs).get("type")
        if tag == "input" and kind in ("submit", "button"):
            self.parts.append(dict(attrs).get("value") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _VisibleText()
    parser.feed(html)
    return " ".join(parser.parts)


def leaks(html: str) -> list[str]:
    return sorted({m.group(0) for m in INTERNAL.finditer(visible_text(html))})


def test_the_scanner_finds_ids_in_text_and_visible_attributes_only() -> None:
    html = (
        '<a href="/x/sdf-norrmalm">Norrmalm</a><option value="sj-0180">Jour</option>'
        '<optgroup label="intake-0182"></optgroup><p>av user:sara (R-ACUTE-PHONE, L-FEEDBACK)</p>'
        "<script>var a = 'sdf-bromma';</script>"
    )
    assert leaks(html) == ["L-FEEDBACK", "R-ACUTE", "intake-0182", "user:"]


@pytest.fixture(autouse=True)
def no_prefect(monkeypatch: pytest.MonkeyPatch) -> None:
    async def start(items: list[tuple[str, str]], attempt: Any = None) -> dict[str, None]:
        return {rid: None for rid, _ in items}

    monkeypatch.setattr("orosflow.handover.trigger.start_flow_runs", start)


def _refs(html: str) -> list[str]:
    return list(dict.fromkeys(re.findall(r"OA-2026-\d{6}", html)))


async def test_no_internal_ids_or_rule_codes_on_counselor_and_intake_pages(
    portal: TestClient, smtp: MailCapture
) -> None:
    pages: dict[str, str] = {}

    def visit(name: str, path: str, expect: int = 200) -> str:
        resp = portal.get(path)
        assert resp.status_code == expect, (name, resp.status_code, resp.text[:500])
        pages[name] = resp.text
        return resp.text

    add_user(
        SAM,
        password=PASSWORD,
        role=Role.INTAKE,
        display_name="Sam Mottagning",
        units=["sdf-sodermalm", "intake-0180", "sj-0180"],
    )
    times = [MONDAY_10]
    set_clock(lambda: times[-1])
    try:
        # --- the counselor: form, error, receipts ------------------------------------------------
        csrf = login(portal, "kim.kurator")
        visit("form", "/reports/new")
        bad = portal.post("/reports/new", data=valid_post(csrf, **{"concern-observations": ""}))
        assert bad.status_code == 400
        pages["form with errors"] = bad.text

        def submit(**overrides: Any) -> tuple[str, list[str]]:
            post = valid_post(csrf, **overrides)
            resp = portal.post("/reports/new", data=post, follow_redirects=False)
            assert resp.status_code == 303, resp.text[:1000]
            html = portal.get(resp.headers["location"]).text
            return html, _refs(html)

        html, [plain] = submit()
        pages["receipt, not acute"] = html
        html, [protected] = submit(
            **{
                "children-0-personal_number": pnr(date(2011, 2, 2)),
                "children-0-protected_identity": "true",
                "children-0-address": "",
            }
        )
        pages["receipt, protected identity"] = html
        html, [first, second] = submit(
            **{
                "children-0-personal_number": pnr(date(2012, 4, 4)),
                "children-count": "2",
                "children-1-name": "Syster Barnsson",
                "children-1-personal_number": pnr(date(2014, 6, 1)),
                "children-1-municipality": "0182",
            }
        )
        pages["receipt, siblings"] = html
        times.append(MONDAY_22)
        csrf = login(portal, "kim.kurator")  # hours later: a new session
        html, [acute] = submit(
            urgency="acute", **{"children-0-personal_number": pnr(date(2013, 5, 5))}
        )
        assert 'id="call-now"' in html and "Socialjouren" in html
        pages["receipt, acute out of hours (socialjour)"] = html
        for ref in (plain, protected, first, second, acute):
            await hand_over(ref)

        # --- the intake officer acts ------------------------------------------------------------
        times.append(MONDAY_10.replace(day=24))
        officer = login(portal, SAM)
        visit("inbox", "/intake")
        visit("report to confirm, with siblings", f"/intake/reports/{first}")
        refused = portal.post(f"/intake/reports/{plain}/decline", data={"csrf_token": officer})
        assert refused.status_code == 400
        pages["decline refused"] = refused.text
        for ref in (plain, acute):
            portal.post(f"/intake/reports/{ref}/confirm", data={"csrf_token": officer})
        visit("confirmed", f"/intake/reports/{plain}")
        fb = {"csrf_token": officer, "outcome": "opened", "decided_on": "2026-11-24"}
        portal.post(f"/intake/reports/{plain}/feedback", data=fb)
        visit("feedback given", f"/intake/reports/{plain}")
        portal.post(f"/intake/reports/{acute}/feedback", data=fb)
        again = portal.post(f"/intake/reports/{acute}/feedback/correct", data=fb)
        assert again.status_code == 409
        pages["correction refused"] = again.text
        portal.post(
            f"/intake/reports/{acute}/feedback/correct",
            data={**fb, "outcome": "already_ongoing"},
        )
        visit("feedback corrected", f"/intake/reports/{acute}")
        portal.post(
            f"/intake/reports/{first}/decline",
            data={"csrf_token": officer, "reason": "wrong_district", "right_unit_id": "sdf-bromma"},
        )
        visit("declined (withheld)", f"/intake/reports/{first}")
        visit("print view", f"/intake/reports/{plain}/print")
        for status in ("open", "feedback", "declined", "all"):
            visit(f"inbox, {status}", f"/intake?status={status}")
        with session_scope() as s:
            rid = s.exec(select(Report.id).where(Report.reference == protected)).one()
        erase_report(rid, actor="system:test", rule="RET-TEST")
        visit("erased", f"/intake/reports/{protected}")

        # --- the counselor reads status, records a call ------------------------------------------
        csrf = login(portal, "kim.kurator")
        resp = portal.post(
            f"/my/reports/{acute}/phone",
            data={
                "csrf_token": csrf,
                "phone-answered_by": "Eva Ek, socialjouren",
                "phone-called_date": "2026-11-23",
                "phone-called_time": "22:05",
                "phone-unit_id": "sj-0180",
            },
            follow_redirects=False,
        )
        assert resp.status_code == 303, resp.text[:1000]
        visit("my reports", "/my/reports")
        visit("status, notified", f"/my/reports/{second}")
        visit("status, feedback given", f"/my/reports/{plain}")
        visit("status, phone recorded, feedback corrected", f"/my/reports/{acute}")
        visit("status, declined and re-routed", f"/my/reports/{first}")
        visit("status, erased", f"/my/reports/{protected}")
    finally:
        set_clock(None)

    # The states were really reached (names where ids were), then nothing leaks anywhere.
    assert "Socialjouren för Stockholm" in pages["status, phone recorded, feedback corrected"]
    assert "Sam Mottagning" in pages["status, feedback given"]
    assert "Utredning pågår redan" in pages["feedback corrected"]
    assert "Norrmalms stadsdelsförvaltning" in pages["report to confirm, with siblings"]
    assert second in pages["report to confirm, with siblings"]
    assert "Er enhet har avböjt anmälan" in pages["declined (withheld)"]
    found = {name: leaks(html) for name, html in pages.items()}
    assert {name: ids for name, ids in found.items() if ids} == {}
    assert len(pages) >= 25
    # Rule codes stay in the auditor's view.
    login(portal, "anna.revisor")
    assert "R-STOCKHOLM-DISTRICT" in portal.get(f"/audit/reports/{plain}").text
