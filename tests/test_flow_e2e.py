"""End to end against real parts: a real Prefect server runs the concern-report flow, a real
SMTP server (aiosmtpd on loopback) receives the notifications, and neither Prefect's database
nor the mail holds any personal data."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime
from pathlib import Path

from sqlmodel import select

from models.tables import Handover, HandoverStatus, Report, ReportStatus
from orosflow.core.audit import verify_chain
from orosflow.core.db import session_scope
from orosflow.handover.submission import submit

from factories import (
    SECRET_ADDRESS,
    SECRET_CONCERN,
    SECRET_NAME,
    SECRET_SCHOOL,
    child,
    form,
    pnr,
)

SIBLING_NAME = "Ottilia Quistgaard"
SIBLING_PNR = pnr(datetime(2014, 6, 7).date(), serial="456")


def secret_form() -> dict:
    first = child(
        name=SECRET_NAME,
        address=SECRET_ADDRESS,
        school=SECRET_SCHOOL,
        municipality="0180",
        district="Södermalm",
    )
    second = child(
        name=SIBLING_NAME,
        personal_number=SIBLING_PNR,
        address=SECRET_ADDRESS,
        municipality="1980",
        district=None,
    )
    return form(
        children=[first, second],
        concern={
            "categories": ["neglect"],
            "observations": SECRET_CONCERN,
            "child_said": SECRET_CONCERN + " sa hon",
        },
    )


def secrets_of(data: dict) -> list[str]:
    out = [
        SECRET_NAME,
        SIBLING_NAME,
        SECRET_ADDRESS,
        SECRET_CONCERN,
        SECRET_SCHOOL,
        data["reporter"]["name"],
        data["reporter"]["email"],
        data["guardians"][0]["name"],
    ]
    for c in data["children"]:
        n = c["personal_number"].replace("-", "")
        out += [n, n[2:], f"{n[:8]}-{n[8:]}", f"{n[2:8]}-{n[8:]}"]
    return out


def dump_sqlite(path: Path) -> str:
    """Every text and blob value in every table of a SQLite database, as one string."""
    conn = sqlite3.connect(path)
    parts = []
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    if isinstance(value, bytes):
                        parts.append(value.decode("utf-8", "replace"))
                    elif value is not None:
                        parts.append(str(value))
    finally:
        conn.close()
    return "\n".join(parts)


async def _flush_prefect() -> None:
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogHandler

    await APILogHandler.aflush()
    await asyncio.to_thread(EventsWorker.drain_all, timeout=10)
    await asyncio.sleep(2)  # the server writes events asynchronously


async def test_siblings_flow_runs_notify_right_units_without_personal_data(
    db: str, smtp, prefect_server: Path, office_hours: None
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.sorting import FlowRunSort

    from flows.concern_report import concern_report

    data = secret_form()
    receipt = submit(data, actor="test:counselor")
    for item in receipt.reports:
        await concern_report(item.report_id)

    # Two reports, two notifications to the right (example) addresses.
    mails = smtp.messages()
    assert sorted(m["To"] for m in mails) == ["intake-1980@example.se", "sdf-sodermalm@example.se"]
    with session_scope() as s:
        handovers = s.exec(select(Handover)).all()
        reports = s.exec(select(Report)).all()
        chain = verify_chain(s)
    assert {h.status for h in handovers} == {HandoverStatus.NOTIFIED}
    assert {r.status for r in reports} == {ReportStatus.ROUTED}
    assert {m["Message-ID"] for m in mails} == {h.message_id for h in handovers}
    by_ref = {m["X-Orosflow-Reference"]: m for m in mails}
    for item in receipt.reports:
        body = by_ref[item.reference].get_body(("plain",)).get_content()
        assert item.reference in body and "/reports/" + item.reference in body
    assert chain.ok, chain.reason
    assert {h.rule for h in handovers} == {"R-STOCKHOLM-DISTRICT", "R-RESIDENCE"}

    # Run names are the reference numbers; the only parameter is the report id.
    async with get_client() as client:
        # Explicit sort/limit: Prefect 3.8.8's client sent null for them (422 on FastAPI 0.151+).
        runs = await client.read_flow_runs(limit=200, sort=FlowRunSort.START_TIME_DESC)
    for item in receipt.reports:
        mine = [r for r in runs if r.parameters == {"report_id": item.report_id}]
        assert len(mine) == 1
        assert mine[0].name == item.reference
        assert mine[0].state is not None and mine[0].state.is_completed()

    # Scan: nothing personal in Prefect's database (runs, task runs, logs, events, artifacts)
    # nor in any e-mail.
    await _flush_prefect()
    prefect_dump = dump_sqlite(prefect_server)
    assert receipt.reports[0].reference in prefect_dump  # the scan does see our runs
    mail_dump = "\n".join(m.as_string() for m in mails)
    for secret in secrets_of(data):
        assert secret not in prefect_dump, f"personal data in Prefect DB: {secret[:4]}…"
        assert secret not in mail_dump, f"personal data in e-mail: {secret[:4]}…"


async def test_retried_flow_sends_nothing_twice(
    sqlite_db: str, smtp, prefect_server: Path, office_hours: None
) -> None:
    from flows.concern_report import concern_report

    rid = submit(form(), actor="t").reports[0].report_id
    await concern_report(rid)
    await concern_report(rid)  # e.g. the reconciler started it again
    assert len(smtp.messages()) == 1
