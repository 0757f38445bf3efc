"""The one rule for free text typed by people: what characters a stored text may contain.

Text from the form ends up in mail headers, PDFs, print views, CSV exports and other
systems. Control characters there break headers (a CR/LF in a clinic name made the
notification's header invalid and left a handover stuck), bidi overrides make a text read
differently from what is stored, and a value of zero-width characters only looks filled in
but is empty. So every free-text field goes through :func:`text_problem`:

- C0 and C1 control characters are refused; long texts (``multiline``) may hold tab and line
  breaks (CR LF is turned into LF), single-line fields none, not even U+2028/U+2029;
- bidi embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069) are refused. The
  marks U+200E/U+200F/U+061C are allowed: they cannot reorder strong characters, and text
  pasted from Arabic or Hebrew sources carries them;
- lone surrogates are refused (they cannot be stored as UTF-8);
- a value made of format characters (zero-width space, joiners, word joiner, BOM …) and
  whitespace only, with at least one format character, is refused as invisible.

Messages are Swedish and name the character's code point, never the value itself.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from pydantic_core import PydanticCustomError

BIDI_CONTROLS = frozenset(chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)])
MULTILINE_ALLOWED = frozenset("\t\n\u2028\u2029")
#: Error codes this module raises (their messages are already Swedish).
CODES = frozenset({"text_control_character", "text_bidi_control", "text_invisible"})


@dataclass(frozen=True)
class MultiLine:
    """Marks a text field as a long text: tab and line breaks are allowed in it."""


MULTILINE = MultiLine()


@dataclass(frozen=True)
class TextProblem:
    code: str
    message: str


def _codepoint(ch: str) -> str:
    return f"U+{ord(ch):04X}"


def text_problem(value: str, *, multiline: bool = False) -> TextProblem | None:
    """What is wrong with ``value`` as free text, or None when it may be stored."""
    invisible_only = True
    has_format = False
    for ch in value:
        if ch in BIDI_CONTROLS:
            return TextProblem(
                "text_bidi_control",
                f"Texten innehåller ett dolt tecken som vänder textens riktning ({_codepoint(ch)})."
                " Ta bort det och skriv texten igen.",
            )
        category = unicodedata.category(ch)
        if category in ("Cc", "Cs", "Zl", "Zp"):
            if multiline and ch in MULTILINE_ALLOWED:
                continue
            where = (
                "Radbrytningar och tabbar är tillåtna men inga andra styrtecken."
                if multiline
                else "Skriv uppgiften på en rad, utan radbrytningar, tabbar eller andra styrtecken."
            )
            return TextProblem(
                "text_control_character",
                f"Texten innehåller ett otillåtet styrtecken ({_codepoint(ch)}). {where}",
            )
        if category == "Cf":
            has_format = True
        elif not ch.isspace():
            invisible_only = False
    if invisible_only and has_format:
        return TextProblem(
            "text_invisible",
            "Fältet innehåller bara osynliga tecken (t.ex. nollbreddsmellanslag). Skriv en "
            "synlig text eller lämna fältet tomt.",
        )
    return None


def clean_text(value: Any, *, multiline: bool = False) -> Any:
    """Pydantic (before) validator body: check one value, or each string in a list.

    Raises ``PydanticCustomError`` with the problem's code; CR LF in a long text becomes LF.
    Non-strings pass through untouched (the field's own type check answers for them).
    """
    if isinstance(value, str):
        if multiline:
            value = value.replace("\r\n", "\n")
        problem = text_problem(value, multiline=multiline)
        if problem is not None:
            raise PydanticCustomError(problem.code, problem.message)
        return value
    if isinstance(value, list | tuple):
        return [clean_text(v, multiline=multiline) for v in value]
    return value
