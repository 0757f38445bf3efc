"""CLI for the handover lifecycle: ``handover confirm|decline|phone``, ``feedback``, ``status``.

Same conventions as ``orosflow.cli.main``: JSON on stdout for programs, Swedish on stderr for
people; exit 0 ok (also for a repeat that changed nothing), 2 invalid input or a refused
transition. ``orosflow.cli.main`` calls :func:`register`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from orosflow.core.clock import STOCKHOLM


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


def _run(action: Callable[[], Any], deliver: bool = False) -> int:
    """Run a lifecycle action; report the delivery run it started (the mails it queued)."""
    from orosflow.core.db import migrate
    from orosflow.handover.lifecycle import LifecycleError
    from orosflow.handover.trigger import requested_runs, wait_for_requested

    migrate()
    try:
        with requested_runs() as started:
            result = action()
    except LifecycleError as exc:
        _print_json([{"field": exc.code, **exc.as_json()}])
        print(exc.message, file=sys.stderr)
        return 2
    out = result.as_json() if hasattr(result, "as_json") else result
    if deliver and getattr(result, "changed", False):
        runs = wait_for_requested(started)
        out["delivery"] = {"flow_runs": runs}
        if not any(runs):
            print(
                "Leveranskörningen kunde inte startas nu (Prefect nås inte); e-posten ligger "
                "kvar och skickas av avstämningen eller escalate-overdue.",
                file=sys.stderr,
            )
    _print_json(out)
    if hasattr(result, "message"):
        print(result.message, file=sys.stderr)
    return 0


def _local_datetime(text: str) -> datetime:
    """ISO time; without a zone it is Swedish local time (what a person types)."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"ogiltig tidpunkt {text!r}; skriv t.ex. 2026-04-02T15:10"
        ) from None
    return at.replace(tzinfo=STOCKHOLM) if at.tzinfo is None else at


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"ogiltigt datum {text!r}; skriv t.ex. 2026-04-07"
        ) from None


def cmd_confirm(args: argparse.Namespace) -> int:
    from orosflow.handover.lifecycle import confirm

    return _run(lambda: confirm(args.reference, args.unit, args.by))


def cmd_decline(args: argparse.Namespace) -> int:
    from orosflow.handover.lifecycle import decline

    return _run(
        lambda: decline(args.reference, args.unit, args.by, args.reason, args.right_unit),
        deliver=True,
    )


def cmd_phone(args: argparse.Namespace) -> int:
    from orosflow.core.clock import utcnow
    from orosflow.handover.lifecycle import record_phone_contact

    at = args.at or utcnow()
    return _run(
        lambda: record_phone_contact(args.reference, args.answered_by, at, args.by, args.unit)
    )


def cmd_feedback(args: argparse.Namespace) -> int:
    from orosflow.core.clock import utcnow
    from orosflow.handover.lifecycle import correct_feedback, record_feedback

    day = args.date or utcnow().astimezone(STOCKHOLM).date()
    action = correct_feedback if args.correct else record_feedback
    return _run(
        lambda: action(args.reference, args.unit, args.outcome, day, args.by),
        deliver=True,
    )


def cmd_close(args: argparse.Namespace) -> int:
    from orosflow.handover.lifecycle import close_report

    return _run(lambda: close_report(args.reference, args.by))


def cmd_status(args: argparse.Namespace) -> int:
    from orosflow.views.counselor import status

    summary: list[str] = []

    def action() -> dict[str, Any]:
        st = status(args.reference)
        summary.append(f"{st['reference']}: {st['state_text']}.")
        summary.extend(st["warnings"])
        return st

    code = _run(action)
    if summary:
        print("\n".join(summary), file=sys.stderr)
    return code


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the lifecycle subcommands to ``orosflow``'s parser."""
    from orosflow.handover.lifecycle import DECLINE_REASONS, FEEDBACK_OUTCOMES

    h = subparsers.add_parser("handover", help="överlämningar: bekräfta, avböj, telefonkontakt")
    hsub = h.add_subparsers(dest="handover_command", required=True, metavar="KOMMANDO")

    c = hsub.add_parser("confirm", help="enheten bekräftar att anmälan har tagits emot")
    c.add_argument("reference", help="referensnummer, t.ex. OA-2026-000123")
    c.add_argument("--unit", required=True, help="enhetens id, t.ex. intake-0180")
    c.add_argument("--by", required=True, help="vem som bekräftar")
    c.set_defaults(func=cmd_confirm)

    d = hsub.add_parser("decline", help="enheten avböjer (fel mottagare); anmälan dirigeras om")
    d.add_argument("reference")
    d.add_argument("--unit", required=True, help="enheten som avböjer")
    d.add_argument("--by", required=True, help="vem som avböjer")
    d.add_argument(
        "--reason",
        required=True,
        choices=sorted(DECLINE_REASONS),
        help="; ".join(f"{k}: {v}" for k, v in DECLINE_REASONS.items()),
    )
    d.add_argument("--right-unit", help="rätt enhets id, om den är känd")
    d.set_defaults(func=cmd_decline)

    p = hsub.add_parser("phone", help="kuratorn registrerar telefonkontakten")
    p.add_argument("reference")
    p.add_argument("--answered-by", required=True, help="vem som svarade")
    p.add_argument(
        "--at", type=_local_datetime, help="när (ISO; utan tidszon = svensk tid; standard: nu)"
    )
    p.add_argument("--unit", help="enheten som ringdes (valfritt)")
    p.add_argument("--by", required=True, help="vem som registrerar")
    p.set_defaults(func=cmd_phone)

    cl = hsub.add_parser("close", help="avsluta anmälan när återkopplingen har kommit")
    cl.add_argument("reference")
    cl.add_argument("--by", required=True, help="vem som avslutar")
    cl.set_defaults(func=cmd_close)

    f = subparsers.add_parser("feedback", help="enheten registrerar återkoppling till anmälaren")
    f.add_argument("reference")
    f.add_argument("--unit", required=True, help="enheten som återkopplar")
    f.add_argument(
        "--outcome",
        required=True,
        choices=sorted(FEEDBACK_OUTCOMES),
        help="; ".join(f"{k}: {v}" for k, v in FEEDBACK_OUTCOMES.items()),
    )
    f.add_argument("--date", type=_date, help="beslutets datum (standard: i dag)")
    f.add_argument("--by", required=True, help="vem som registrerar")
    f.add_argument(
        "--correct",
        action="store_true",
        help="rätta en redan registrerad återkoppling (loggas som feedback.corrected)",
    )
    f.set_defaults(func=cmd_feedback)

    st = subparsers.add_parser("status", help="anmälans status, tidsfrister och återkoppling")
    st.add_argument("reference")
    st.set_defaults(func=cmd_status)
