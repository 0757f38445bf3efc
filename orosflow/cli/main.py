"""``orosflow`` command line: submit, validate, route, audit verify, keys, serve.

Programs read JSON on stdout; people read Swedish on stderr. Exit codes: 0 ok, 2 invalid input
or an invalid setting (e.g. ``OROSFLOW_SECRET_KEY``), 1 failure (e.g. a broken audit chain).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from pathlib import Path
from typing import Any

from orosflow.core import prefect_env

prefect_env.configure()

from orosflow.core import redaction  # noqa: E402

redaction.install()


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        data = json.loads(text)
    except FileNotFoundError:
        _fail_input("file", "file_not_found", f"Filen {path} finns inte.")
        return None
    except json.JSONDecodeError as exc:
        _fail_input("file", "json_invalid", f"Filen är inte giltig JSON (rad {exc.lineno}).")
        return None
    if not isinstance(data, dict):
        _fail_input("file", "json_not_object", "Filen ska innehålla ett JSON-objekt.")
        return None
    return data


def _fail_input(field: str, code: str, message: str) -> None:
    _print_json([{"field": field, "code": code, "message": message}])
    print(message, file=sys.stderr)


def cmd_validate(args: argparse.Namespace) -> int:
    from orosflow.handover.validation import FormInvalid, validate_form

    data = _read_json(args.file)
    if data is None:
        return 2
    try:
        form = validate_form(data)
    except FormInvalid as exc:
        _print_json(exc.as_json())
        print(f"Formuläret har {len(exc.errors)} fel; inget har sparats.", file=sys.stderr)
        return 2
    _print_json(form.model_dump(mode="json"))
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from orosflow.core.crypto import check_key_settings
    from orosflow.core.db import migrate
    from orosflow.handover.submission import submit
    from orosflow.handover.validation import FormInvalid

    data = _read_json(args.file)
    if data is None:
        return 2
    check_key_settings()  # an invalid key stops here, before the database is touched
    migrate()
    actor = args.actor or f"cli:{getpass.getuser()}"
    try:
        receipt = submit(data, actor=actor)
    except FormInvalid as exc:
        _print_json(exc.as_json())
        print(f"Formuläret har {len(exc.errors)} fel; inget har sparats.", file=sys.stderr)
        return 2
    out = receipt.as_json()
    if not args.no_flow:
        from orosflow.handover.trigger import start_flow_runs

        runs = asyncio.run(start_flow_runs([(r.report_id, r.reference) for r in receipt.reports]))
        out["flow_runs"] = runs
        if not all(runs.values()):
            print(
                "Anmälan är sparad, men Prefect kunde inte nås. Den skickas automatiskt när "
                "Orosflow är igång igen (make serve).",
                file=sys.stderr,
            )
    _print_json(out)
    print(receipt.message, file=sys.stderr)
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from orosflow.core import anchors
    from orosflow.core.db import migrate, session_scope

    migrate()
    with session_scope() as session:
        check = anchors.verify(session)
    _print_json(check.as_json())
    print(("Revisionskedjan: " if check.ok else "FEL: ") + check.message(), file=sys.stderr)
    for problem in check.problems[1:]:
        print(f"  Ankaret {problem.anchor}: {problem.message}", file=sys.stderr)
    return 0 if check.ok else 1


def cmd_audit_anchor(args: argparse.Namespace) -> int:
    """Anchor the head now (file) and mail it to the auditors, like the daily flow."""
    from orosflow.core import anchors, mail
    from orosflow.core.db import migrate
    from orosflow.core.settings import get_settings

    warning = anchors.warn_if_no_auditors()
    if warning:
        print(warning, file=sys.stderr)
    migrate()
    check, path = anchors.verify_and_anchor(kind="cli")
    out = check.as_json()
    out["anchor_file"] = str(path) if check.ok else None
    msg = anchors.anchor_message(check)
    out["mailed_to"] = []
    rc = 0 if check.ok else 1
    if msg is not None:
        try:
            asyncio.run(mail.send(msg))
            out["mailed_to"] = list(get_settings().auditor_emails)
        except Exception as exc:  # noqa: BLE001 - reported, the file is written either way
            print(
                f"Ankaret kunde inte mejlas till revisorerna ({type(exc).__name__}).",
                file=sys.stderr,
            )
            rc = 1
    _print_json(out)
    if check.ok:
        print(
            f"Ankare skrivet: {path} (händelse {check.chain.events}, {check.chain.head[:16]}…).",
            file=sys.stderr,
        )
    else:
        print("FEL, inget ankare skrivet: " + check.message(), file=sys.stderr)
    return rc


def cmd_route(args: argparse.Namespace) -> int:
    from routing.cli import main as route_main

    return route_main([args.file] if args.file else [])


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    from orosflow.core.db import migrate
    from orosflow.core.keys import rotate_master_key

    migrate()
    result = rotate_master_key()
    _print_json(result)
    print(
        f"Ny huvudnyckel {result['active']}; {result['rewrapped']} nycklar omslutna.",
        file=sys.stderr,
    )
    return 0


_PERIOD_STATES = {
    "active": "aktiv, förstörs {date}",
    "destroy_due": "förstörs vid nästa gallringskörning (sedan {date})",
    "destroyed": "förstörd {destroyed}",
    "missing": "nyckeln saknas i periodnyckelfilen",
    "master_key_only": "äldre anmälningar, bara huvudnyckeln: kör 'orosflow keys rewrap'",
}


def cmd_keys_list(args: argparse.Namespace) -> int:
    """The periods, a count of the reports each key still wraps, and when each is destroyed."""
    from datetime import datetime

    from orosflow.core.db import migrate
    from orosflow.core.keys import period_overview
    from orosflow.core.settings import get_settings

    migrate()
    rows = period_overview()
    _print_json(rows)
    s = get_settings()
    print(
        f"Periodnycklar (en per månad; förstörs när gallringen {s.retention_days} dagar och "
        f"säkerhetskopiornas livslängd {s.backup_days} dagar har gått efter månadens slut):",
        file=sys.stderr,
    )
    if not rows:
        print("  inga ännu.", file=sys.stderr)
    for row in rows:
        date = (
            datetime.fromisoformat(row["destroy_after"]).date().isoformat()
            if row["destroy_after"]
            else ""
        )
        destroyed = (row["destroyed_at"] or "")[:10]
        state = _PERIOD_STATES[row["state"]].format(date=date, destroyed=destroyed)
        noun = "anmälan" if row["reports"] == 1 else "anmälningar"
        print(f"  {row['period'] or '–':7}  {row['reports']:>6} {noun:12} {state}", file=sys.stderr)
    return 0


def cmd_keys_rewrap(args: argparse.Namespace) -> int:
    from orosflow.core.db import migrate
    from orosflow.core.keys import rewrap_into_periods

    migrate()
    result = rewrap_into_periods()
    _print_json(result)
    print(
        f"{result['moved']} äldre anmälningar har lagts under sin månads periodnyckel; "
        f"{result['skipped']} var redan förbi gallringen och lämnades åt den.",
        file=sys.stderr,
    )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from orosflow.cli.serve import run

    return run()


def cmd_runner(args: argparse.Namespace) -> int:
    from orosflow.cli.runner import run

    return run()


def cmd_reconcile(args: argparse.Namespace) -> int:
    from orosflow.core.db import migrate
    from orosflow.handover.reconcile import main as reconcile_main

    migrate()
    return reconcile_main(["--once"] if args.once else [])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="orosflow",
        description="Orosflow: orosanmälan från ungdomsmottagning till rätt socialtjänst.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="KOMMANDO")

    s = sub.add_parser("submit", help="lämna in en orosanmälan från en JSON-fil")
    s.add_argument("file", help="JSON-fil med formuläret ('-' för stdin)")
    s.add_argument("--actor", help="vem som lämnar in (standard: cli:<användare>)")
    s.add_argument("--no-flow", action="store_true", help="spara bara, starta inget flöde")
    s.set_defaults(func=cmd_submit)

    v = sub.add_parser("validate", help="kontrollera ett formulär utan att spara något")
    v.add_argument("file", help="JSON-fil med formuläret ('-' för stdin)")
    v.set_defaults(func=cmd_validate)

    r = sub.add_parser("route", help="visa vilken socialtjänst som tar emot, och varför")
    r.add_argument("file", nargs="?", help="JSON-fil (standard: stdin)")
    r.set_defaults(func=cmd_route)

    a = sub.add_parser("audit", help="revisionsloggen")
    asub = a.add_subparsers(dest="audit_command", required=True, metavar="KOMMANDO")
    av = asub.add_parser("verify", help="kontrollera hela hashkedjan och alla ankare")
    av.set_defaults(func=cmd_audit_verify)
    aa = asub.add_parser(
        "anchor",
        help="skriv kedjans huvud till en fil utanför databasen och mejla det till revisorerna",
    )
    aa.set_defaults(func=cmd_audit_anchor)

    k = sub.add_parser(
        "keys", help="krypteringsnycklar (utan kommando: periodnycklarna och när de förstörs)"
    )
    k.set_defaults(func=cmd_keys_list)
    ksub = k.add_subparsers(dest="keys_command", required=False, metavar="KOMMANDO")
    kl = ksub.add_parser(
        "list", help="periodnycklarna, antal anmälningar per period och när nyckeln förstörs"
    )
    kl.set_defaults(func=cmd_keys_list)
    kr = ksub.add_parser("rotate", help="ny huvudnyckel; alla rapportnycklar omsluts på nytt")
    kr.set_defaults(func=cmd_keys_rotate)
    kw = ksub.add_parser(
        "rewrap", help="lägg äldre anmälningar (bara huvudnyckeln) under sin månads periodnyckel"
    )
    kw.set_defaults(func=cmd_keys_rewrap)

    from orosflow.cli.handover import register

    register(sub)

    from orosflow.cli.users import register as register_users

    register_users(sub)

    from orosflow.cli.reports import register as register_reports

    register_reports(sub)

    from orosflow.cli.mail import register as register_mail

    register_mail(sub)

    rc = sub.add_parser(
        "reconcile", help="avstämning: starta saknade och avbrutna flödeskörningar (var 30:e s)"
    )
    rc.add_argument("--once", action="store_true", help="en runda, sedan avsluta")
    rc.set_defaults(func=cmd_reconcile)

    ru = sub.add_parser(
        "runner",
        help="kör flödena (och avstämningen) mot en Prefect-server, utan portal: en per maskin",
    )
    ru.set_defaults(func=cmd_runner)

    sv = sub.add_parser("serve", help="starta allt lokalt: Prefect, flöden, SMTP-fångst")
    sv.set_defaults(func=cmd_serve)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one command. Files it (and its children) create are private (umask 077); a
    misconfigured master key is a Swedish message and exit code 2 (1 when the server cannot
    read what it encrypts), never a traceback."""
    from orosflow.core.crypto import CryptoError, KeyConfigError
    from orosflow.core.filemodes import restrict_umask

    restrict_umask()
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyConfigError as exc:
        print(f"Orosflow kan inte starta: {exc}", file=sys.stderr, flush=True)
        return 2
    except CryptoError as exc:
        print(f"Orosflow kan inte fortsätta: {exc}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
