"""Demo accounts for the embedded run (``make serve``), so a newcomer can click through the path.

Created only when the database has no accounts at all; their random passwords are kept in
``var/demo-accounts.json`` (mode 0600) and printed at every start. A real installation creates
its accounts with ``orosflow users add`` and never gets these. They are marked ``demo``: the
only accounts that sign in without a second factor while ``OROSFLOW_REQUIRE_MFA`` is on.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from models.accounts import Role
from orosflow.identity import accounts

#: username, role, display name, e-mail, units, what to try with it
DEMO: list[dict[str, Any]] = [
    {
        "username": "kurator",
        "role": Role.COUNSELOR,
        "display_name": "Kim Kurator (demo)",
        # The example report's reporter, so `orosflow submit examples/report.json` shows up too.
        "email": "kim.kurator@example.se",
        "units": [],
        "try": "fyll i en orosanmälan, se kvittot och Mina anmälningar",
    },
    {
        "username": "mottagning",
        "role": Role.INTAKE,
        "display_name": "Sam Mottagning (demo)",
        "email": None,
        "units": ["sdf-sodermalm", "intake-0180", "sj-0180"],
        "try": "inkorgen för Södermalm, Stockholms mottagning och socialjour: öppna, bekräfta",
    },
    {
        "username": "revisor",
        "role": Role.AUDITOR,
        "display_name": "Ann Revisor (demo)",
        "email": None,
        "units": [],
        "try": "överlämningskedjan, export och statistik",
    },
    {
        "username": "admin",
        "role": Role.ADMIN,
        "display_name": "Alex Admin (demo)",
        "email": None,
        "units": [],
        "try": "kontolistan och fångad e-post (/dev/mail)",
    },
]


def ensure_demo_accounts(var_dir: Path) -> list[dict[str, Any]]:
    """The demo accounts with passwords, creating them on a database without accounts."""
    path = var_dir / "demo-accounts.json"
    if path.exists():
        saved: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
        accounts.mark_demo([d["username"] for d in saved])  # made before the demo mark existed
        return saved
    if accounts.has_users():
        return []
    created = []
    for spec in DEMO:
        password = secrets.token_urlsafe(12)
        accounts.add_user(
            spec["username"],
            display_name=spec["display_name"],
            role=spec["role"],
            password=password,
            email=spec["email"],
            units=spec["units"],
            demo=True,  # no second factor: OROSFLOW_REQUIRE_MFA does not apply to them
            actor="system:demo",
        )
        created.append({**spec, "password": password})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(created, fh, ensure_ascii=False, indent=2)
    return created


def describe(demo: list[dict[str, Any]]) -> str:
    lines = ["  Demokonton (lösenorden finns också i var/demo-accounts.json):"]
    for d in demo:
        lines.append(f"    {d['username']:<11} {d['password']:<18} {d['try']}")
    return "\n".join(lines)
