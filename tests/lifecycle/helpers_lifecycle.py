"""Helpers for the lifecycle tests: a settable clock, reports driven to "notified" without
Prefect, and small queries over handovers, audit events and the captured mail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from sqlmodel import col, select

from models.tables import AuditEvent, Handover, Report
from orosflow.core.clock import set_clock
from orosflow.core.db import session_scope
from orosflow.core.smtp_capture import MailCapture
from orosflow.handover.submission import submit
from routing.hours import TZ

from factories import SECRET_ADDRESS, SECRET_CONCERN, SECRET_NAME, SECRET_SCHOOL, child, form
from support import hand_over  # noqa: F401  (the lifecycle tests import it from here)

COUNSELOR = "kim.kurator@example.se"
SECRETS = [SECRET_NAME, SECRET_ADDRESS, SECRET_CONCERN, SECRET_SCHOOL, "20120315"]


class Clock:
    """The test's "now"; tests move it, nothing sleeps."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def set(self, at: datetime) -> datetime:
        self.now = at
        return at

    def advance(self, **delta: float) -> datetime:
        self.now = self.now + timedelta(**delta)
        return self.now


@contextmanager
def frozen_clock(start: datetime) -> Iterator[Clock]:
    clock = Clock(start)
    set_clock(lambda: clock.now)
    try:
        yield clock
    finally:
        set_clock(None)


def local(*args: int) -> datetime:
    """A Stockholm wall-clock time."""
    return datetime(*args, tzinfo=TZ)  # type: ignore[misc]


def secret_form(urgency: str = "not_acute", **child_overrides: Any) -> dict[str, Any]:
    """The example form with recognisable secrets, so mails can be scanned for them."""
    kid = child(name=SECRET_NAME, address=SECRET_ADDRESS, school=SECRET_SCHOOL)
    kid.update(child_overrides)
    return form(
        children=[kid],
        urgency=urgency,
        concern={
            "categories": ["neglect"],
            "observations": SECRET_CONCERN,
            "child_said": "Exempeltext.",
        },
    )


def submit_report(clock: Clock, urgency: str = "not_acute", **child_overrides: Any) -> str:
    """Submit one report at the clock's time; returns its reference."""
    receipt = submit(secret_form(urgency, **child_overrides), actor="test:counselor", now=clock.now)
    return receipt.reports[0].reference


def report_id(reference: str) -> str:
    with session_scope() as s:
        r = s.exec(select(Report).where(Report.reference == reference)).one()
        return r.id


def report(reference: str) -> Report:
    with session_scope() as s:
        return s.exec(select(Report).where(Report.reference == reference)).one()


def handovers_of(reference: str) -> list[Handover]:
    rid = report_id(reference)
    with session_scope() as s:
        return list(
            s.exec(
                select(Handover)
                .where(Handover.report_id == rid)
                .order_by(col(Handover.attempt), col(Handover.created_at))
            )
        )


def events(reference: str | None = None, action: str | None = None) -> list[AuditEvent]:
    with session_scope() as s:
        stmt = select(AuditEvent).order_by(col(AuditEvent.seq))
        if reference:
            stmt = stmt.where(AuditEvent.report_id == report_id(reference))
        if action:
            stmt = stmt.where(AuditEvent.action == action)
        return list(s.exec(stmt))


def details(event: AuditEvent) -> dict[str, Any]:
    return json.loads(event.details)


def mails_to(smtp: MailCapture, address: str) -> list[EmailMessage]:
    return [m for m in smtp.messages() if address in str(m["To"])]


def body(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return part.get_content()


def assert_no_child_data(messages: list[EmailMessage]) -> None:
    for m in messages:
        text = str(m["Subject"]) + body(m)
        for secret in SECRETS:
            assert secret not in text, (secret, m["Subject"])


def mid(msg: EmailMessage) -> str:
    """Message-ID unfolded (long ids are folded onto a continuation line in transit)."""
    return str(msg["Message-ID"]).strip()
