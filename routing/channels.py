"""Contact channels per unit: deployment configuration, never code.

The file is TOML::

    example = true                 # optional; true marks a file that must not reach production
    [units.intake-0114]
    email = "mottagning@kommun.example.se"
    phone = "08-000 00 00"
    portal_group = "intake-0114"
    verified = false

Every key under ``units`` must be a unit id of the directory, so a typo fails at start-up
instead of leaving a municipality silently without a channel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from routing.directory import SourceFile

EXAMPLE_CHANNELS = Path(__file__).parent / "channels.example.toml"
_FIELDS = {"email", "phone", "portal_group", "verified"}
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class Channel:
    """How to reach one unit; ``verified`` is false until someone has checked it."""

    email: str | None
    phone: str | None
    portal_group: str | None
    verified: bool

    @property
    def usable(self) -> bool:
        return bool(self.email or self.phone)


@dataclass(frozen=True)
class Channels:
    by_unit: dict[str, Channel]
    is_example: bool
    path: Path


def load_channels(path: Path, unit_ids: set[str]) -> Channels:
    """Parse and check the channels file against the directory's unit ids."""
    src = SourceFile(path)
    doc = src.toml()
    extra = sorted(set(doc) - {"example", "units"})
    if extra:
        raise src.fail(f"okänt fält {extra[0]!r} på toppnivå (tillåtna: example, units)")
    is_example = doc.get("example", False)
    if not isinstance(is_example, bool):
        raise src.fail("'example' ska vara true eller false", src.find_line(1, "example"))
    units = doc.get("units", {})
    if not isinstance(units, dict):
        raise src.fail("'units' ska vara en tabell med en undertabell per enhet")
    out: dict[str, Channel] = {}
    for uid, table in units.items():
        line = _header_line(src, uid)
        entry = f"[units.{uid}]"
        if uid not in unit_ids:
            raise src.fail("okänd enhet (finns inte i katalogen)", line, entry)
        if not isinstance(table, dict):
            raise src.fail("posten ska vara en tabell", line, entry)
        bad = sorted(set(table) - _FIELDS)
        if bad:
            raise src.fail(
                f"okänt fält {bad[0]!r} (tillåtna: {', '.join(sorted(_FIELDS))})",
                src.find_line(line, bad[0]),
                entry,
            )
        values: dict[str, str | None] = {}
        for key in ("email", "phone", "portal_group"):
            value = table.get(key)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise src.fail(
                    f"{key!r} ska vara en icke-tom text", src.find_line(line, key), entry
                )
            values[key] = value.strip() if isinstance(value, str) else None
        email = values["email"]
        if email is not None and not _EMAIL_RE.match(email):
            raise src.fail(f"ogiltig e-postadress {email!r}", src.find_line(line, "email"), entry)
        verified = table.get("verified", False)
        if not isinstance(verified, bool):
            raise src.fail(
                "'verified' ska vara true eller false", src.find_line(line, "verified"), entry
            )
        out[uid] = Channel(email, values["phone"], values["portal_group"], verified)
    return Channels(out, is_example, path)


def _header_line(src: SourceFile, uid: str) -> int | None:
    pattern = re.compile(rf'^\s*\[\s*units\s*\.\s*"?{re.escape(uid)}"?\s*\]')
    for i, ln in enumerate(src.lines):
        if pattern.match(ln):
            return i + 1
    return None


__all__ = ["EXAMPLE_CHANNELS", "Channel", "Channels", "load_channels"]
