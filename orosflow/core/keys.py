"""Master-key rotation (new active key, every report's data key re-wrapped, data untouched),
the period key overview and moving older reports under their period's key.

Rotation re-wraps only the master layer: a period-wrapped key stays sealed by its period's key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import col, func, select

from models.tables import Report, ReportKey
from orosflow.core.audit import append_event
from orosflow.core.clock import utcnow
from orosflow.core.crypto import load_keyring
from orosflow.core.db import session_scope
from orosflow.core.periodkeys import (
    PeriodKeyDestroyed,
    destroy_after,
    period_of,
    read_period_keys,
    rewrap_into_period,
)


def rotate_master_key(actor: str = "system:keys") -> dict[str, Any]:
    ring = load_keyring()
    old_ids = set(ring.keys)
    with session_scope() as session:
        rows = session.exec(select(ReportKey)).all()
        plain = {
            r.report_id: ring.unwrap(r.master_key_id, r.wrapped_key, r.report_id) for r in rows
        }
        new_id = ring.add_and_activate()
        for row in rows:
            row.master_key_id, row.wrapped_key = ring.wrap(plain[row.report_id], row.report_id)
            session.add(row)
        append_event(
            session,
            actor=actor,
            action="keys.rotated",
            details={"active": new_id, "previous": sorted(old_ids), "rewrapped": len(rows)},
        )
    return {"active": new_id, "rewrapped": len(rows)}


def period_overview(now: datetime | None = None) -> list[dict[str, Any]]:
    """Per period: reports whose key it still wraps (a count, nothing else), its state and when
    its key is destroyed. Reports from before period keys are one row with ``period`` None."""
    now = now or utcnow()
    with session_scope() as session:
        counts = dict(
            session.exec(
                select(ReportKey.period, func.count()).group_by(col(ReportKey.period))
            ).all()
        )
    keys = read_period_keys()
    out: list[dict[str, Any]] = []
    for period in sorted({*keys.keys, *keys.destroyed, *(p for p in counts if p)}):
        when = destroy_after(period)
        if period in keys.keys:
            state = "destroy_due" if when <= now else "active"
        else:
            state = "destroyed" if period in keys.destroyed else "missing"
        out.append(
            {
                "period": period,
                "reports": counts.get(period, 0),
                "state": state,
                "destroy_after": when.isoformat(),
                "destroyed_at": keys.destroyed.get(period),
            }
        )
    if counts.get(None):
        out.append(
            {
                "period": None,
                "reports": counts[None],
                "state": "master_key_only",
                "destroy_after": None,
                "destroyed_at": None,
            }
        )
    return out


def rewrap_into_periods(actor: str = "system:keys", now: datetime | None = None) -> dict[str, int]:
    """Move reports stored before period keys (master key only) under their month's key, so
    that key's destruction covers them too. A report whose month is already past its
    destruction date is left as it is: retention has erased it or will at its next run."""
    now = now or utcnow()
    ring = load_keyring()
    moved = skipped = 0
    with session_scope() as session:
        rows = session.exec(
            select(ReportKey, Report.submitted_at)
            .join(Report, col(Report.id) == col(ReportKey.report_id))
            .where(col(ReportKey.period).is_(None))
        ).all()
        for row, submitted_at in rows:
            if destroy_after(period_of(submitted_at)) <= now:
                skipped += 1
                continue
            try:
                row.master_key_id, row.period, row.wrapped_key = rewrap_into_period(
                    ring, row.master_key_id, row.wrapped_key, row.report_id, submitted_at
                )
            except PeriodKeyDestroyed:
                skipped += 1
                continue
            session.add(row)
            moved += 1
        if moved or skipped:
            append_event(
                session,
                actor=actor,
                action="keys.rewrapped_into_periods",
                details={"moved": moved, "skipped": skipped},
            )
    return {"moved": moved, "skipped": skipped}
