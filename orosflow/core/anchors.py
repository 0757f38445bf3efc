"""Audit anchors: the chain head (position and hash) written outside the database.

Verifying the chain alone cannot notice a rewrite of the table's tail or of the whole table (a
forger can delete the newest events, or recompute every hash). An anchor kept elsewhere can:
the event at the anchor's position must still exist and carry the same hash.

Three kinds, all in :func:`anchor_dir` (default ``var/audit-anchors/``):

* ``YYYY-MM-DD.json``         the daily anchor (``audit-verify`` flow), also mailed to auditors;
* ``cli-YYYYMMDDTHHMMSSZ.json`` written by ``orosflow audit anchor``, also mailed;
* ``frequent/YYYYMMDDTHHMMSSZ.json`` written by the escalation sweep every
  ``OROSFLOW_ANCHOR_INTERVAL_MINUTES`` (files only, no mail); those older than
  :data:`KEEP_FREQUENT` are pruned, the newest is always kept.

An anchor is only written after the chain verified against every existing anchor, so a newer
anchor implies the older ones (the chain links every event to its predecessor): pruning old
frequent anchors loses no protection, and a tampered chain is never anchored.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from models.tables import AuditEvent
from orosflow.core.audit import ChainStatus, verify_chain
from orosflow.core.clock import STOCKHOLM, utcnow
from orosflow.core.db import session_scope
from orosflow.core.settings import get_settings

log = logging.getLogger("orosflow.core.anchors")

FREQUENT = "frequent"
#: Frequent anchors older than this are pruned (the newest is always kept; daily and CLI
#: anchors are never pruned). At the default 5 minutes that is at most ~580 small files.
KEEP_FREQUENT = timedelta(hours=48)
#: A sweep that comes this much early still anchors (the cron sweep jitters by a few seconds).
INTERVAL_SLACK = timedelta(seconds=30)


@dataclass(frozen=True)
class Anchor:
    """One anchor file: ``name`` is its path relative to the anchor directory."""

    name: str
    at: datetime | None
    seq: int
    head: str


@dataclass(frozen=True)
class AnchorProblem:
    """An anchor the chain no longer matches (codes: chain_shorter, event_missing,
    hash_differs, unreadable)."""

    anchor: str
    at: datetime | None
    seq: int | None
    code: str
    message: str

    def as_json(self) -> dict[str, Any]:
        return {
            "anchor": self.anchor,
            "at": self.at.isoformat() if self.at else None,
            "seq": self.seq,
            "code": self.code,
            "message": self.message,
        }


@dataclass
class AnchorCheck:
    chain: ChainStatus
    anchors_checked: int
    problems: list[AnchorProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.chain.ok and not self.problems

    @property
    def anchor_mismatch(self) -> str | None:
        """File name of the oldest anchor the chain no longer matches."""
        return self.problems[0].anchor if self.problems else None

    def message(self) -> str:
        """One Swedish sentence (or two) for people: CLI, auditor page, mail."""
        if self.ok:
            if not self.anchors_checked:
                return (
                    f"Kedjan är hel ({self.chain.events} händelser); det finns inga ankare "
                    "att jämföra med ännu."
                )
            return (
                f"Kedjan är hel ({self.chain.events} händelser) och stämmer med alla "
                f"{self.anchors_checked} ankare."
            )
        parts = []
        if not self.chain.ok:
            parts.append(
                f"Kedjan är bruten vid händelse {self.chain.first_broken_seq}: {self.chain.reason}."
            )
        if self.problems:
            first = self.problems[0]
            more = len(self.problems) - 1
            parts.append(
                f"Kedjan stämmer inte med ankaret {first.anchor}"
                f"{f' ({local_time(first.at)})' if first.at else ''}: {first.message}"
                + (f" ({more} ankare till stämmer inte.)" if more else "")
            )
        return " ".join(parts)

    def as_json(self) -> dict[str, Any]:
        return {
            **self.chain.as_json(),
            "ok": self.ok,
            "chain_ok": self.chain.ok,
            "anchors_checked": self.anchors_checked,
            "anchor_problems": [p.as_json() for p in self.problems],
            "message": self.message(),
        }


def local_time(at: datetime) -> str:
    return at.astimezone(STOCKHOLM).strftime("%Y-%m-%d %H:%M")


def anchor_dir() -> Path:
    s = get_settings()
    return s.anchor_dir or (s.var_dir / "audit-anchors")


def _utc_stamp(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _when(at: datetime | None) -> tuple[bool, float]:
    """Sort key: oldest first, undated last."""
    return (at is None, at.timestamp() if at else 0.0)


def _anchor_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.json")) + sorted((directory / FREQUENT).glob("*.json"))


def _read(path: Path, directory: Path) -> Anchor:
    data = json.loads(path.read_text(encoding="utf-8"))
    at = datetime.fromisoformat(data["at"]) if data.get("at") else None
    return Anchor(
        name=path.relative_to(directory).as_posix(),
        at=at,
        seq=int(data.get("seq", data.get("events", 0))),
        head=str(data["head"]),
    )


def load_anchors(directory: Path | None = None) -> tuple[list[Anchor], list[AnchorProblem]]:
    """Every anchor in the directory, oldest first, and the files that cannot be read."""
    directory = directory or anchor_dir()
    found, broken = [], []
    for path in _anchor_files(directory):
        name = path.relative_to(directory).as_posix()
        try:
            found.append(_read(path, directory))
        except (OSError, ValueError, KeyError, TypeError):
            broken.append(
                AnchorProblem(
                    name,
                    None,
                    None,
                    "unreadable",
                    "ankarfilen går inte att läsa (ändrad eller skadad).",
                )
            )
    found.sort(key=lambda a: (*_when(a.at), a.seq))
    return found, broken


def _hashes(session: Session, seqs: Iterable[int], chunk: int = 500) -> dict[int, str]:
    wanted = sorted(set(seqs))
    out: dict[int, str] = {}
    for i in range(0, len(wanted), chunk):
        rows = session.exec(
            select(AuditEvent.seq, AuditEvent.hash).where(
                col(AuditEvent.seq).in_(wanted[i : i + chunk])
            )
        ).all()
        out.update({int(seq): h for seq, h in rows if seq is not None})
    return out


def check_anchors(
    session: Session, directory: Path | None = None
) -> tuple[int, list[AnchorProblem]]:
    """Compare the table with every anchor: (anchors checked, problems oldest first)."""
    anchors, problems = load_anchors(directory)
    last = session.exec(select(func.max(AuditEvent.seq))).one() or 0
    hashes = _hashes(session, (a.seq for a in anchors if a.seq > 0))
    for a in anchors:
        if a.seq <= 0:
            continue
        found = hashes.get(a.seq)
        if a.seq > last:
            code = "chain_shorter"
            text = (
                f"ankaret pekar på händelse {a.seq}, men kedjan slutar vid händelse {last}: "
                "de senaste händelserna har tagits bort."
            )
        elif found is None:
            code, text = "event_missing", f"händelse {a.seq} i ankaret finns inte längre."
        elif found != a.head:
            code = "hash_differs"
            text = (
                f"händelse {a.seq} har en annan hash än i ankaret: kedjan har skrivits om "
                "efter att ankaret skrevs."
            )
        else:
            continue
        problems.append(AnchorProblem(a.name, a.at, a.seq, code, text))
    problems.sort(key=lambda p: _when(p.at))
    return len(anchors) + sum(p.code == "unreadable" for p in problems), problems


def verify(session: Session, directory: Path | None = None) -> AnchorCheck:
    """The whole chain, and the table against every anchor outside it."""
    chain = verify_chain(session)
    checked, problems = check_anchors(session, directory)
    return AnchorCheck(chain, checked, problems)


def _write(path: Path, now: datetime, chain: ChainStatus, kind: str) -> None:
    """Write atomically, so a concurrent verify never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"at": now.isoformat(), "seq": chain.events, "events": chain.events}
    body.update(head=chain.head, kind=kind)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(body, indent=2), encoding="utf-8")
    os.replace(tmp, path)


def _anchor_path(directory: Path, kind: str, now: datetime) -> Path:
    if kind == "daily":
        return directory / f"{now.astimezone(STOCKHOLM).date().isoformat()}.json"
    if kind == "cli":
        return directory / f"cli-{_utc_stamp(now)}.json"
    return directory / FREQUENT / f"{_utc_stamp(now)}.json"


def verify_and_anchor(kind: str = "daily") -> tuple[AnchorCheck, Path]:
    """Verify the chain and every earlier anchor, then write this anchor (``daily``, ``cli``
    or ``frequent``) — only when everything matched: a tampered chain is never anchored."""
    directory = anchor_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with session_scope() as session:
        check = verify(session, directory)
    now = utcnow()
    path = _anchor_path(directory, kind, now)
    if check.ok:
        _write(path, now, check.chain, kind)
    return check, path


def newest_frequent(directory: Path | None = None) -> Anchor | None:
    directory = directory or anchor_dir()
    for path in sorted((directory / FREQUENT).glob("*.json"), reverse=True):
        try:
            return _read(path, directory)
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None


def prune_frequent(now: datetime, directory: Path | None = None) -> int:
    """Delete frequent anchors older than :data:`KEEP_FREQUENT`, never the newest."""
    directory = directory or anchor_dir()
    paths = sorted((directory / FREQUENT).glob("*.json"))
    cutoff = _utc_stamp(now - KEEP_FREQUENT)
    removed = 0
    for path in paths[:-1]:
        if path.stem < cutoff:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


@dataclass
class FrequentResult:
    written: str | None = None  # anchor file name, when one was written
    problems: list[AnchorProblem] = field(default_factory=list)
    chain_broken_at: int | None = None


def anchor_if_due(now: datetime | None = None) -> FrequentResult:
    """The sweep's anchor: write the head when the interval has passed since the newest
    frequent anchor (files only; the auditors' mail stays daily)."""
    minutes = get_settings().anchor_interval_minutes
    if minutes <= 0:
        return FrequentResult()
    now = now or utcnow()
    newest = newest_frequent()
    if newest and newest.at and now - newest.at + INTERVAL_SLACK < timedelta(minutes=minutes):
        return FrequentResult()
    directory = anchor_dir()
    with session_scope() as session:
        checked, problems = check_anchors(session, directory)
        # The newest frequent anchor still matches the table (else a problem above), and the
        # chain up to it was verified when it was written: walk only the events since.
        since = (newest.seq, newest.head) if newest and not problems else None
        check = AnchorCheck(verify_chain(session, since=since), checked, problems)
    if not check.ok:
        log.error("audit chain not anchored: %s", check.message())
        return FrequentResult(None, check.problems, check.chain.first_broken_seq)
    path = _anchor_path(directory, FREQUENT, now)
    _write(path, now, check.chain, FREQUENT)
    prune_frequent(now, directory)
    return FrequentResult(path.relative_to(directory).as_posix())


def no_auditors_warning() -> str | None:
    """Swedish warning for start-up when no auditor gets the anchors by mail."""
    if get_settings().auditor_emails:
        return None
    return (
        "Varning: OROSFLOW_AUDITOR_EMAILS är tom. Revisionskedjans ankare skickas då inte till "
        f"någon revisor och finns bara som filer i {anchor_dir()}; den som kommer åt både "
        "databasen och den katalogen kan skriva om loggen oupptäckt."
    )


def warn_if_no_auditors() -> str | None:
    """Log the warning (and return it, for a CLI to print on stderr)."""
    warning = no_auditors_warning()
    if warning:
        log.warning(warning)
    return warning


def anchor_message(check: AnchorCheck) -> EmailMessage | None:
    """The auditors' mail: status and head hash only (no report content)."""
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
        f"Position (händelse nr): {check.chain.events}\n"
        f"Antal händelser: {check.chain.events}\n"
        f"Tidigare ankare kontrollerade: {check.anchors_checked}\n"
    )
    if not check.chain.ok:
        body += f"BRUTEN vid händelse {check.chain.first_broken_seq}: {check.chain.reason}\n"
    for p in check.problems:
        body += f"Kedjan stämmer inte med ankaret {p.anchor}: {p.message}\n"
    body += "\nSpara detta meddelande: det gör en senare omskrivning av loggen upptäckbar.\n"
    msg.set_content(body)
    return msg
