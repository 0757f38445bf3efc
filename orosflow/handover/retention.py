"""Retention: after the configured period a report's content is erased, its audit trail kept.

With per-report keys, erasing is deleting the wrapped key (the ciphertext becomes noise) and the
ciphertext rows with it. The chain keeps the ``content_sha256`` recorded at receipt, so an
auditor can still show what existed without anyone being able to read it.

Backups still hold the wrapped key of a report erased since they were taken. That key is also
wrapped by its period's key (``orosflow.core.periodkeys``), which the sweep destroys once the
period's retention plus the backup life has passed: from then on no backup can be read either.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import col, delete, select

from models.tables import AuditEvent, ChildRecord, GuardianRecord, Report, ReportKey, ReportStatus
from orosflow.core.audit import append_event
from orosflow.core.clock import utcnow
from orosflow.core.db import checkpoint_sqlite, session_scope
from orosflow.core.periodkeys import destroy_after, destroy_period_key, read_period_keys
from orosflow.core.settings import get_settings
from orosflow.handover.erase_reasons import ERASE_REASONS
from orosflow.handover.lifecycle import apply_transition

ACTOR = "system:retention"


def erase_report(
    report_id: str, *, actor: str, rule: str, details: dict[str, Any] | None = None
) -> bool:
    """Erase one report's content; ``False`` if it was already erased (idempotent).
    ``details`` (codes only, never content) go into the ``report.erased`` event."""
    with session_scope() as session:
        report = session.get(Report, report_id, with_for_update=True)
        if report is None or report.status == ReportStatus.ERASED:
            return False
        session.exec(delete(ReportKey).where(col(ReportKey.report_id) == report_id))
        session.exec(delete(ChildRecord).where(col(ChildRecord.report_id) == report_id))
        session.exec(delete(GuardianRecord).where(col(GuardianRecord.report_id) == report_id))
        report.payload_enc = b""
        apply_transition(
            session,
            "erase",
            report,
            actor=actor,
            reference=report.reference,
            rule=rule,
            details=details,
        )
        return True


def erase_expired(days: int | None = None) -> list[str]:
    """Erase every report submitted more than ``days`` ago (setting ``retention_days``)."""
    days = get_settings().retention_days if days is None else days
    cutoff = utcnow() - timedelta(days=days)
    with session_scope() as session:
        ids = session.exec(
            select(Report.id).where(
                Report.submitted_at < cutoff, Report.status != ReportStatus.ERASED
            )
        ).all()
    erased = [rid for rid in ids if erase_report(rid, actor=ACTOR, rule=f"RET-{days}D")]
    if erased:
        checkpoint_sqlite()
    return erased


def destroy_expired_periods(now: datetime | None = None) -> list[str]:
    """Destroy the key of every period whose retention plus backup life has passed; returns
    the periods destroyed now.

    A report of the period still holding its key (an erasure that failed) is erased first, so
    the database never shows as readable what nobody can read. The key file is the truth:
    after destroying, every period it lists as destroyed that has no ``key.period_destroyed``
    event yet gets one (also one destroyed by another process, or whose event was lost to a
    failed commit). The event names the period and counts, nothing of any report."""
    now = now or utcnow()
    due = [p for p in sorted(read_period_keys().keys) if destroy_after(p) <= now]
    done, erased = [], {}
    for period in due:
        with session_scope() as session:
            left = session.exec(
                select(ReportKey.report_id).where(col(ReportKey.period) == period)
            ).all()
        erased[period] = sum(erase_report(rid, actor=ACTOR, rule="RET-PERIOD") for rid in left)
        if destroy_period_key(period, now):
            done.append(period)
    _audit_destroyed(erased)
    if done:
        checkpoint_sqlite()
    return done


def _audit_destroyed(erased: dict[str, int]) -> None:
    settings = get_settings()
    with session_scope() as session:
        audited = {
            json.loads(details).get("period")
            for details in session.exec(
                select(AuditEvent.details).where(AuditEvent.action == "key.period_destroyed")
            ).all()
        }
    for period, at in sorted(read_period_keys().destroyed.items()):
        if period in audited:
            continue
        with session_scope() as session:
            append_event(
                session,
                actor=ACTOR,
                action="key.period_destroyed",
                rule=f"RET-{settings.retention_days}D+BACKUP-{settings.backup_days}D",
                details={
                    "period": period,
                    "destroyed_at": at,
                    "destroy_after": destroy_after(period).isoformat(),
                    "erased_now": erased.get(period, 0),
                },
            )


def sweep() -> dict[str, Any]:
    """The daily retention run: erase expired content, then destroy expired period keys."""
    erased = erase_expired()
    destroyed = destroy_expired_periods()
    return {"erased": len(erased), "periods_destroyed": destroyed}


def erase_on_decision(reference: str, reason: str, *, actor: str) -> dict[str, Any]:
    """Erase one report now, on a decision. Audited as ``report.erased`` with the reason code
    and the reference; nothing of the content is kept. Raises ``LifecycleError`` (Swedish,
    nothing changed) for an unknown reason code or reference."""
    from orosflow.handover.lifecycle import LifecycleError
    from orosflow.handover.lifecycle.lookups import report_by_reference

    if reason not in ERASE_REASONS:
        codes = ", ".join(ERASE_REASONS)
        said = f"Okänd orsak {reason!r}" if reason else "Orsak saknas (--reason)"
        raise LifecycleError("reason_unknown", f"{said}: ange en av {codes}. Inget har raderats.")
    with session_scope() as session:
        report = report_by_reference(session, reference)
        report_id, ref = report.id, report.reference
    erased = erase_report(
        report_id,
        actor=actor,
        rule=f"ERASE-{reason.upper()}",
        details={"reason": reason, "reference": ref},
    )
    if erased:
        checkpoint_sqlite()
    return {"reference": ref, "erased": erased, "reason": reason}
