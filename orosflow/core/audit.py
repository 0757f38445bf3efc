"""Hash-chained audit log: who did what, when, to which report, under which rule.

Events are appended inside the caller's transaction, so a state change and its event commit or
fail together. Each event stores the previous event's hash; ``verify_chain`` recomputes every
hash and names the first event that was edited, deleted, inserted or swapped.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, col, select

from models.tables import AuditEvent
from orosflow.core.clock import utcnow

GENESIS = "0" * 64
_PG_CHAIN_LOCK = 7_201_611  # advisory lock id serialising appends on PostgreSQL


def _digest(event: AuditEvent) -> str:
    body = json.dumps(
        {
            "seq": event.seq,
            "at": event.at.astimezone(UTC).isoformat(timespec="microseconds"),
            "actor": event.actor,
            "action": event.action,
            "report_id": event.report_id,
            "handover_id": event.handover_id,
            "rule": event.rule,
            "details": event.details,
            "prev_hash": event.prev_hash,
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(body.encode()).hexdigest()


#: ``session.info`` key of the chain head this transaction appended last: (transaction, seq, hash).
_HEAD = "orosflow.audit_head"


def _cached_head(session: Session) -> tuple[int, str] | None:
    """The (seq, hash) this transaction appended last, if it appended already.

    It is still the chain's head: on SQLite the transaction holds the write lock, on
    PostgreSQL the chain's advisory lock, so nobody else appends until it ends; and a commit
    or rollback starts a new transaction object, which does not match the cached one."""
    cached = session.info.get(_HEAD)
    transaction = session.get_transaction()
    if cached is not None and transaction is not None and cached[0] is transaction:
        return cached[1], cached[2]
    return None


def append_event(
    session: Session,
    *,
    actor: str,
    action: str,
    report_id: str | None = None,
    handover_id: str | None = None,
    rule: str | None = None,
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEvent:
    """Append one event to the chain in the session's transaction (no personal data in it)."""
    head = _cached_head(session)
    if head is None:
        if session.get_bind().dialect.name == "postgresql":
            session.exec(text("SELECT pg_advisory_xact_lock(:k)").bindparams(k=_PG_CHAIN_LOCK))
        last = session.exec(
            select(AuditEvent).order_by(col(AuditEvent.seq).desc()).limit(1)
        ).first()
        head = (last.seq, last.hash) if last else (0, GENESIS)
    seq, prev_hash = head
    event = AuditEvent(
        seq=seq + 1,
        at=at or utcnow(),
        actor=actor,
        action=action,
        report_id=report_id,
        handover_id=handover_id,
        rule=rule,
        details=json.dumps(details or {}, sort_keys=True, ensure_ascii=False),
        prev_hash=prev_hash,
        hash="",
    )
    event.hash = _digest(event)
    # No flush: the rows are written with the transaction's next flush, in the order appended
    # (one statement for several), and the head is known from here on.
    session.add(event)
    session.info[_HEAD] = (session.get_transaction(), event.seq, event.hash)
    return event


@dataclass
class ChainStatus:
    ok: bool
    events: int
    head: str
    first_broken_seq: int | None = None
    reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "head": self.head,
            "first_broken_seq": self.first_broken_seq,
            "reason": self.reason,
        }


def verify_chain(
    session: Session, batch: int = 5000, since: tuple[int, str] | None = None
) -> ChainStatus:
    """Walk the whole chain in order; stop at the first event that does not fit.

    ``since=(seq, hash)`` starts after an event already known to be good (an anchor the
    table still matches): the frequent anchors then cost only the events since the last one.
    """
    prev_hash, expected_seq, count = GENESIS, 1, 0
    last_seq = 0
    if since is not None and since[0] > 0:
        last_seq, prev_hash = since
        expected_seq, count = last_seq + 1, last_seq
    while True:
        rows = session.exec(
            select(AuditEvent)
            .where(col(AuditEvent.seq) > last_seq)
            .order_by(col(AuditEvent.seq))
            .limit(batch)
        ).all()
        if not rows:
            break
        for ev in rows:
            count += 1
            if ev.seq != expected_seq:
                return ChainStatus(
                    False,
                    count,
                    prev_hash,
                    expected_seq,
                    f"händelse {expected_seq} saknas (borttagen?)",
                )
            if ev.prev_hash != prev_hash:
                return ChainStatus(
                    False,
                    count,
                    prev_hash,
                    ev.seq,
                    "föregående hash stämmer inte (borttagen eller flyttad händelse)",
                )
            if _digest(ev) != ev.hash:
                return ChainStatus(
                    False,
                    count,
                    prev_hash,
                    ev.seq,
                    "innehållet stämmer inte med hashen (ändrad händelse)",
                )
            prev_hash, expected_seq, last_seq = ev.hash, expected_seq + 1, ev.seq
    return ChainStatus(True, count, prev_hash)
