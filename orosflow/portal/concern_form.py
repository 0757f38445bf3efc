"""The concern form as an HTML form: posted fields to the nested dict ``submit`` takes and back.

The page keeps the counselor's raw input (strings, exactly as typed) in a nested dict shaped
like the form, so a re-render after an error or after adding/removing a row shows everything
again; :func:`to_submission` turns that raw state into the dict ``validate_form`` expects.
Field ids are the error paths with dots turned into dashes (``children.0.name`` →
``children-0-name``); :func:`page_errors` maps every ``FieldError`` — also those naming a list
or a whole section — to a field that exists on the page and to a Swedish label.
"""

from __future__ import annotations

import copy
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from markupsafe import Markup

from models.form import (
    MAX_CONSULTATIONS,
    MAX_OTHER_CHILDREN,
    PROTECTED_DETAILS,
    Category,
    categories,
)
from orosflow.handover.validation import FieldError
from orosflow.identity.accounts import Principal
from routing import get_router

# --- the form's shape ----------------------------------------------------------------------

CHILD_TEXT = (
    "name",
    "personal_number",
    "birth_date",
    "address",
    "municipality",
    "district",
    "staying_municipality",
    "staying_description",
    "school",
    "interpreter_language",
    "placed_by",
    "assigned_municipality",
    "arrival_municipality",
)
CHILD_FLAGS = ("protected_identity", "unaccompanied")
#: Child fields holding a municipality code; a typed municipality name is turned into its code.
CODE_FIELDS = (
    "municipality",
    "staying_municipality",
    "placed_by",
    "assigned_municipality",
    "arrival_municipality",
)
#: Text fields of each repeated row (children also have the two check boxes in CHILD_FLAGS).
ROW_FIELDS: dict[str, tuple[str, ...]] = {
    "children": CHILD_TEXT,
    "other_children": ("name", "age"),
    "guardians": ("name", "relation", "phone", "informed", "not_informed_reason"),
    "consultations": ("kind", "date", "note"),
}
#: Most rows the page offers (children and guardians: the form model's own limits).
ROW_LIMITS = {
    "children": 12,
    "other_children": MAX_OTHER_CHILDREN,
    "guardians": 6,
    "consultations": MAX_CONSULTATIONS,
}
#: Rows that may be left out: a completely blank one is dropped when the form is sent.
OPTIONAL_ROWS = ("other_children", "guardians", "consultations")

YES, NO = "yes", "no"
CONSULTATION_KINDS = {
    "colleague": "Kollega",
    "manager": "Chef",
    "anonymous_social_services": "Socialtjänsten (anonym konsultation)",
}
CATEGORY_GROUPS = {
    "vald": "Våld och övergrepp",
    "vardnadshavare": "Vårdnadshavarnas förmåga och situationen i hemmet",
    "barnet": "Barnets eget beteende eller situation",
    "ovrigt": "Övrigt",
}

# --- labels (the page and the error summary use the same words) ---------------------------

ROW_LABELS: dict[str, dict[str, str]] = {
    "children": {
        "name": "Namn",
        "personal_number": "Personnummer eller samordningsnummer",
        "birth_date": "Födelsedatum",
        "address": "Adress",
        "municipality": "Bostadskommun",
        "district": "Stadsdelsområde (bara Stockholms stad)",
        "staying_municipality": "Vistelsekommun",
        "staying_description": "Var är barnet just nu?",
        "school": "Skola eller förskola",
        "interpreter_language": "Tolk behövs, språk",
        "protected_identity": "Barnet har skyddade personuppgifter",
        "placed_by": "Placerat av kommun",
        "unaccompanied": "Ensamkommande barn",
        "assigned_municipality": "Anvisningskommun",
        "arrival_municipality": "Ankomstkommun",
    },
    "other_children": {"name": "Namn", "age": "Ålder"},
    "guardians": {
        "name": "Namn",
        "relation": "Relation till barnet",
        "phone": "Telefon",
        "informed": "Har vårdnadshavaren informerats om anmälan?",
        "not_informed_reason": "Varför har vårdnadshavaren inte informerats?",
    },
    "consultations": {"kind": "Vem har du rådgjort med?", "date": "Datum", "note": "Anteckning"},
}
ROW_TITLES = {
    "children": "Barn {n}",
    "other_children": "Annat barn i hemmet {n}",
    "guardians": "Vårdnadshavare {n}",
    "consultations": "Konsultation {n}",
}
SECTION_LABELS = {
    "children": "Barn",
    "other_children": "Andra barn i hemmet",
    "guardians": "Vårdnadshavare",
    "consultations": "Konsultationer",
    "concern": "Oron",
    "reporter": "Anmälare",
    "clinic": "Mottagning",
    "": "Formuläret",
}
LABELS: dict[str, str] = {
    "concern.categories": "Vad gäller oron?",
    "concern.observations": "Vad har du sett och hört?",
    "concern.child_said": "Vad har barnet sagt?",
    "urgency": "Hur brådskande är det?",
    "child_told": "Vet barnet om att du anmäler?",
    "child_view": "Barnets egen syn",
    "reporter.name": "Ditt namn",
    "reporter.title": "Din titel",
    "reporter.phone": "Ditt telefonnummer",
    "reporter.email": "Din e-postadress",
    "clinic.name": "Mottagningens namn",
    "clinic.municipality": "Mottagningens kommun",
    "report_date": "Anmälans datum",
}
#: Radio groups link (from the error summary) to their first option.
RADIO_FIRST = {"urgency": "acute", "child_told": YES}

# --- raw state ------------------------------------------------------------------------------

Raw = dict[str, Any]


def blank_row(section: str) -> dict[str, Any]:
    row: dict[str, Any] = {name: "" for name in ROW_FIELDS[section]}
    if section == "children":
        row.update({flag: False for flag in CHILD_FLAGS})
    return row


def initial(principal: Principal, remembered: dict[str, str] | None = None) -> Raw:
    """An empty form: one child, one guardian, the reporter prefilled from the account, and the
    clinic details the account remembers from the counselor's last report (``remembered``:
    form path → value, see ``accounts.clinic_details``)."""
    kept = remembered or {}
    return {
        "children": [blank_row("children")],
        "other_children": [],
        "guardians": [blank_row("guardians")],
        "concern": {"categories": [], "observations": "", "child_said": ""},
        "urgency": "",
        "child_told": "",
        "child_view": "",
        "consultations": [],
        "reporter": {
            "name": principal.display_name,
            "title": kept.get("reporter.title", "Kurator"),
            "phone": kept.get("reporter.phone", ""),
            "email": principal.email or "",
        },
        "clinic": {
            "name": kept.get("clinic.name", ""),
            "municipality": kept.get("clinic.municipality", ""),
        },
        "report_date": "",
        "submission_token": new_submission_token(),
    }


def remembered_details(data: dict[str, Any]) -> dict[str, str]:
    """The clinic details of a form that was just stored (``to_submission``'s dict), to keep
    with the counselor's account for the next form."""
    return {
        "reporter.title": str(data["reporter"].get("title") or "").strip(),
        "reporter.phone": str(data["reporter"].get("phone") or "").strip(),
        "clinic.name": str(data["clinic"].get("name") or "").strip(),
        "clinic.municipality": str(data["clinic"].get("municipality") or "").strip(),
    }


def new_submission_token() -> str:
    """The form's one-time token: sending the same form twice (double click, resend after a
    lost answer) stores it once and shows the first receipt."""
    return secrets.token_urlsafe(18)


def parse_post(items: Iterable[tuple[str, Any]], principal: Principal) -> Raw:
    """The raw state from posted ``(name, value)`` pairs (field names are the field ids).

    The reporter's e-mail always comes from the account, whatever was posted: "my reports"
    finds reports by it.
    """
    values: dict[str, list[str]] = {}
    for key, value in items:
        if isinstance(value, str):  # file uploads are not part of this form
            values.setdefault(key, []).append(value)

    def one(key: str) -> str:
        got = values.get(key)
        return got[0] if got else ""

    def rows(section: str) -> list[dict[str, Any]]:
        try:
            count = int(one(f"{section}-count") or 0)
        except ValueError:
            count = 0
        low = 1 if section == "children" else 0
        count = max(low, min(count, ROW_LIMITS[section]))
        out = []
        for i in range(count):
            row: dict[str, Any] = {f: one(f"{section}-{i}-{f}") for f in ROW_FIELDS[section]}
            if section == "children":
                row.update({f: one(f"children-{i}-{f}") == "true" for f in CHILD_FLAGS})
                drop_protected_details(row)
            out.append(row)
        return out

    return {
        "children": rows("children"),
        "other_children": rows("other_children"),
        "guardians": rows("guardians"),
        "concern": {
            # Unknown ids are kept, so validation names them instead of silently dropping them.
            "categories": list(dict.fromkeys(values.get("concern-categories", []))),
            "observations": one("concern-observations"),
            "child_said": one("concern-child_said"),
        },
        "urgency": one("urgency"),
        "child_told": one("child_told"),
        "child_view": one("child_view"),
        "consultations": rows("consultations"),
        "reporter": {
            "name": one("reporter-name"),
            "title": one("reporter-title"),
            "phone": one("reporter-phone"),
            "email": principal.email or "",
        },
        "clinic": {"name": one("clinic-name"), "municipality": one("clinic-municipality")},
        "report_date": one("report_date"),
        "submission_token": one("submission_token") or new_submission_token(),
    }


def drop_protected_details(row: dict[str, Any]) -> None:
    """A child marked with protected identity keeps no address and no district, even one typed
    before the box was ticked: they are given by phone. Dropped here, before anything is
    validated, stored or shown again, so the counselor is not told off for a hidden field."""
    if row.get("protected_identity"):
        row.update(dict.fromkeys(PROTECTED_DETAILS, ""))


def _is_blank(row: dict[str, Any]) -> bool:
    return not any(str(v).strip() for v in row.values() if not isinstance(v, bool))


def prune_blank_rows(raw: Raw) -> Raw:
    """Drop completely blank optional rows (a guardian row added but never filled in)."""
    out = copy.deepcopy(raw)
    for section in OPTIONAL_ROWS:
        out[section] = [row for row in out[section] if not _is_blank(row)]
    return out


# --- add / remove rows -----------------------------------------------------------------------


@dataclass(frozen=True)
class ActionResult:
    raw: Raw
    focus: str | None  # id of the field to give focus to (autofocus) in the re-rendered page


_SINGULAR = {
    "child": "children",
    "other_child": "other_children",
    "guardian": "guardians",
    "consultation": "consultations",
}


def add_button_id(section: str) -> str:
    return "add-" + next(k for k, v in _SINGULAR.items() if v == section).replace("_", "-")


def update_button_id(index: int) -> str:
    return f"update-child-{index}"


def apply_action(raw: Raw, action: str) -> ActionResult | None:
    """Add or remove a row (``add_child``, ``remove_guardian:1`` …) or show a child again after
    its protected-identity box changed (``update_child:0``); None if not such an action.

    Nothing is saved and nothing is validated: the page is shown again with all input kept.
    """
    verb, _, rest = action.partition("_")
    name, _, index_text = rest.partition(":")
    section = _SINGULAR.get(name)
    if section == "children" and verb == "update":
        # The protected-identity box was (un)ticked: show the child again with the address
        # and district fields, or the explanation instead of them (parse_post dropped them).
        out = copy.deepcopy(raw)
        index_ok = index_text.isascii() and index_text.isdigit()
        if index_ok and int(index_text) < len(out["children"]):
            return ActionResult(out, update_button_id(int(index_text)))
        return ActionResult(out, None)
    if section is None or verb not in ("add", "remove"):
        return None
    out = copy.deepcopy(raw)
    rows: list[dict[str, Any]] = out[section]
    if verb == "add":
        if len(rows) >= ROW_LIMITS[section]:
            return ActionResult(out, add_button_id(section))
        rows.append(blank_row(section))
        first = ROW_FIELDS[section][0]
        return ActionResult(out, f"{section}-{len(rows) - 1}-{first}")
    try:
        index = int(index_text)
    except ValueError:
        return ActionResult(out, None)
    minimum = 1 if section == "children" else 0
    if 0 <= index < len(rows) and len(rows) > minimum:
        rows.pop(index)
    return ActionResult(out, add_button_id(section))


# --- raw state → the dict submit() takes ----------------------------------------------------


def _opt(value: str) -> str | None:
    value = value.strip()
    return value or None


def municipality_code(value: str) -> str | None:
    """A 4-digit code as is; a municipality's name (any case) becomes its SCB code."""
    value = value.strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():  # other Unicode digits: validation refuses them
        return value
    wanted = value.casefold().removesuffix(" kommun")
    for m in get_router().municipalities():
        if m.name.casefold() == wanted:
            return m.code
    return value  # validation explains the expected format


def _yes_no(value: str) -> bool | None:
    return {YES: True, NO: False}.get(value.strip())


def _set_if(target: dict[str, Any], key: str, value: Any) -> None:
    """Leave a required choice out when it was not made: validation then says it is missing."""
    if value is not None:
        target[key] = value


def to_submission(raw: Raw) -> dict[str, Any]:
    """The nested dict for ``validate_form``/``submit``: blanks become None, yes/no booleans."""
    children = []
    for row in raw["children"]:
        child: dict[str, Any] = {"name": row["name"]}
        for name in CHILD_TEXT[1:]:
            child[name] = municipality_code(row[name]) if name in CODE_FIELDS else _opt(row[name])
        child.update({flag: bool(row[flag]) for flag in CHILD_FLAGS})
        children.append(child)
    others = []
    for row in raw["other_children"]:
        age = row["age"].strip()
        # ASCII digits only: int() would silently read Arabic-Indic and other digits.
        number = age.isascii() and age.isdigit()
        others.append({"name": row["name"], "age": int(age) if number else (age or None)})
    guardians = []
    for row in raw["guardians"]:
        g: dict[str, Any] = {
            "name": row["name"],
            "relation": row["relation"],
            "phone": _opt(row["phone"]),
            "not_informed_reason": _opt(row["not_informed_reason"]),
        }
        _set_if(g, "informed", _yes_no(row["informed"]))
        guardians.append(g)
    consultations = []
    for row in raw["consultations"]:
        c: dict[str, Any] = {"date": _opt(row["date"]), "note": _opt(row["note"])}
        _set_if(c, "kind", _opt(row["kind"]))
        consultations.append(c)
    data: dict[str, Any] = {
        "children": children,
        "other_children": others,
        "guardians": guardians,
        "concern": {
            "categories": list(raw["concern"]["categories"]),
            "observations": raw["concern"]["observations"],
            "child_said": _opt(raw["concern"]["child_said"]),
        },
        "child_view": _opt(raw["child_view"]),
        "consultations": consultations,
        "reporter": dict(raw["reporter"]),
        "clinic": {
            "name": raw["clinic"]["name"],
            "municipality": municipality_code(raw["clinic"]["municipality"]) or "",
        },
        "report_date": _opt(raw["report_date"]),
    }
    _set_if(data, "urgency", _opt(raw["urgency"]))
    _set_if(data, "child_told", _yes_no(raw["child_told"]))
    return data


# --- errors → fields on the page -------------------------------------------------------------


@dataclass(frozen=True)
class PageError:
    """One error as the page shows it: ``field`` is the id of the element to link to."""

    field: str
    label: str
    message: str
    slot: str  # the dotted path under which the page shows the message inline


def _dash(path: str) -> str:
    return path.replace(".", "-")


def _row_slot(section: str, parts: list[str], raw: Raw) -> tuple[str, str, str]:
    """(slot, anchor id, label) for an error inside or about a repeated section."""
    rows = raw.get(section) or []
    first = ROW_FIELDS[section][0]
    if len(parts) >= 2 and parts[1].isdigit() and int(parts[1]) < len(rows):
        index = int(parts[1])
        title = ROW_TITLES[section].format(n=index + 1)
        base = f"{section}.{index}"
        if len(parts) >= 3 and parts[2] in ROW_LABELS[section]:
            leaf = parts[2]
            slot = f"{base}.{leaf}"
            anchor = _dash(slot)
            if section == "guardians" and leaf == "informed":
                anchor += f"-{YES}"
            return slot, anchor, f"{title} – {ROW_LABELS[section][leaf]}"
        return base, _dash(f"{base}.{first}"), title
    if rows:
        return section, _dash(f"{section}.0.{first}"), SECTION_LABELS[section]
    return section, add_button_id(section), SECTION_LABELS[section]


def _locate(path: str, raw: Raw) -> tuple[str, str, str]:
    """(slot, anchor id, label) of an error path; unknown paths fall back to their section."""
    parts = path.split(".") if path else []
    if parts and parts[0] in ROW_FIELDS:
        return _row_slot(parts[0], parts, raw)
    if path.startswith("concern.categories"):
        first = next(iter(categories()))
        return "concern.categories", f"concern-categories-{first}", LABELS["concern.categories"]
    for length in range(len(parts), 0, -1):
        candidate = ".".join(parts[:length])
        if candidate in LABELS:
            anchor = _dash(candidate)
            if candidate in RADIO_FIRST:
                anchor += f"-{RADIO_FIRST[candidate]}"
            return candidate, anchor, LABELS[candidate]
    section = parts[0] if parts else ""
    first_field = {
        "concern": "concern.observations",
        "reporter": "reporter.name",
        "clinic": "clinic.name",
    }.get(section, "children.0.name")
    return section, _dash(first_field), SECTION_LABELS.get(section, SECTION_LABELS[""])


#: The page's words for a required field left blank: "Fyll i …" for what is typed, "Välj …"
#: for what is chosen (the path without row numbers). The JSON API keeps the validator's words.
BLANK_MESSAGES: dict[str, str] = {
    "children.name": "Fyll i barnets namn.",
    "other_children.name": "Fyll i barnets namn.",
    "guardians.name": "Fyll i vårdnadshavarens namn.",
    "guardians.relation": "Fyll i relationen till barnet.",
    "guardians.informed": "Välj ja eller nej.",
    "consultations.kind": "Välj vem du har rådgjort med.",
    "concern.categories": "Välj minst en kategori.",
    "concern.observations": "Fyll i vad du har sett och hört.",
    "urgency": "Välj Akut eller Inte akut.",
    "child_told": "Välj ja eller nej.",
    "reporter.name": "Fyll i ditt namn.",
    "reporter.title": "Fyll i din titel.",
    "reporter.phone": "Fyll i ditt telefonnummer.",
    "clinic.name": "Fyll i mottagningens namn.",
    "clinic.municipality": "Välj mottagningens kommun i listan.",
}
_BLANK_CODES = {"missing", "string_too_short", "too_short"}
#: Chosen from a list on the page: a format message ("fyra siffror") would not match it.
_CHOSEN = {"clinic.municipality": "Välj mottagningens kommun i listan."}


def _raw_value(raw: Raw, path: str) -> Any:
    node: Any = raw
    for part in path.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return None
    return node


#: The 18+ refusal on the page: two sentences; the full guidance is behind AGE_GUIDANCE_LINK.
ADULT_SHORT = (
    "Personen har fyllt 18 år, så formuläret tar inte emot en orosanmälan. Hjälp personen att "
    "själv, med samtycke, kontakta socialtjänsten."
)
AGE_GUIDANCE_LINK = Markup(' <a href="#age-guidance">Mer om unga vuxna och samtycke</a>')


def page_message(err: FieldError, raw: Raw) -> str:
    """The message the page shows: one vocabulary for blank fields and for list choices."""
    if err.code == "child_adult":
        return ADULT_SHORT
    generic = re.sub(r"\.\d+(?=\.|$)", "", err.field)
    if generic in _CHOSEN:
        return _CHOSEN[generic]
    value = _raw_value(raw, err.field)
    blank = err.code in _BLANK_CODES or (isinstance(value, str) and not value.strip())
    if blank and generic in BLANK_MESSAGES:
        return BLANK_MESSAGES[generic]
    return err.message


def page_errors(errors: Iterable[FieldError], raw: Raw) -> tuple[list[PageError], dict[str, str]]:
    """Errors for the summary (in order) and the inline message per slot (joined if several)."""
    out: list[PageError] = []
    by_slot: dict[str, str] = {}
    adult_slots: set[str] = set()
    for err in errors:
        slot, anchor, label = _locate(err.field, raw)
        err = FieldError(err.field, err.code, page_message(err, raw))
        out.append(PageError(field=anchor, label=label, message=err.message, slot=slot))
        by_slot[slot] = f"{by_slot[slot]} {err.message}" if slot in by_slot else err.message
        if err.code == "child_adult":
            adult_slots.add(slot)
    for slot in adult_slots:  # inline only: the summary's entries are links already
        by_slot[slot] = Markup.escape(by_slot[slot]) + AGE_GUIDANCE_LINK
    return out, by_slot


# --- choices for the template ------------------------------------------------------------------


def category_groups() -> list[tuple[str, list[Category]]]:
    """Categories grouped by their ``group`` (in file order), with the group's Swedish title."""
    cats = list(categories().values())
    return [
        (CATEGORY_GROUPS.get(group, group), list(items))
        for group, items in groupby(cats, key=lambda c: c.group)
    ]


def guardians_not_told_labels() -> list[str]:
    return [c.label for c in categories().values() if c.guardians_not_told]


def municipality_groups() -> list[tuple[str, list[tuple[str, str]]]]:
    """All 290 municipalities as ``(county, [(code, name)])``, counties in SCB order."""
    ms = sorted(get_router().municipalities(), key=lambda m: (m.county_code, m.name))
    return [
        (county, [(m.code, m.name) for m in items])
        for county, items in groupby(ms, key=lambda m: m.county_name)
    ]


def districts() -> list[tuple[str, str, str]]:
    """Stockholm city's district areas as ``(id, name, help text)``."""
    return [(d.id, d.name, d.help_text) for d in get_router().districts()]
