"""The report as a PDF for the case file (issue 12, item 10): made by WeasyPrint from the print
view's template, tagged (PDF/UA-1), in Swedish with the reference, received time, receiving
unit, routing explanation, content and the confidentiality marking from legal.toml; each
download is an audited ``content.read`` with purpose ``pdf``; a declining unit and another
unit get none. The text is read back with poppler-utils' ``pdftotext``."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from models.tables import AuditEvent
from orosflow.core import legal
from orosflow.core.db import session_scope
from orosflow.core.legal import LegalReference, legal_text
from orosflow.portal.intake import CONFIDENTIALITY

from factories import form
from portal_support import api_headers, login
from support import pdf_text, poppler

SARA = "user:sara.sodermalm"

CHILD_NAME = form()["children"][0]["name"]
MARKING = "Sekretess enligt 26 kap. 1 § offentlighets- och sekretesslagen (2009:400)"


def events(action: str, actor: str) -> list[AuditEvent]:
    with session_scope() as s:
        stmt = select(AuditEvent).where(AuditEvent.action == action, AuditEvent.actor == actor)
        return list(s.exec(stmt.order_by(AuditEvent.seq)))


def test_pdf_from_the_print_view_holds_the_case_file_details_and_is_audited(
    portal: TestClient, notified_report: str
) -> None:
    login(portal, "sara.sodermalm")
    page = portal.get(f"/intake/reports/{notified_report}")
    assert f'href="/intake/reports/{notified_report}/pdf"' in page.text
    assert "Ladda ner PDF" in page.text

    downloads = {
        "page": portal.get(f"/intake/reports/{notified_report}/pdf"),
        "api": portal.get(
            f"/api/v1/inbox/{notified_report}/pdf", headers=api_headers("sara.sodermalm")
        ),
    }
    for via, resp in downloads.items():
        assert resp.status_code == 200, (via, resp.text[:300])
        assert resp.headers["content-type"] == "application/pdf"
        assert resp.headers["content-disposition"] == (
            f'attachment; filename="orosanmalan-{notified_report}.pdf"'
        )  # the reference only: no personal data in the file name
        assert resp.content.startswith(b"%PDF")
        # Tagged (a structure tree for screen readers) and declared PDF/UA-1 in its XMP.
        assert re.search(r"^Tagged:\s+yes$", poppler("pdfinfo", resp.content, "{}"), re.M)
        assert 'pdfuaid:part="1"' in poppler("pdfinfo", resp.content, "-meta", "{}")
        text = pdf_text(resp.content)
        for expected in (
            f"Orosanmälan {notified_report}",
            CHILD_NAME,
            MARKING,
            "Inkom 2026-11-23 10:00",  # received, Stockholm time
            "Södermalms stadsdelsförvaltning",  # the receiving unit by name
            "Varför hit",  # the routing explanation
            "PDF skapad",
        ):
            assert expected in text, (via, expected)

    reads = [json.loads(e.details) for e in events("content.read", SARA)]
    assert [r["purpose"] for r in reads] == ["intake-open", "pdf", "pdf"]
    assert all(r.get("reference", notified_report) == notified_report for r in reads)

    # The print view is the same template: it carries the same marking.
    printed = portal.get(f"/intake/reports/{notified_report}/print")
    assert "<strong>Sekretess</strong> enligt 26 kap. 1 § offentlighets-" in printed.text


def test_no_pdf_for_a_declining_unit_or_another_unit(
    portal: TestClient, notified_report: str
) -> None:
    url = f"/intake/reports/{notified_report}"
    csrf = login(portal, "sara.sodermalm")
    resp = portal.post(
        f"{url}/decline",
        data={"csrf_token": csrf, "reason": "wrong_district", "right_unit_id": "sdf-norrmalm"},
        follow_redirects=False,
    )
    assert resp.status_code == 303
    page = portal.get(url)
    assert "Ladda ner PDF" not in page.text
    refused = portal.get(f"{url}/pdf")
    api = portal.get(f"/api/v1/inbox/{notified_report}/pdf", headers=api_headers("sara.sodermalm"))
    assert refused.status_code == 403 and "avböjt" in refused.text
    assert api.status_code == 403 and api.json()["error"]["code"] == "content_withheld"
    for answer in (refused, api):
        assert not answer.content.startswith(b"%PDF")
        assert CHILD_NAME not in answer.text
    assert not events("content.read", SARA)  # declined unopened; nothing decrypted since
    denied = [json.loads(e.details) for e in events("access.denied", SARA)]
    assert [(d["via"], d["reason"]) for d in denied[-2:]] == [
        ("pdf", "declined"),
        ("pdf", "declined"),
    ]

    login(portal, "nils.nacka")  # Nacka: never a receiver of this report
    other = portal.get(f"{url}/pdf")
    other_api = portal.get(
        f"/api/v1/inbox/{notified_report}/pdf", headers=api_headers("nils.nacka")
    )
    assert other.status_code == 404 and other_api.status_code == 404
    assert not events("content.read", "user:nils.nacka")
    vias = [json.loads(e.details)["via"] for e in events("access.denied", "user:nils.nacka")]
    assert vias == ["pdf", "api-pdf"]


def test_the_marking_follows_the_verified_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unverified reference in legal.toml is marked as such on the PDF and print view."""
    assert legal.legal_references()[CONFIDENTIALITY].verified
    assert legal_text(CONFIDENTIALITY) == MARKING.removeprefix("Sekretess enligt ")
    unverified = LegalReference(label="sekretess", reference="26 kap. 1 § OSL", verified=False)
    monkeypatch.setattr(legal, "legal_references", lambda: {CONFIDENTIALITY: unverified})
    assert legal_text(CONFIDENTIALITY) == "26 kap. 1 § OSL; hänvisningen är inte verifierad"
