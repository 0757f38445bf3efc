"""Helpers for tests that run Orosflow the way a user does."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``orosflow`` as a user would, in a subprocess with the test environment."""
    return subprocess.run(
        [sys.executable, "-m", "orosflow.cli.main", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


async def hand_over(reference: str) -> list[str]:
    """What the concern-report flow does, without Prefect: send the report's queued mail (its
    notifications first), which marks the handovers notified. Returns the ids of the handovers
    routed at submission, in position order.

    Imports are local: conftest imports this module before it sets the test environment.
    """
    from sqlmodel import col, select

    from models.tables import Handover, Report
    from orosflow.core.db import session_scope
    from orosflow.handover.lifecycle import outbox

    with session_scope() as s:
        rid = s.exec(select(Report).where(Report.reference == reference)).one().id
    result = await outbox.deliver(rid)
    assert not result.failed, result
    with session_scope() as s:
        return list(
            s.exec(
                select(Handover.id)
                .where(
                    Handover.report_id == rid,
                    col(Handover.escalated_from).is_(None),
                    col(Handover.rerouted_from).is_(None),
                )
                .order_by(col(Handover.position))
            )
        )


def delete_last_events(n: int) -> None:
    """The tail attack: delete the newest ``n`` audit events straight in the database (what
    is left is still a valid chain). Imports are local, as in ``hand_over``."""
    from sqlalchemy import func, select, text

    from models.tables import AuditEvent
    from orosflow.core.audit import verify_chain
    from orosflow.core.db import get_engine, session_scope

    with get_engine().begin() as conn:
        last = conn.execute(select(func.max(AuditEvent.seq))).scalar_one()
        conn.execute(text("DELETE FROM audit_event WHERE seq > :s").bindparams(s=last - n))
    with session_scope() as s:
        assert verify_chain(s).ok  # the chain alone does not notice


def poppler(tool: str, pdf: bytes, *args: str) -> str:
    """Run a poppler-utils tool on a PDF (``{}`` in ``args`` is the file); its output. Skips
    without poppler-utils (`make test` installs it); under ``CI=true`` that fails instead."""
    if not shutil.which(tool):
        reason = f"{tool} saknas (Debian-paketet poppler-utils; `make test` installerar det)"
        if IN_CI:
            pytest.fail(f"CI=true kräver {reason}")
        pytest.skip(reason)
    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(pdf)
        f.flush()
        argv = [tool, *(f.name if a == "{}" else a for a in args)]
        out = subprocess.run(argv, capture_output=True, check=True, timeout=60)
    return out.stdout.decode("utf-8")


def pdf_text(pdf: bytes) -> str:
    """The PDF's text by pdftotext, whitespace collapsed (lines wrap where the layout does)."""
    return " ".join(poppler("pdftotext", pdf, "-enc", "UTF-8", "{}", "-").split())
