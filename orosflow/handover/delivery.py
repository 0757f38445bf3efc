"""What the ``concern-report`` flow does for a report, each step safe to repeat.

The route was decided and stored at submission, with the handovers and their mails in the
outbox; a later action (a decline, feedback) queues more mails the same way. The flow only
checks the stored report and sends what is queued (``lifecycle.outbox.deliver``), so a run
that starts an hour late still goes where the receipt said. Steps take and return ids only,
so nothing personal passes through Prefect.
"""

from __future__ import annotations

import logging

from sqlmodel import Session

from models.tables import Report, ReportKey, ReportStatus
from orosflow.core.audit import append_event
from orosflow.core.clock import utcnow
from orosflow.core.crypto import CryptoError, load_keyring
from orosflow.core.db import read_scope, session_scope
from orosflow.handover.content import ReportErased, audit_read, decrypt_report
from orosflow.handover.lifecycle import outbox
from orosflow.handover.submission import route_report
from orosflow.handover.validation import validate_form
from routing import get_router

SYSTEM = "system:concern-report"
log = logging.getLogger("orosflow.handover.delivery")


def load_and_revalidate(report_id: str, flow_run_id: str | None = None) -> str:
    """Decrypt and re-validate with the rules of today, as of the report's own date; returns
    the urgency. Content that cannot be opened or no longer passes fails closed at once. An
    erased report has nothing to check (its queued mails are dropped). A report stored without
    a route (before routes were decided at submission, or routing failed then) is routed now,
    as of its submission time.

    Only what changes state takes a write transaction: the read's audit event (first, so no
    read goes unrecorded; with it the run's id, ``flow_run_id``, see :func:`attach_flow_run`),
    and afterwards a failed check or a late route. The decryption and
    the check read only: on SQLite every other writer, a counselor's receipt too, waits for a
    write transaction, and this one held it 30–90 ms in a burst."""
    # Loaded before any transaction: reading the channels file costs ~0.5 s of CPU in a fresh
    # process.
    get_router()
    keyring = load_keyring()
    with session_scope() as session:
        report = session.get(Report, report_id)
        if report is None:
            raise LookupError(f"{report_id}: no such report")
        if flow_run_id:
            _attach(session, report, flow_run_id)
        urgency = report.urgency
        if session.get(ReportKey, report_id) is None:
            return urgency
        audit_read(session, report_id, actor=SYSTEM, purpose="revalidate")
    problem: str | None = None
    with read_scope() as session:
        try:
            content = decrypt_report(session, report_id, keyring=keyring)
        except ReportErased:  # erased since: nothing left to check
            return urgency
        except CryptoError:
            problem = "content_unreadable"
        else:
            try:
                # A report stored before a protected child's address and district were refused
                # still goes out: they are never used nor shown, so they are left out here.
                validate_form(
                    content.form.without_protected_details(), now=content.report.submitted_at
                )
            except Exception as exc:
                codes = ",".join(getattr(e, "code", "?") for e in getattr(exc, "errors", []))
                log.error("%s: stored form fails validation: %s", content.report.reference, codes)
                problem = "revalidation_failed"
    if problem is None and not _unrouted(content.report):
        return urgency
    with session_scope() as session:
        report = session.get(Report, report_id)
        assert report is not None
        if problem is not None:
            _undeliverable(session, report, problem)
        elif _unrouted(report):
            route_report(session, report, content.child, content.form, SYSTEM, report.submitted_at)
    return urgency


def _unrouted(report: Report) -> bool:
    return report.status == ReportStatus.RECEIVED and report.decision_json is None


def _undeliverable(session: Session, report: Report, reason: str) -> None:
    """No retry can help (the content cannot be opened, or fails today's check): fail the
    report's waiting handovers closed, or, with none yet, alert the operator. The run then
    sends only those alerts and ends, instead of failing and being restarted forever."""
    failed = outbox.fail_report_closed(session, report, actor=SYSTEM, reason=reason)
    if not failed and report.decision_json is None:
        outbox.enqueue_mail(
            session, f"{report.id}.unrouted-operator", "unresolved_operator", report.id, None
        )
    append_event(
        session,
        actor=SYSTEM,
        action="report.undeliverable",
        report_id=report.id,
        rule="L-FAIL-CLOSED",
        details={"reason": reason, "handovers_failed": failed},
    )


def attach_flow_run(report_id: str, flow_run_id: str) -> None:
    """Remember which flow run works on the report, however it was started (reconciler input)."""
    with session_scope() as session:
        report = session.get(Report, report_id)
        if report is not None:
            _attach(session, report, flow_run_id)


def _attach(session: Session, report: Report, flow_run_id: str) -> None:
    if report.flow_run_id == flow_run_id:
        return
    previous = report.flow_run_id
    report.flow_run_id, report.flow_triggered_at = flow_run_id, utcnow()
    session.add(report)
    append_event(
        session,
        actor=SYSTEM,
        action="flow_run.attached",
        report_id=report.id,
        details={"flow_run_id": flow_run_id, "previous": previous},
    )


def reference_of(report_id: str) -> str:
    with read_scope() as session:
        report = session.get(Report, report_id)
        return report.reference if report else report_id
