"""Reason codes for erasing one report before its retention ends (``orosflow reports erase``).

Its own module so the command line can show them in its help without loading the database."""

from __future__ import annotations

#: Why a single report is erased before its retention ends (``orosflow reports erase``): the
#: code is what the audit trail keeps; the Swedish text is the command's help.
ERASE_REASONS: dict[str, str] = {
    "beslut": "beslut om radering (t.ex. en beviljad begäran om radering eller ett "
    "myndighetsbeslut)",
    "felregistrerad": "lämnades in av misstag eller gäller fel barn",
    "dubblett": "samma oro är redan anmäld i en annan anmälan",
}
