"""``orosflow users add|list|disable|password|token|units|mfa-reset`` and ``orosflow portal``.

The portal's admin page calls the same functions of :mod:`orosflow.identity.accounts`.

Passwords are read from a prompt, or from stdin with ``--password-stdin`` (never from the
command line, where they would end up in the shell history and the process list).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from models.accounts import Role


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Lösenord: ")
    if getpass.getpass("Lösenord igen: ") != first:
        raise SystemExit("Lösenorden var olika; inget har ändrats.")
    return first


def _run(work: Any) -> int:
    from orosflow.core.db import migrate
    from orosflow.identity.accounts import AccountError

    migrate()
    try:
        return int(work())
    except AccountError as exc:
        _print_json({"error": {"code": exc.code, "message": exc.message}})
        print(exc.message, file=sys.stderr)
        return 2


def cmd_add(args: argparse.Namespace) -> int:
    from orosflow.identity import accounts

    def work() -> int:
        principal = accounts.add_user(
            args.username,
            display_name=args.name or args.username,
            role=args.role,
            # An account of the identity provider has no password here.
            password=None if args.external_id else _password(args),
            email=args.email,
            units=args.unit or [],
            external_id=args.external_id,
            actor=f"cli:{getpass.getuser()}",
        )
        _print_json(
            {
                "username": principal.username,
                "role": principal.role,
                "units": sorted(principal.units),
            }
        )
        print(f"Kontot {principal.username} är skapat.", file=sys.stderr)
        return 0

    return _run(work)


def cmd_list(args: argparse.Namespace) -> int:
    from orosflow.identity import accounts

    def work() -> int:
        _print_json(accounts.list_users())
        return 0

    return _run(work)


def cmd_disable(args: argparse.Namespace) -> int:
    from orosflow.identity import accounts

    def work() -> int:
        accounts.disable_user(args.username, actor=f"cli:{getpass.getuser()}")
        _print_json({"username": args.username, "status": "disabled"})
        print(
            f"Kontot {args.username} är avstängt; sessioner och token är avslutade.",
            file=sys.stderr,
        )
        return 0

    return _run(work)


def cmd_password(args: argparse.Namespace) -> int:
    from orosflow.identity import accounts

    def work() -> int:
        accounts.set_password(args.username, _password(args), actor=f"cli:{getpass.getuser()}")
        print(f"Nytt lösenord för {args.username} är sparat.", file=sys.stderr)
        return 0

    return _run(work)


def cmd_token(args: argparse.Namespace) -> int:
    from orosflow.identity import accounts

    def work() -> int:
        token = accounts.create_api_token(
            args.username, args.name, actor=f"cli:{getpass.getuser()}", expires=args.expires
        )
        expires = accounts.token_info(token)["expires_at"]
        _print_json(
            {"username": args.username, "name": args.name, "token": token, "expires_at": expires}
        )
        print("Spara token nu: den visas bara en gång.", file=sys.stderr)
        return 0

    return _run(work)


def cmd_units(args: argparse.Namespace) -> int:
    from orosflow.identity import accounts

    def work() -> int:
        units = accounts.set_units(args.username, args.unit or [], actor=f"cli:{getpass.getuser()}")
        _print_json({"username": args.username, "units": units})
        print(f"Enheterna för {args.username} är sparade.", file=sys.stderr)
        return 0

    return _run(work)


def cmd_mfa_reset(args: argparse.Namespace) -> int:
    from orosflow.identity import accounts

    def work() -> int:
        accounts.reset_mfa(args.username, actor=f"cli:{getpass.getuser()}")
        _print_json({"username": args.username, "mfa": None})
        print(
            f"Tvåstegsverifieringen för {args.username} är borttagen och sessionerna avslutade; "
            "kontot registrerar en ny vid nästa inloggning.",
            file=sys.stderr,
        )
        return 0

    return _run(work)


def cmd_portal(args: argparse.Namespace) -> int:
    import uvicorn

    from orosflow.core.crypto import check_key_settings
    from orosflow.core.db import migrate
    from orosflow.core.settings import get_settings
    from orosflow.portal.access_log import LOG_CONFIG

    settings = get_settings()
    check_key_settings(settings)  # an invalid key: a Swedish message from main(), exit 2
    migrate()
    print(f"Portalen: http://{settings.portal_host}:{settings.portal_port}", file=sys.stderr)
    uvicorn.run(
        "orosflow.portal.app:create_app",
        factory=True,
        host=settings.portal_host,
        port=settings.portal_port,
        log_level="info",
        log_config=LOG_CONFIG,
        access_log=False,  # the app's own access log masks addresses and times requests
        proxy_headers=False,
    )
    return 0


def register(sub: Any) -> None:
    u = sub.add_parser("users", help="konton för portalen och API:t")
    usub = u.add_subparsers(dest="users_command", required=True, metavar="KOMMANDO")

    a = usub.add_parser("add", help="skapa ett konto (lösenord frågas efter)")
    a.add_argument("username", help="användarnamn (inga mellanslag)")
    a.add_argument("--role", required=True, choices=Role.ALL, help="roll")
    a.add_argument("--name", help="visningsnamn")
    a.add_argument("--email", help="e-post (krävs för kuratorer: hittar deras anmälningar)")
    a.add_argument(
        "--unit",
        action="append",
        help="enhets-id som en mottagningshandläggare tar emot för (kan upprepas)",
    )
    a.add_argument("--password-stdin", action="store_true", help="läs lösenordet från stdin")
    a.add_argument(
        "--external-id",
        help="loggar in via organisationens IdP (OIDC): ID-tokenets subjekt "
        "(OROSFLOW_OIDC_SUBJECT_CLAIM); kontot får inget lösenord",
    )
    a.set_defaults(func=cmd_add)

    ls = usub.add_parser("list", help="lista konton")
    ls.set_defaults(func=cmd_list)

    d = usub.add_parser("disable", help="stäng av ett konto och återkalla dess token")
    d.add_argument("username")
    d.set_defaults(func=cmd_disable)

    pw = usub.add_parser("password", help="sätt nytt lösenord")
    pw.add_argument("username")
    pw.add_argument("--password-stdin", action="store_true", help="läs lösenordet från stdin")
    pw.set_defaults(func=cmd_password)

    t = usub.add_parser("token", help="skapa en API-token (visas en gång)")
    t.add_argument("username")
    t.add_argument("--name", required=True, help="vilket system som använder token")
    t.add_argument(
        "--expires",
        default="90d",
        help="giltighetstid: antal dagar (90d, standard) eller ett datum (2027-03-01)",
    )
    t.set_defaults(func=cmd_token)

    un = usub.add_parser("units", help="knyt en mottagningshandläggare till enheter")
    un.add_argument("username")
    un.add_argument("--unit", action="append", required=True, help="enhets-id (kan upprepas)")
    un.set_defaults(func=cmd_units)

    mr = usub.add_parser(
        "mfa-reset", help="ta bort kontots tvåstegsverifiering (t.ex. borttappad telefon)"
    )
    mr.add_argument("username")
    mr.set_defaults(func=cmd_mfa_reset)

    p = sub.add_parser("portal", help="starta bara webbportalen (utan Prefect)")
    p.set_defaults(func=cmd_portal)
