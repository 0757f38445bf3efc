"""Access: an intake officer of another municipality gets the same 404 as for a report that
does not exist — by page, print view, form post and API — and every attempt is audited and
logged; an auditor cannot read child data; a form without its CSRF token changes nothing."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from models.tables import AuditEvent, Handover, Report
from orosflow.core.crypto import Keyring, load_keyring, lookup_digests
from orosflow.core.db import session_scope

from factories import form
from portal_support import PASSWORD, api_headers, csrf_of, login

CHILD_NAME = form()["children"][0]["name"]
NILS = "user:nils.nacka"
MISSING = "OA-2026-999999"


def events(action: str, actor: str | None = None) -> list[AuditEvent]:
    with session_scope() as s:
        stmt = select(AuditEvent).where(AuditEvent.action == action)
        if actor:
            stmt = stmt.where(AuditEvent.actor == actor)
        return list(s.exec(stmt.order_by(AuditEvent.seq)))


def handover_of(reference: str) -> Handover:
    with session_scope() as s:
        report = s.exec(select(Report).where(Report.reference == reference)).one()
        return s.exec(select(Handover).where(Handover.report_id == report.id)).one()


def test_other_municipality_gets_404_by_url_and_each_attempt_is_audited(
    portal: TestClient, notified_report: str, caplog: pytest.LogCaptureFixture
) -> None:
    csrf = login(portal, "nils.nacka")
    url = f"/intake/reports/{notified_report}"
    caplog.set_level(logging.WARNING, logger="orosflow.portal")
    attempts = [
        portal.get(url),
        portal.get(f"{url}/print"),
        portal.post(f"{url}/confirm", data={"csrf_token": csrf}),
        portal.post(f"{url}/decline", data={"csrf_token": csrf, "reason": "wrong_municipality"}),
        portal.post(
            f"{url}/feedback",
            data={"csrf_token": csrf, "outcome": "opened", "decided_on": "2026-11-23"},
        ),
    ]
    for resp in attempts:
        assert resp.status_code == 404
        assert CHILD_NAME not in resp.text
    nonexistent = portal.get(f"/intake/reports/{MISSING}")
    assert nonexistent.status_code == 404
    assert nonexistent.text == attempts[0].text  # cannot tell "not yours" from "not there"

    h = handover_of(notified_report)
    assert h.status == "notified" and h.confirmed_at is None  # the post changed nothing
    assert not events("handover.confirmed") and not events("handover.declined")
    assert not events("content.read", NILS)
    denied = events("access.denied", NILS)
    assert len(denied) == len(attempts) + 1
    details = [json.loads(e.details) for e in denied]
    assert [d["reference"] for d in details] == [notified_report] * len(attempts) + [MISSING]
    assert [d["via"] for d in details][:3] == ["page", "print", "confirm-form"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum(NILS in w and notified_report in w for w in warnings) == len(attempts)


def test_other_municipality_gets_404_by_api_and_it_is_audited(
    portal: TestClient, notified_report: str, caplog: pytest.LogCaptureFixture
) -> None:
    headers = api_headers("nils.nacka")
    caplog.set_level(logging.WARNING, logger="orosflow.portal")
    base = f"/api/v1/inbox/{notified_report}"
    attempts = [
        portal.get(base, headers=headers),
        portal.post(f"{base}/confirm", headers=headers),
        portal.post(f"{base}/feedback", headers=headers, json={"outcome": "opened"}),
        portal.post(f"{base}/decline", headers=headers, json={"reason": "wrong_municipality"}),
    ]
    missing = portal.get(f"/api/v1/inbox/{MISSING}", headers=headers)
    for resp in [*attempts, missing]:
        assert resp.status_code == 404
        assert resp.json() == {"error": {"code": "not_found", "message": "Ärendet finns inte."}}
    listing = portal.get("/api/v1/inbox?status=all", headers=headers).json()
    assert listing["items"] == []
    assert handover_of(notified_report).status == "notified"
    denied = [json.loads(e.details) for e in events("access.denied", NILS)]
    assert [(d["reference"], d["via"]) for d in denied] == [
        (notified_report, "api"),
        (notified_report, "api-confirm"),
        (notified_report, "api-feedback"),
        (notified_report, "api-decline"),
        (MISSING, "api"),
    ]
    assert any(NILS in r.getMessage() and "via api" in r.getMessage() for r in caplog.records)


def test_auditor_cannot_read_child_data(portal: TestClient, notified_report: str) -> None:
    login(portal, "anna.revisor")
    for path in (
        "/intake",
        f"/intake/reports/{notified_report}",
        f"/intake/reports/{notified_report}/print",
    ):
        resp = portal.get(path)
        assert resp.status_code == 403 and CHILD_NAME not in resp.text
    headers = api_headers("anna.revisor")
    for path in ("/api/v1/inbox", f"/api/v1/inbox/{notified_report}"):
        resp = portal.get(path, headers=headers)
        assert resp.status_code == 403 and resp.json()["error"]["code"] == "forbidden"
    assert not events("content.read", "user:anna.revisor")


def test_counselor_cannot_use_the_inbox(portal: TestClient, notified_report: str) -> None:
    page = portal.get("/login")
    portal.post(
        "/login",
        data={"username": "kim.kurator", "password": PASSWORD, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert portal.get(f"/intake/reports/{notified_report}").status_code == 403
    resp = portal.get("/api/v1/inbox", headers=api_headers("kim.kurator"))
    assert resp.status_code == 403
    assert not events("content.read", "user:kim.kurator")


def test_form_without_csrf_token_is_refused_and_changes_nothing(
    portal: TestClient, notified_report: str
) -> None:
    login(portal, "sara.sodermalm")
    url = f"/intake/reports/{notified_report}"
    for action, data in (
        ("confirm", {}),
        ("confirm", {"csrf_token": "forged"}),
        ("decline", {"reason": "wrong_district"}),
    ):
        resp = portal.post(f"{url}/{action}", data=data)
        assert resp.status_code == 403 and "CSRF" in resp.text
    h = handover_of(notified_report)
    assert h.status == "notified" and h.confirmed_at is None
    assert not events("handover.confirmed") and not events("handover.declined")


def test_a_personnummer_typed_into_the_address_is_not_recorded(
    portal: TestClient, notified_report: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The refused address goes to the audit trail and the log. A plain sha256 of a
    personnummer was brute-forced over children's birth dates in 8.5 s, so anything that is not
    a reference number is kept only as an HMAC whose key is in the key store; the access log
    masks it whole."""
    typed = "20120315-1236"
    login(portal, "nils.nacka")
    with caplog.at_level(logging.INFO):
        assert portal.get(f"/intake/reports/{typed}").status_code == 404
        assert (
            portal.get(f"/api/v1/inbox/{typed}", headers=api_headers("nils.nacka")).status_code
            == 404
        )
        assert (
            portal.get(f"/api/v1/inbox/{MISSING}", headers=api_headers("nils.nacka")).status_code
            == 404
        )
    denied = [json.loads(e.details)["reference"] for e in events("access.denied", NILS)]
    assert len(denied) == 3 and denied[2] == MISSING  # a reference number stays as it is
    recorded = denied[0]
    assert denied[1] == recorded  # the same input gives the same value: attempts can be matched
    for value in (typed, "201203151236", "1203151236"):
        assert value not in json.dumps(denied)
        plain = hashlib.sha256(value.encode()).hexdigest()
        assert plain[:16] not in recorded and plain[-16:] not in recorded
    # Reproducible with the key store's key, and only with it.
    assert (
        recorded == "hmac:" + lookup_digests(load_keyring(), "access-denied-address", typed)[0][:32]
    )
    other = Keyring(active="k-other", keys={"k-other": secrets.token_bytes(32)})
    assert lookup_digests(other, "access-denied-address", typed)[0][:32] not in recorded
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if typed in m or "201203151236" in m or "20120315" in m]
    access = [r.getMessage() for r in caplog.records if r.name == "orosflow.access"]
    paths = [m.split(" ")[1] for m in access if m.startswith("GET /api/")]
    assert paths == ["/api/v1/inbox/[skyddat]", f"/api/v1/inbox/{MISSING}"]
