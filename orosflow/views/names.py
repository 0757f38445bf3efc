"""Names instead of internal ids, for the pages counselors and intake officers read.

The data keeps ids (``sdf-norrmalm``, ``sj-0180``, ``intake-0182``, ``user:sara``) and rule
codes (``R-ACUTE-PHONE``, ``L-DECLINE-REROUTE``): programs, the API and the auditor need them.
A counselor or an intake officer reads names: the unit's name from the routing directory, a
person's display name from their account, an explanation without its list of rule codes.
This is the one place that turns one into the other; the portal registers each function as a
Jinja filter (``unit_name``, ``district_name``, ``actor_name``, ``without_rule_codes``). The
auditor's pages do not use ``without_rule_codes``: rule codes stay in their view.
"""

from __future__ import annotations

import re

from sqlmodel import Session, select

from models.accounts import UserAccount
from orosflow.core.db import session_scope
from routing import UnknownCodeError, get_router

#: Shown for an actor that is the system itself (sweep, retention, trigger).
SYSTEM_NAME = "Orosflow (automatiskt)"
#: A rule code as the routing rules and the lifecycle write them.
RULE_CODE = re.compile(r"\b[RL]-[A-Z0-9]+(?:-[A-Z0-9]+)*\b")
#: The closing sentence of an explanation that lists the applied rules.
_RULES_SENTENCE = re.compile(r"\s*Tillämpade? regl?(?:er|el)?:[^.]*\.?\s*$")
_EMPTY_PARENS = re.compile(r"\s*\(\s*[,;]?\s*\)")


def unit_name(unit_id: str | None) -> str:
    """The unit's name from the routing directory; a neutral text for an unknown id."""
    if not unit_id:
        return "–"
    try:
        return get_router().unit(unit_id).name
    except UnknownCodeError:
        return "okänd enhet"


def district_name(value: str | None) -> str:
    """A Stockholm district area's name ("Södermalm") for the id or name the form stored."""
    if not value:
        return "–"
    district = get_router().resolve_district(value)
    return district.name if district is not None else "okänt stadsdelsområde"


def actor_name(actor: str | None, s: Session | None = None) -> str:
    """Who did something, in words: an account's display name for ``user:NAME``, the system
    for ``system:…``, and the name part of any other ``kind:name`` (e.g. the CLI's ``--by``).
    ``s``: an open session to look the account up in (else a short one of its own)."""
    if not actor:
        return "–"
    kind, sep, name = actor.partition(":")
    if not sep:
        return actor
    if kind == "system":
        return SYSTEM_NAME
    if kind == "user":
        query = select(UserAccount.display_name).where(UserAccount.username == name)
        if s is not None:
            return s.exec(query).first() or name
        with session_scope() as own:
            return own.exec(query).first() or name
    return name or kind


def without_rule_codes(text: str | None) -> str:
    """An explanation without its rule codes: the closing "Tillämpade regler: …" sentence is
    dropped and any code left inside the text is removed (the auditor's view keeps them)."""
    if not text:
        return ""
    out = _RULES_SENTENCE.sub("", text)
    out = RULE_CODE.sub("", out)
    out = _EMPTY_PARENS.sub("", out)
    return re.sub(r"\s{2,}", " ", out).strip()
