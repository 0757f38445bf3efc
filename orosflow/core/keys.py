"""Master-key rotation: new active key, every report's data key re-wrapped, data untouched."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from models.tables import ReportKey
from orosflow.core.audit import append_event
from orosflow.core.crypto import load_keyring
from orosflow.core.db import session_scope


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
