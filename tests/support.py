"""Helpers for tests that run Orosflow the way a user does."""

from __future__ import annotations

import os
import socket
import subprocess
import sys


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
    """What the concern-report flow does, without Prefect: route, send mail, mark notified.

    Imports are local: conftest imports this module before it sets the test environment.
    """
    from sqlmodel import select

    from models.tables import Report
    from orosflow.core import mail
    from orosflow.core.db import session_scope
    from orosflow.handover import delivery as handovers

    with session_scope() as s:
        rid = s.exec(select(Report).where(Report.reference == reference)).one().id
    ids = handovers.route_and_create_handovers(rid)
    for hid in ids:
        n = handovers.notification_for(hid)
        if n is not None:
            await mail.send(mail.render(n))
            handovers.mark_notified(hid)
    return ids
