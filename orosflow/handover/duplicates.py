"""One report per intent: idempotency keys and the "same child, same counselor" question.

Two causes of duplicate reports, two rules, both applied inside the submission's own
transaction (:func:`orosflow.handover.submission.submit`):

- **Retries.** A client's ``Idempotency-Key`` (or the portal form's one-time token) is claimed
  with the body's keyed digest. The same key and body again gives the first receipt, nothing
  new stored and nothing sent; the same key with another body is refused
  (:class:`IdempotencyConflict`). The key's primary key makes a concurrent twin fail on insert;
  the caller then retries once and finds the claim.
- **The same child again.** A report for a child (by personnummer) that the same counselor
  reported within ``DUPLICATE_WINDOW`` is refused with the earlier reference
  (:class:`DuplicateSuspected`) unless confirmed. The guard row, keyed by an HMAC of reporter and
  personnummer, is locked for the transaction, so two simultaneous reports queue and the second
  sees the first.

Nothing here stores content: digests, a reference, a sibling group id and times, each row
deleted after its window has passed (by a submission, at most once a minute; the checks ignore
a row past its time before that).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from models.form import ConcernForm
from models.tables import IdempotencyKey, RecentChildReport
from orosflow.core.crypto import Keyring, lookup_digests

#: How long a key answers with its first receipt.
IDEMPOTENCY_RETENTION = timedelta(hours=24)
#: How long a report for the same child from the same counselor asks "Skicka ändå?".
DUPLICATE_WINDOW = timedelta(hours=24)
#: How often a process deletes expired keys and guards (per database).
EXPIRE_EVERY = timedelta(minutes=1)
_last_expired: dict[str, datetime] = {}
MAX_KEY_LENGTH = 200


class IdempotencyConflict(Exception):
    """The key was used before with another body: nothing is stored."""

    code = "idempotency_key_reused"
    message = (
        "Idempotency-Key har redan använts för en annan anmälan. Använd en ny nyckel för en ny "
        "anmälan; inget har sparats."
    )


class DuplicateSuspected(Exception):
    """A child in the form was reported by the same counselor within the window."""

    code = "duplicate_suspected"

    def __init__(self, matches: list[tuple[int, str]]) -> None:
        #: ``(child index, earlier reference)`` per child that matched.
        self.matches = matches
        refs = ", ".join(dict.fromkeys(ref for _, ref in matches))
        self.references = list(dict.fromkeys(ref for _, ref in matches))
        self.message = f"Det här liknar en anmälan du redan skickat ({refs}). Skicka ändå?"
        super().__init__(self.code)


def key_problem(key: str) -> str | None:
    """Why a client's idempotency key is unusable (Swedish), or None."""
    if not key or len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        return f"Idempotency-Key ska vara 1–{MAX_KEY_LENGTH} synliga ASCII-tecken, t.ex. ett UUID."
    return None


def body_text(data: Any) -> str:
    """The body in one canonical form, so the same content gives the same digest."""
    if isinstance(data, ConcernForm):
        data = data.model_dump(mode="json")
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


@dataclass
class SubmitOnce:
    """What :func:`submit` needs to store a submission once (built by the API or the portal)."""

    actor: str
    keyring: Keyring
    #: The client's key (API) or the form's one-time token (portal); None: no retry protection.
    key: str | None = None
    #: The body as sent, for its digest.
    body: Any = None
    #: The counselor has seen the duplicate question and answered "Skicka ändå".
    confirm_duplicate: bool = False
    _pairs: list[tuple[int, str, list[str]]] = field(default_factory=list)
    _guards: dict[str, RecentChildReport] = field(default_factory=dict)

    # --- inside the transaction -----------------------------------------------------------

    def claim(
        self,
        session: Session,
        form: ConcernForm,
        reporter_email: str,
        now: datetime,
        group_id: str,
    ) -> str | None:
        """Before storing ``group_id``: the sibling group to answer with when this is a retry,
        else None (the key now points at ``group_id``, which this transaction stores).

        Raises :class:`IdempotencyConflict` or :class:`DuplicateSuspected` (the caller's
        transaction rolls back: nothing stored). May raise ``IntegrityError`` when a concurrent
        twin claimed the key first; :func:`submit` retries once and then replays.
        """
        self._expire(session, now)
        if self.key is not None:
            group = self._claim_key(session, now, group_id)
            if group is not None:
                return group
        self._claim_children(session, form, reporter_email, now)
        return None

    def record(self, session: Session, references: list[str], now: datetime) -> None:
        """After storing: each child's guard points at its report."""
        for index, digest, _ in self._pairs:
            guard = self._guards.get(digest) or session.get(RecentChildReport, digest)
            if guard is not None:
                guard.reference = references[index]
                guard.submitted_at = now
                guard.expires_at = now + DUPLICATE_WINDOW
                session.add(guard)

    # --- details ----------------------------------------------------------------------------

    def _key_digest(self) -> str:
        return hashlib.sha256(f"orosflow-idempotency:{self.actor}\0{self.key}".encode()).hexdigest()

    def _expire(self, session: Session, now: datetime) -> None:
        """Delete the rows past their time, at most once per ``EXPIRE_EVERY`` per database and
        process: housekeeping only, since the checks below ignore rows past their time."""
        database = str(session.get_bind().url)
        last = _last_expired.get(database)
        if last is not None and last <= now < last + EXPIRE_EVERY:
            return
        session.execute(delete(IdempotencyKey).where(col(IdempotencyKey.expires_at) < now))
        session.execute(delete(RecentChildReport).where(col(RecentChildReport.expires_at) < now))
        _last_expired[database] = now

    def _claim_key(self, session: Session, now: datetime, group_id: str) -> str | None:
        digests = lookup_digests(self.keyring, "body", body_text(self.body))
        row = session.get(IdempotencyKey, self._key_digest())
        if row is not None and row.expires_at < now:  # past its time: as if deleted
            session.delete(row)
            session.flush()
            row = None
        if row is not None:
            if row.body_digest not in digests:
                raise IdempotencyConflict()
            if row.sibling_group_id is not None:
                return row.sibling_group_id
        # A plain insert: a concurrent twin's insert waits for ours and then fails.
        session.execute(
            insert(IdempotencyKey).values(
                key_digest=self._key_digest(),
                body_digest=digests[0],
                sibling_group_id=group_id,
                created_at=now,
                expires_at=now + IDEMPOTENCY_RETENTION,
            )
        )
        return None

    def _claim_children(
        self, session: Session, form: ConcernForm, reporter_email: str, now: datetime
    ) -> None:
        dialect = session.get_bind().dialect.name
        upsert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        who = reporter_email.strip().casefold()
        self._pairs = []
        self._guards = {}
        for index, child in enumerate(form.children):
            if child.personal_number:
                digests = lookup_digests(
                    self.keyring, "child-pair", f"{who}\0{child.personal_number}"
                )
                self._pairs.append((index, digests[0], digests))
        matches: list[tuple[int, str]] = []
        # Lock in one order (by digest), so two forms naming the same children cannot deadlock.
        for index, digest, all_digests in sorted(self._pairs, key=lambda p: p[1]):
            session.execute(
                upsert(RecentChildReport)  # type: ignore[attr-defined]
                .values(pair_digest=digest, expires_at=now + DUPLICATE_WINDOW)
                .on_conflict_do_nothing()
            )
            rows = session.exec(
                select(RecentChildReport)
                .where(col(RecentChildReport.pair_digest).in_(all_digests))
                .with_for_update()
            ).all()
            self._guards.update((r.pair_digest, r) for r in rows)  # record() updates them
            earlier = [
                r
                for r in rows
                if r.reference and r.submitted_at and now - r.submitted_at < DUPLICATE_WINDOW
            ]
            if earlier:
                newest = max(earlier, key=lambda r: r.submitted_at or now)
                matches.append((index, newest.reference or ""))
        if matches and not self.confirm_duplicate:
            raise DuplicateSuspected(sorted(matches))
