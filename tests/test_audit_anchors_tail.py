"""Deleting or rewriting the newest audit events is caught by the anchors outside the database.

The attack of issue 11 (finding 2): someone with database access deletes the last events, or
rewrites them and recomputes the hashes. The chain alone still verifies; ``orosflow audit
verify``, the auditor's page and ``/api/v1/audit/chain`` must fail and name the anchor. The
escalation sweep writes the frequent anchors (files only) every
``OROSFLOW_ANCHOR_INTERVAL_MINUTES``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from models.tables import AuditEvent
from orosflow.core import anchors
from orosflow.core.audit import _digest, verify_chain
from orosflow.core.clock import set_clock
from orosflow.core.db import session_scope
from orosflow.core.settings import reset_settings
from orosflow.handover.escalation import escalate_overdue
from orosflow.handover.submission import submit

from factories import form
from support import delete_last_events, run_cli

#: Monday 23 November 2026, 10:00 in Stockholm.
START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Iterator[list[datetime]]:
    now = [START]
    set_clock(lambda: now[0])
    yield now
    set_clock(None)


def _last_seq() -> int:
    with session_scope() as s:
        return s.exec(select(AuditEvent.seq).order_by(col(AuditEvent.seq).desc())).first() or 0


def rewrite_tail(n: int) -> None:
    """The attack: rewrite the newest ``n`` events and recompute their hashes."""
    last = _last_seq()
    with session_scope() as s:
        prev = s.get(AuditEvent, last - n).hash
        for seq in range(last - n + 1, last + 1):
            ev = s.get(AuditEvent, seq)
            ev.actor = "forger"
            ev.prev_hash = prev
            ev.hash = _digest(ev)
            prev = ev.hash
            s.add(ev)
    with session_scope() as s:
        assert verify_chain(s).ok  # the chain alone does not notice


def _anchor_now() -> str:
    check, path = anchors.verify_and_anchor(kind="cli")
    assert check.ok and path.exists()
    return path.name


# --- orosflow audit verify ------------------------------------------------------------------


def test_deleting_the_last_three_events_fails_verify_naming_the_anchor(db: str) -> None:
    for _ in range(2):
        submit(form(), actor="t")
    anchor = _anchor_now()
    last = _last_seq()
    delete_last_events(3)

    out = run_cli("audit", "verify")

    assert out.returncode == 1, out.stderr
    result = json.loads(out.stdout)
    assert result["ok"] is False and result["chain_ok"] is True
    [problem] = result["anchor_problems"]
    assert problem["anchor"] == anchor and problem["code"] == "chain_shorter"
    assert problem["seq"] == last
    assert anchor in out.stderr and "tagits bort" in out.stderr
    assert "hel" not in out.stderr


def test_a_recomputed_rewrite_of_the_tail_fails_verify(db: str) -> None:
    submit(form(), actor="t")
    anchor = _anchor_now()
    submit(form(), actor="t")  # the chain grows after the anchor …
    last = _last_seq()
    rewrite_tail(last - 2)  # … and the forger rewrites everything from event 3 on

    out = run_cli("audit", "verify")

    assert out.returncode == 1, out.stderr
    [problem] = json.loads(out.stdout)["anchor_problems"]
    assert problem["anchor"] == anchor and problem["code"] == "hash_differs"
    assert "skrivits om" in out.stderr


def test_deleting_the_tail_and_appending_new_events_fails(db: str) -> None:
    """Deleting the tail and writing as many new events (a valid chain again) still fails."""
    submit(form(), actor="t")
    _anchor_now()
    delete_last_events(3)
    submit(form(), actor="t")
    with session_scope() as s:
        check = anchors.verify(s)
    assert check.chain.ok and not check.ok
    assert check.problems[0].code == "hash_differs"


def test_a_chain_that_only_grew_after_the_anchors_passes(db: str, clock) -> None:
    submit(form(), actor="t")
    _anchor_now()
    clock[0] += timedelta(minutes=10)
    submit(form(), actor="t")
    _anchor_now()
    submit(form(), actor="t")

    out = run_cli("audit", "verify")

    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["ok"] and result["anchors_checked"] == 2 and result["anchor_problems"] == []
    assert "stämmer med alla 2 ankare" in out.stderr


def test_a_tampered_chain_is_never_anchored(db: str, clock) -> None:
    submit(form(), actor="t")
    anchor = _anchor_now()
    delete_last_events(2)
    clock[0] += timedelta(minutes=10)
    check, path = anchors.verify_and_anchor(kind="cli")
    assert not check.ok and check.anchor_mismatch == anchor
    assert not path.exists()  # the shorter chain was not anchored over the evidence


# --- the sweep --------------------------------------------------------------------------------


async def test_the_sweep_anchors_when_the_interval_has_passed_and_not_before(
    db: str, clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OROSFLOW_ANCHOR_INTERVAL_MINUTES", "5")
    reset_settings()
    frequent = anchors.anchor_dir() / anchors.FREQUENT
    submit(form(), actor="t")

    first = (await escalate_overdue()).anchor
    assert first is not None and (anchors.anchor_dir() / first).exists()
    clock[0] += timedelta(minutes=4)
    assert (await escalate_overdue()).anchor is None  # not before the interval
    clock[0] += timedelta(minutes=1)
    submit(form(), actor="t")
    second = (await escalate_overdue()).anchor
    assert second is not None and second != first
    assert len(list(frequent.glob("*.json"))) == 2
    data = json.loads((anchors.anchor_dir() / second).read_text())
    assert data["seq"] == _last_seq() and data["kind"] == "frequent"
    with session_scope() as s:  # the sweep walked only the new events: same head as a full walk
        assert data["head"] == verify_chain(s).head

    # The sweep's anchor catches a tail deleted later, and refuses to anchor over it.
    delete_last_events(3)
    clock[0] += timedelta(minutes=5)
    result = await escalate_overdue()
    assert result.anchor is None and second in result.anchor_problems
    with session_scope() as s:
        assert not anchors.verify(s).ok


async def test_old_frequent_anchors_are_pruned_keeping_the_newest_and_the_daily(
    db: str, clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OROSFLOW_ANCHOR_INTERVAL_MINUTES", "5")
    reset_settings()
    submit(form(), actor="t")
    daily, _ = anchors.verify_and_anchor()
    assert daily.ok
    for _ in range(3):
        await escalate_overdue()
        clock[0] += timedelta(minutes=5)
    clock[0] += anchors.KEEP_FREQUENT
    newest = (await escalate_overdue()).anchor
    root = anchors.anchor_dir()
    names = {p.relative_to(root).as_posix() for p in root.rglob("*.json")}
    assert names == {newest, "2026-11-23.json"}


async def test_interval_zero_turns_the_sweeps_anchors_off(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OROSFLOW_ANCHOR_INTERVAL_MINUTES", "0")
    reset_settings()
    assert (await escalate_overdue()).anchor is None
    assert not list(anchors.anchor_dir().rglob("*.json"))


# --- no auditors: anchors only in files -------------------------------------------------------


def test_anchor_command_warns_when_no_auditor_gets_the_mail(
    sqlite_db: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OROSFLOW_AUDITOR_EMAILS", "")  # set but empty: no crash, a warning
    reset_settings()
    submit(form(), actor="t")

    out = run_cli("audit", "anchor")

    assert out.returncode == 0, out.stderr
    assert "OROSFLOW_AUDITOR_EMAILS är tom" in out.stderr
    assert "bara som filer" in out.stderr
    result = json.loads(out.stdout)
    assert result["mailed_to"] == [] and Path(result["anchor_file"]).exists()
    with caplog.at_level(logging.WARNING, logger="orosflow.core.anchors"):
        assert anchors.warn_if_no_auditors()
    assert "OROSFLOW_AUDITOR_EMAILS är tom" in caplog.text


def test_anchor_command_mails_the_head_to_the_auditors(
    sqlite_db: str, smtp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OROSFLOW_AUDITOR_EMAILS", "revisor@example.se, revisor2@example.se")
    reset_settings()
    submit(form(), actor="t")

    out = run_cli("audit", "anchor")

    assert out.returncode == 0, out.stderr
    assert "AUDITOR_EMAILS" not in out.stderr
    result = json.loads(out.stdout)
    assert result["mailed_to"] == ["revisor@example.se", "revisor2@example.se"]
    [mail] = smtp.messages()
    assert result["head"] in mail.get_content()
    assert anchors.no_auditors_warning() is None
