"""Daily audit anchors: the chain head written outside the database (file + auditors' mail).

Verifying the chain alone cannot notice a rewrite of the whole table (a forger can recompute
every hash). An anchor of yesterday's head, kept elsewhere, can: the event it names must still
carry the same hash.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from sqlmodel import Session

from models.tables import AuditEvent
from orosflow.core.audit import ChainStatus, verify_chain
from orosflow.core.clock import STOCKHOLM, utcnow
from orosflow.core.db import session_scope
from orosflow.core.settings import get_settings


@dataclass
class AnchorCheck:
    chain: ChainStatus
    anchors_checked: int
    anchor_mismatch: str | None  # file name of the first anchor the chain no longer matches

    @property
    def ok(self) -> bool:
        return self.chain.ok and self.anchor_mismatch is None


def anchor_dir() -> Path:
    return get_settings().var_dir / "audit-anchors"


def _check_anchors(session: Session, directory: Path) -> tuple[int, str | None]:
    count = 0
    for path in sorted(directory.glob("*.json")):
        anchor = json.loads(path.read_text())
        count += 1
        if anchor["events"] == 0:
            continue
        event = session.get(AuditEvent, anchor["events"])
        if event is None or event.hash != anchor["head"]:
            return count, path.name
    return count, None


def verify_and_anchor() -> tuple[AnchorCheck, Path]:
    """Verify the chain and every earlier anchor, then write today's anchor file."""
    directory = anchor_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with session_scope() as session:
        chain = verify_chain(session)
        checked, mismatch = _check_anchors(session, directory)
    now = utcnow()
    path = directory / f"{now.astimezone(STOCKHOLM).date().isoformat()}.json"
    if chain.ok:  # never anchor a broken chain
        path.write_text(
            json.dumps(
                {"at": now.isoformat(), "events": chain.events, "head": chain.head}, indent=2
            )
        )
    return AnchorCheck(chain, checked, mismatch), path


def anchor_message(check: AnchorCheck) -> EmailMessage | None:
    """The auditors' daily mail: status and head hash only (no report content)."""
    s = get_settings()
    if not s.auditor_emails:
        return None
    msg = EmailMessage()
    state = "OK" if check.ok else "FEL"
    msg["Subject"] = f"Orosflow revisionskedja {state}: {check.chain.events} händelser"
    msg["From"] = s.mail_from
    msg["To"] = ", ".join(s.auditor_emails)
    body = (
        f"Kedjans huvud (SHA-256): {check.chain.head}\n"
        f"Antal händelser: {check.chain.events}\n"
        f"Tidigare ankare kontrollerade: {check.anchors_checked}\n"
    )
    if not check.chain.ok:
        body += f"BRUTEN vid händelse {check.chain.first_broken_seq}: {check.chain.reason}\n"
    if check.anchor_mismatch:
        body += f"Kedjan stämmer inte med ankaret {check.anchor_mismatch}: tabellen är omskriven.\n"
    body += "\nSpara detta meddelande: det gör en senare omskrivning av loggen upptäckbar.\n"
    msg.set_content(body)
    return msg
