"""Generate routing/channels.example.toml: one fake channel for every unit of the directory.

Run ``uv run python -m routing.make_example_channels`` after changing the data files, and
commit the output; ``--check`` exits 1 when the committed file is stale (used by the tests).
Addresses are ``<unit-id>@example.se`` and phone numbers ``000-000 00 00``: obviously fake,
so the example can never be mistaken for a real deployment.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from routing.channels import EXAMPLE_CHANNELS
from routing.directory import DATA_DIR, load_directory

FAKE_PHONE = "000-000 00 00"

HEADER = """\
# ==========================================================================================
# EXEMPEL / EXAMPLE ONLY: INGA RIKTIGA KONTAKTUPPGIFTER.
# Genererad av routing/make_example_channels.py; redigera inte för hand.
#
# Alla adresser är <enhet>@example.se och alla telefonnummer 000-000 00 00. Filen visar
# formatet och gör att tester och demo har en kanal för varje enhet. En driftsättning skriver
# en egen fil med kontrollerade uppgifter och pekar ut den med OROSFLOW_CHANNELS_FILE.
#
# Format: en tabell [units.<enhets-id>] med
#   email         funktionsadress för notifieringar (ingen personuppgift skickas dit)
#   phone         nummer att ringa när telefonkontakt krävs
#   portal_group  grupp i Orosflows portal som ser enhetens anmälningar
#   verified      true först när någon har kontrollerat uppgifterna mot kommunen
# ==========================================================================================

example = true
"""


def render(data_dir: Path = DATA_DIR) -> str:
    """The example file's text for the current directory, in directory order."""
    directory = load_directory(data_dir)
    parts = [HEADER]
    for unit in directory.units.values():
        parts.append(
            f"\n# {unit.name}\n"
            f"[units.{unit.id}]\n"
            f'email = "{unit.id}@example.se"\n'
            f'phone = "{FAKE_PHONE}"\n'
            f'portal_group = "{unit.id}"\n'
            "verified = false\n"
        )
    return "".join(parts)


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, compare) the example channels file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    parser.add_argument("--output", type=Path, default=EXAMPLE_CHANNELS)
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} är inaktuell; kör make_example_channels.", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"Skrev {args.output} ({text.count(chr(10) + '[units.')} enheter).", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
