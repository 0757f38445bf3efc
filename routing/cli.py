"""``orosflow route [FILE]``: route one child from a JSON request and print the decision.

Reads a JSON object from FILE (or standard input when FILE is missing or "-") and prints the
decision as JSON. Keys (all municipality values are four-digit SCB codes):

  clinic_municipality    required: the reporting clinic's municipality
  municipality           the child's residence municipality (null if unknown)
  district               Stockholm city (0180) only: district id or name, e.g. "Södermalm"
  staying_municipality   where the child is staying now (vistelsekommun)
  urgency                "acute" or "not_acute" (default)
  protected_identity     true/false (default false): district and address are never used
  placed_by              the placing municipality for a child in HVB or foster care
  unaccompanied          true/false (default false): unaccompanied minor
  assigned_municipality  unaccompanied: anvisningskommun, if assigned
  arrival_municipality   unaccompanied: ankomstkommun
  at                     ISO 8601 time with offset, e.g. "2026-12-24T10:00:00+01:00";
                         default: now

Output: the decision as JSON, every field present (null when empty). Each decision, at the
top level and in ``also``, has:

  unit_id, unit_kind     the receiving unit (intake, district or socialjour)
  rule, explanation      the deciding rule id and a Swedish explanation naming every rule
  phone_required, phone  whether the counselor must phone it now, and the number ("112"
                         when the socialjour is closed: ask SOS Alarm for the socialjour)
  written                true: the written report goes to this unit; false: a phone step only
  opens_at               when the unit next opens (ISO 8601 with offset, Europe/Stockholm):
                         for an intake unit or district when it next reads written reports;
                         null when it is open at "at"
  hours_verified         whether the hours behind opens_at and the phone step are verified
  also                   further decisions: the written copy beside a socialjour call, the
                         placing municipality, the staying municipality (acute)

Not acute: always the intake unit (or Stockholm district), with opens_at. Acute in office
hours: the intake unit by phone first. Acute out of office hours: the socialjour by phone,
and the written report to the intake unit in ``also`` with opens_at.

Exit 0 with the decision; exit 2 on bad JSON, an unknown key or code, or a time without
offset, printing {"error": {"field", "code", "kind", "message"}} on stdout (``code`` is the
offending value, ``kind`` the error type) and a Swedish line on standard error; exit 3
when the directory or channels file is broken. ``--help`` prints the same in Swedish.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import IO, Any

from pydantic import ValidationError

from routing.errors import FIELD_LABELS, DirectoryError, UnknownCodeError
from routing.hours import TZ
from routing.models import RoutingRequest
from routing.router import get_router

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_DIRECTORY = 3


HELP_SV = """\
Läser ett JSON-objekt från FIL (eller standard in om FIL saknas eller är "-") och skriver
beslutet som JSON. Nycklar (kommuner anges med SCB:s fyrsiffriga kommunkod):

  clinic_municipality    obligatorisk: mottagningens kommun
  municipality           barnets bostadskommun (null om okänd)
  district               bara Stockholms stad (0180): stadsdelsområde, id eller namn,
                         t.ex. "Södermalm" eller "sdf-sodermalm"; utelämna om okänt
  staying_municipality   kommunen där barnet vistas nu (vistelsekommun)
  urgency                "acute" eller "not_acute" (standard)
  protected_identity     true/false (standard false): stadsdel och adress används aldrig
  placed_by              placerande kommun för barn i HVB eller familjehem
  unaccompanied          true/false (standard false): ensamkommande barn
  assigned_municipality  ensamkommande: anvisningskommun, om den är känd
  arrival_municipality   ensamkommande: ankomstkommun
  at                     tidpunkt i ISO 8601 med tidszon, t.ex. "2026-12-24T10:00:00+01:00";
                         standard: nu

Utdata: beslutet som JSON med alla fält (null när värde saknas). Varje beslut, överst och
i "also", har bl.a.:

  unit_id, unit_kind     mottagande enhet (intake = mottagning, district =
                         stadsdelsförvaltning, socialjour)
  rule, explanation      avgörande regel och förklaring på svenska med alla regler
  phone_required, phone  om kuratorn ska ringa nu, och numret ("112" när socialjouren har
                         stängt: begär socialjouren via SOS Alarm)
  written                true: den skriftliga anmälan går till enheten; false: bara samtal
  opens_at               när enheten öppnar nästa gång (ISO 8601 med tidszon, svensk tid):
                         för mottagning och stadsdelsförvaltning när skriftliga anmälningar
                         läses tidigast; null om enheten har öppet vid "at"
  hours_verified         om öppettiderna bakom opens_at och samtalet är verifierade
  also                   fler beslut: den skriftliga anmälan bredvid ett samtal till
                         socialjouren, placerande kommun, vistelsekommun (akut)

Inte akut: alltid mottagningen (eller stadsdelsförvaltningen), med opens_at. Akut under
kontorstid: ring mottagningen först. Akut utanför kontorstid: ring socialjouren; den
skriftliga anmälan går till mottagningen (i "also") med opens_at.

Slutkod 0 med beslutet. Slutkod 2 vid ogiltig JSON, okänd nyckel eller kod, eller tidpunkt
utan tidszon: då skrivs {"error": {"field", "code", "kind", "message"}} på standard ut
("code" är det felaktiga värdet, "kind" feltypen) och en rad på svenska på standard fel.
Slutkod 3 om katalogen eller kanalfilen är trasig.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orosflow route",
        description="Välj mottagare för en orosanmälan om ett barn och förklara varför.",
        epilog=HELP_SV,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=False,
    )
    parser.add_argument("-h", "--help", action="store_true", help="visa den här hjälpen")
    parser.add_argument(
        "file", nargs="?", default="-", metavar="FIL", help="JSON-fil (standard: stdin)"
    )
    return parser


def _error(
    stdout: IO[str],
    field: str | None,
    code: Any,
    kind: str,
    message: str,
) -> int:
    payload = {"error": {"field": field, "code": code, "kind": kind, "message": message}}
    stdout.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
    print(f"orosflow route: {message}", file=sys.stderr)
    return EXIT_USAGE


def _validation_error(stdout: IO[str], exc: ValidationError, data: dict[str, Any]) -> int:
    """Turn pydantic's first error into a Swedish one; naming the field keeps it actionable."""
    err = exc.errors()[0]
    loc = err.get("loc") or ()
    field = str(loc[0]) if loc else None
    value = data.get(field) if field else None
    label = FIELD_LABELS.get(field or "", field or "")
    etype = err.get("type", "")
    if etype == "extra_forbidden":
        message = f"Okänd nyckel {field!r}; se 'orosflow route --help' för giltiga nycklar."
    elif etype == "missing":
        message = f"Nyckeln {field!r} ({label}) saknas."
    elif field == "at" and etype == "value_error":
        message = str(err.get("ctx", {}).get("error") or err.get("msg"))
        etype = "naive_datetime"
    else:
        message = f"Ogiltigt värde för {field!r} ({label}): {value!r}."
    return _error(stdout, field, value, etype or "invalid", message)


def main(
    argv: list[str] | None = None,
    stdin: IO[str] = sys.stdin,
    stdout: IO[str] = sys.stdout,
) -> int:
    """Run the command; return the exit code instead of exiting so callers can embed it."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a usage error; argparse has printed it on stderr
        return int(exc.code or 0)
    if args.help:
        parser.print_help(stdout)
        return EXIT_OK
    try:
        if args.file == "-":
            text = stdin.read()
        else:
            with open(args.file, encoding="utf-8") as fh:
                text = fh.read()
    except OSError as exc:
        return _error(
            stdout, None, args.file, "file", f"Kan inte läsa {args.file}: {exc.strerror}."
        )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return _error(
            stdout, None, None, "bad_json", f"Ogiltig JSON (rad {exc.lineno}, kolumn {exc.colno})."
        )
    if not isinstance(data, dict):
        return _error(stdout, None, None, "bad_json", "JSON-indata ska vara ett objekt {...}.")
    if data.get("at") is None:
        data["at"] = datetime.now(TZ).isoformat()
    try:
        req = RoutingRequest.model_validate(data)
    except ValidationError as exc:
        return _validation_error(stdout, exc, data)
    try:
        decision = get_router().route(req)
    except UnknownCodeError as exc:
        return _error(stdout, exc.field, exc.code, "unknown_code", exc.message)
    except DirectoryError as exc:
        print(f"orosflow route: {exc}", file=sys.stderr)
        return EXIT_DIRECTORY
    # Every field is dumped, None as null: opens_at is null when the unit is open, not absent.
    payload = decision.model_dump(mode="json", exclude_none=False)
    stdout.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
