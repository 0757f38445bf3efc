"""Retention: after the configured period a report's content is erased, its audit trail kept.

With per-report keys, erasing is deleting the wrapped key (the ciphertext becomes noise) and the
ciphertext rows with it. The chain keeps the ``content_sha256`` recorded at receipt, so an
auditor can still show what existed without anyone being able to read it.
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import col, delete, select

from models.tables import ChildRecord, GuardianRecord, Report, ReportKey, ReportStatus
from orosflow.core.clock import utcnow
from orosflow.core.db import checkpoint_sqlite, session_scope
from orosflow.core.settings import get_settings
from orosflow.handover.lifecycle import apply_transition

ACTOR = "system:retention"


def erase_report(report_id: str, *, actor: str, rule: str) -> bool:
    """Erase one report's content; ``False`` if it was already erased (idempotent)."""
    with session_scope() as session:
        report = session.get(Report, report_id, with_for_update=True)
        if report is None or report.status == ReportStatus.ERASED:
            return False
        session.exec(delete(ReportKey).where(col(ReportKey.report_id) == report_id))
        session.exec(delete(ChildRecord).where(col(ChildRecord.report_id) == report_id))
        session.exec(delete(GuardianRecord).where(col(GuardianRecord.report_id) == report_id))
        report.payload_enc = b""
        apply_transition(
            session, "erase", report, actor=actor, reference=report.reference, rule=rule
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
