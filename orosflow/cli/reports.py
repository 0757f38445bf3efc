"""``orosflow reports erase REF --reason CODE``: erase one report's content on a decision.

Same conventions as ``orosflow.cli.main``: JSON on stdout for programs (errors as
``{"error": {"code", "message", "fields"}}``), Swedish on stderr for people; exit 0 ok (also
for a report already erased), 2 an unknown reference or reason code (nothing changed).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from orosflow.handover.erase_reasons import ERASE_REASONS


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


def cmd_erase(args: argparse.Namespace) -> int:
    from orosflow.core.db import migrate
    from orosflow.handover.lifecycle import LifecycleError
    from orosflow.handover.retention import erase_on_decision

    migrate()
    actor = args.actor or f"cli:{getpass.getuser()}"
    try:
        result = erase_on_decision(args.reference, args.reason, actor=actor)
    except LifecycleError as exc:
        field = "reason" if exc.code == "reason_unknown" else "reference"
        _print_json({"error": {**exc.as_json(), "fields": [field]}})
        print(exc.message, file=sys.stderr)
        return 2
    _print_json(result)
    if result["erased"]:
        print(
            f"Anmälan {result['reference']} är raderad (orsak: {result['reason']}). Innehållet "
            "går inte att återställa; revisionsloggen visar vem, när och varför.",
            file=sys.stderr,
        )
    else:
        print(f"Anmälan {result['reference']} var redan raderad; inget ändrades.", file=sys.stderr)
    return 0


def register(sub: Any) -> None:
    """Add ``reports erase`` to ``orosflow``'s parser."""
    r = sub.add_parser("reports", help="enskilda anmälningar")
    rsub = r.add_subparsers(dest="reports_command", required=True, metavar="KOMMANDO")
    reasons = "; ".join(f"{code}: {text}" for code, text in ERASE_REASONS.items())
    e = rsub.add_parser(
        "erase",
        help="radera en anmälans innehåll nu, efter ett beslut (loggas; kan inte ångras)",
        description="Raderar anmälans innehåll (barnet, vårdnadshavarna, oron). Kvar blir "
        "revisionsloggen: referens, orsak och vem som raderade.",
    )
    e.add_argument("reference", metavar="REF", help="anmälans nummer, t.ex. OA-2026-000123")
    e.add_argument("--reason", default="", metavar="ORSAK", help=f"orsakskod — {reasons}")
    e.add_argument("--actor", help="vem som raderar (standard: cli:<användare>)")
    e.set_defaults(func=cmd_erase)
