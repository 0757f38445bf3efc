"""Counselor status: one report's state, handovers with deadlines, phone step and feedback,
with overdue flags and Swedish warnings. Metadata only: nothing about the child, and not the
feedback's content (that is read, and logged, with ``lifecycle.read_feedback``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from models.tables import Feedback, Handover, PhoneContact, Report
from orosflow.core.clock import utcnow
from orosflow.core.crypto import load_keyring
from orosflow.core.db import session_scope
from orosflow.handover import lifecycle
from orosflow.handover.content import ReportErased, read_report
from orosflow.handover.lifecycle import H, R, local_text
from routing.hours import TZ

INDEXER = "system:status"


def _iso(at: datetime | None) -> str | None:
    return at.astimezone(TZ).isoformat() if at else None


def _handover_json(s: Session, h: Handover, now: datetime) -> dict[str, Any]:
    open_ = h.status in (H.NOTIFIED, H.ESCALATED)
    overdue = bool(
        open_ and h.deadline_at and h.deadline_at <= now and not lifecycle.obligation_settled(s, h)
    )
    return {
        "handover_id": h.id,
        "position": h.position,
        "attempt": h.attempt,
        "unit_id": h.unit_id,
        "unit_name": h.unit_name,
        "unit_kind": h.unit_kind,
        "municipality": h.municipality,
        "status": h.status,
        "status_text": lifecycle.HANDOVER_LABELS.get(h.status, h.status),
        "rule": h.rule,
        "phone_required": h.phone_required,
        "phone": h.phone,
        "notified_at": _iso(h.notified_at),
        "deadline_at": _iso(h.deadline_at),
        "overdue": overdue,
        "escalation_step": h.escalation_step,
        "escalated_from": h.escalated_from,
        "rerouted_from": h.rerouted_from,
        "confirmed_at": _iso(h.confirmed_at),
        "confirmed_by": h.confirmed_by,
        "declined_at": _iso(h.declined_at),
        "decline_reason": h.decline_reason,
    }


def report_status(s: Session, report: Report, now: datetime | None = None) -> dict[str, Any]:
    """Status of one report inside an open session."""
    now = now or utcnow()
    hs = lifecycle.report_handovers(s, report.id)
    handovers = [_handover_json(s, h, now) for h in hs]
    confirmed = [h.confirmed_at for h in hs if h.confirmed_at]
    handed_over_at = min(confirmed) if confirmed else None

    calls = list(
        s.exec(
            select(PhoneContact)
            .where(PhoneContact.report_id == report.id)
            .order_by(col(PhoneContact.called_at))
        )
    )
    phone_due = lifecycle.phone_due(report)
    phone_open = report.status not in (R.CLOSED, R.ERASED)
    phone = {
        "required": report.urgency == "acute" or any(h.phone_required for h in hs),
        "due_at": _iso(phone_due),
        "recorded": [
            {
                "unit_id": p.unit_id,
                "answered_by": p.answered_by,
                "called_at": _iso(p.called_at),
                "recorded_by": p.recorded_by,
            }
            for p in calls
        ],
        "overdue": bool(phone_due and phone_open and not calls and phone_due <= now),
    }

    fb_rows = list(
        s.exec(
            select(Feedback)
            .where(Feedback.report_id == report.id)
            .order_by(col(Feedback.recorded_at))
        )
    )
    names = {h.id: h.unit_name for h in hs}
    fb_due = lifecycle.feedback_due(handed_over_at)
    feedback = {
        "due_at": _iso(fb_due),
        "deadline_verified": lifecycle.feedback_deadline_verified(),
        "received": [
            {
                "unit_id": f.unit_id,
                "unit_name": names.get(f.handover_id, f.unit_id),
                "recorded_at": _iso(f.recorded_at),
            }
            for f in fb_rows
        ],
        "overdue": bool(
            fb_due and not fb_rows and report.status == R.HANDED_OVER and fb_due <= now
        ),
    }

    warnings = [
        f"{h['unit_name']} har inte bekräftat mottagandet; tidsfristen gick ut "
        f"{local_text(datetime.fromisoformat(h['deadline_at']))}."
        for h in handovers
        if h["overdue"]
    ]
    if phone["overdue"]:
        warnings.append(
            f"Akut ärende: ingen telefonkontakt är registrerad (skulle ske senast "
            f"{local_text(phone_due)})."
        )
    if feedback["overdue"]:
        note = "" if feedback["deadline_verified"] else " (tidsfristen är inte verifierad i lag)"
        warnings.append(
            f"Återkopplingen är försenad: den skulle ha kommit senast {local_text(fb_due)}{note}."
        )
    return {
        "reference": report.reference,
        "state": report.status,
        "state_text": lifecycle.REPORT_LABELS.get(report.status, report.status),
        "urgency": report.urgency,
        "submitted_at": _iso(report.submitted_at),
        "handed_over_at": _iso(handed_over_at),
        "handovers": handovers,
        "phone": phone,
        "feedback": feedback,
        "overdue": bool(warnings),
        "warnings": warnings,
    }


def status(reference: str, now: datetime | None = None) -> dict[str, Any]:
    """Status of the report with this reference (``LifecycleError`` if there is none)."""
    with session_scope() as s:
        return report_status(s, lifecycle.report_by_reference(s, reference), now)


def _index_reporters(batch: int = 200) -> None:
    """Fill ``reporter_digest`` for reports that lack it (each decryption is audited once)."""
    keyring = load_keyring()
    while True:
        with session_scope() as s:
            rows = list(
                s.exec(select(Report).where(col(Report.reporter_digest).is_(None)).limit(batch))
            )
            for report in rows:
                try:
                    content = read_report(
                        s, report.id, keyring=keyring, actor=INDEXER, purpose="reporter-index"
                    )
                    report.reporter_digest = lifecycle.reporter_digest(content.form.reporter.email)
                except ReportErased:
                    report.reporter_digest = "-"
                s.add(report)
        if len(rows) < batch:
            return


def my_reports(reporter_email: str, now: datetime | None = None) -> list[dict[str, Any]]:
    """The counselor's reports, newest first, each as :func:`status` returns it."""
    _index_reporters()
    digest = lifecycle.reporter_digest(reporter_email)
    with session_scope() as s:
        reports = s.exec(
            select(Report)
            .where(Report.reporter_digest == digest)
            .order_by(col(Report.submitted_at).desc())
        ).all()
        return [report_status(s, r, now) for r in reports]


def overdue_feedback(now: datetime | None = None) -> list[dict[str, Any]]:
    """For auditors: handed-over reports whose feedback deadline has passed without feedback."""
    now = now or utcnow()
    with session_scope() as s:
        reports = s.exec(select(Report).where(Report.status == R.HANDED_OVER)).all()
        out = []
        for r in reports:
            st = report_status(s, r, now)
            if st["feedback"]["overdue"]:
                out.append(
                    {
                        "reference": r.reference,
                        "due_at": st["feedback"]["due_at"],
                        "deadline_verified": st["feedback"]["deadline_verified"],
                    }
                )
        return out
