"""A mail whose rendering fails for a passing reason (the database went away) is not left
claimed: the step's retry sends it at once instead of finding it claimed for two minutes."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from models.tables import LifecycleMail
from orosflow.core.db import session_scope
from orosflow.handover.lifecycle import outbox
from orosflow.handover.submission import submit

from factories import form


def _queued_notification() -> str:
    """A submitted report's notification, waiting in the outbox."""
    rid = submit(form(), actor="t").reports[0].report_id
    (mail_id,) = outbox.pending_mails(rid)
    return mail_id


def _database_gone(*_: object) -> None:
    raise OperationalError("SELECT", {}, Exception("server closed the connection"))


def test_a_failed_rendering_gives_the_claim_back(
    sqlite_db: str, office_hours: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    mail_id = _queued_notification()
    monkeypatch.setattr(outbox, "build_mail", _database_gone)
    with pytest.raises(OperationalError):
        outbox.claim_and_render(mail_id, owner="run-1")
    with session_scope() as s:
        row = s.get(LifecycleMail, mail_id)
        assert row.sent_at is None and row.claimed_at is None

    monkeypatch.undo()
    assert outbox.claim_and_render(mail_id, owner="run-2") is not None  # not ClaimedElsewhere


def test_when_the_claim_cannot_be_given_back_the_first_error_is_reported(
    sqlite_db: str, office_hours: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    mail_id = _queued_notification()

    def still_gone(*_: object) -> None:
        raise OperationalError("UPDATE", {}, Exception("still down"))

    monkeypatch.setattr(outbox, "build_mail", _database_gone)
    monkeypatch.setattr(outbox, "release", still_gone)
    with pytest.raises(OperationalError, match="server closed the connection"):
        outbox.claim_and_render(mail_id, owner="run-1")
