"""The auditor's page and ``/api/v1/audit/chain`` check the chain against every anchor (the
head written outside the database): after the newest events were deleted they say so and
name the anchor, instead of "Kedjan är hel"."""

from __future__ import annotations

from fastapi.testclient import TestClient

from orosflow.core import anchors

from portal_support import api_headers, login, submit_example
from support import delete_last_events


def _anchor_now() -> str:
    check, path = anchors.verify_and_anchor(kind="cli")
    assert check.ok and path.exists()
    return path.name


def test_auditor_page_and_api_name_the_anchor_after_the_tail_was_deleted(
    portal: TestClient,
) -> None:
    reference = submit_example()
    submit_example()
    anchor = _anchor_now()
    headers = api_headers("anna.revisor")
    ok = portal.get("/api/v1/audit/chain", headers=headers).json()
    assert ok["ok"] and ok["anchors_checked"] == 1
    delete_last_events(3)

    api = portal.get("/api/v1/audit/chain", headers=headers)
    assert api.status_code == 200
    body = api.json()
    assert body["ok"] is False
    assert body["anchor_problems"][0]["anchor"] == anchor
    assert body["anchor_problems"][0]["code"] in {"chain_shorter", "hash_differs"}
    assert anchor in body["message"]

    login(portal, "anna.revisor")
    html = portal.get(f"/audit/reports/{reference}").text
    assert "Avvikelse" in html and anchor in html
    assert "Kedjan är hel" not in html
    report = portal.get(f"/api/v1/audit/reports/{reference}", headers=headers).json()
    assert report["chain"]["ok"] is False
    assert report["chain"]["anchor_problems"][0]["anchor"] == anchor
