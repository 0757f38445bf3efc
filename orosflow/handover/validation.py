"""Validation of a concern form: structure (pydantic) plus the domain rules of domain.md.

Every entry point (CLI, API, portal, the flow's re-validation) calls :func:`validate_form`, so a
rule is written once. Errors are ``{field, code, message}`` with Swedish messages; nothing is
stored unless the list is empty.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from models.form import PROTECTED_DETAILS, ConcernForm, birth_date_of, categories
from models.text import CODES as TEXT_CODES
from orosflow.core.clock import STOCKHOLM, utcnow
from orosflow.core.legal import age_guidance, age_rule
from routing import Router, get_router

STOCKHOLM_CITY = "0180"


@dataclass(frozen=True)
class FieldError:
    field: str
    code: str
    message: str


class FormInvalid(Exception):
    """Raised with every error found; the message itself names no personal data."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__(f"{len(errors)} fel i formuläret: " + ", ".join(e.code for e in errors))
        self.errors = errors

    def as_json(self) -> list[dict[str, str]]:
        return [asdict(e) for e in self.errors]


_PYDANTIC_MESSAGES: dict[str, str] = {
    "missing": "Uppgiften saknas.",
    "string_too_short": "Fältet får inte vara tomt.",
    "string_too_long": "Texten är för lång.",
    "too_short": "Minst {min_length} måste anges.",
    "too_long": "Högst {max_length} får anges.",
    "string_type": "Ange text.",
    "bool_type": "Ange ja eller nej (true/false).",
    "bool_parsing": "Ange ja eller nej (true/false).",
    "date_parsing": "Ange ett datum som ÅÅÅÅ-MM-DD.",
    "date_from_datetime_parsing": "Ange ett datum som ÅÅÅÅ-MM-DD.",
    "date_type": "Ange ett datum som ÅÅÅÅ-MM-DD.",
    "int_parsing": "Ange ett heltal.",
    "int_type": "Ange ett heltal.",
    "greater_than_equal": "Värdet är för litet.",
    "less_than_equal": "Värdet är för stort.",
    "extra_forbidden": "Innehåller ett okänt fält; ta bort det.",
    "model_type": "Fel format på uppgifterna.",
    "list_type": "Ange en lista.",
    "dict_type": "Fel format på uppgifterna.",
    "enum": "Ogiltigt val. Tillåtna värden: {expected}.",
    "literal_error": "Ogiltigt val. Tillåtna värden: {expected}.",
    "string_pattern_mismatch": "Fel format.",
    "value_error": "Ogiltigt värde.",
}

_FIELD_HINTS: dict[str, str] = {
    "municipality": "Ange kommunkoden med fyra siffror (SCB), t.ex. 0180 för Stockholm.",
    "staying_municipality": "Ange kommunkoden med fyra siffror (SCB).",
    "placed_by": "Ange kommunkoden med fyra siffror (SCB).",
    "assigned_municipality": "Ange kommunkoden med fyra siffror (SCB).",
    "arrival_municipality": "Ange kommunkoden med fyra siffror (SCB).",
    "phone": "Ange ett telefonnummer med siffror, t.ex. 08-123 456 78.",
    "email": "Ange en giltig e-postadress.",
}


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def translate_error(err: dict[str, Any]) -> FieldError:
    """Turn one pydantic error into a Swedish field error (never echoing the input value).

    An unknown key is named by its parent's path: the key itself may be anything a person
    typed (a name, a personnummer)."""
    code = err["type"]
    loc = tuple(err["loc"])
    if code == "extra_forbidden":
        loc = loc[:-1]
    field = _field_path(loc) or "body"
    last = str(loc[-1]) if loc else ""
    if code in _PYDANTIC_MESSAGES:
        ctx = {k: str(v).replace(" or ", " eller ") for k, v in (err.get("ctx") or {}).items()}
        message = _PYDANTIC_MESSAGES[code].format(**ctx)
        if code in {"string_pattern_mismatch", "value_error"} and last in _FIELD_HINTS:
            message = _FIELD_HINTS[last]
    elif code.endswith("_invalid") or code.endswith("_unknown") or code in TEXT_CODES:
        message = err["msg"]  # our own PydanticCustomError: already Swedish
    else:
        message = "Ogiltigt värde."
    return FieldError(field=field, code=code, message=message)


def today_in_sweden(now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(STOCKHOLM).date()


def birthday_in(birth: date, year: int) -> date:
    """The day in ``year`` on which a person born on ``birth`` turns a year older.

    Born on 29 February: in a common year the last day of February, 28 February, per 1 §
    lagen (1930:173) om beräkning av lagstadgad tid (source and caveats in data/age_rule.toml).
    """
    try:
        return birth.replace(year=year)
    except ValueError:  # 29 February in a common year
        if age_rule().leap_day_birthday == "march_1":
            return date(year, 3, 1)
        return date(year, 2, 28)


def age_on(birth: date, day: date) -> int:
    """Completed years on ``day`` (a birthday counts from its first moment)."""
    return day.year - birth.year - (day < birthday_in(birth, day.year))


def _municipality_rules(form: ConcernForm, router: Router) -> list[FieldError]:
    errors: list[FieldError] = []

    def check(path: str, code: str | None) -> None:
        if code is not None and not router.municipality_exists(code):
            errors.append(
                FieldError(
                    path,
                    "municipality_unknown",
                    "Kommunkoden finns inte i kommunregistret (290 kommuner).",
                )
            )

    check("clinic.municipality", form.clinic.municipality)
    for i, child in enumerate(form.children):
        p = f"children.{i}"
        for name in (
            "municipality",
            "staying_municipality",
            "placed_by",
            "assigned_municipality",
            "arrival_municipality",
        ):
            check(f"{p}.{name}", getattr(child, name))
        if child.district and not child.protected_identity:  # else refused as such below
            if child.municipality != STOCKHOLM_CITY:
                errors.append(
                    FieldError(
                        f"{p}.district",
                        "district_outside_stockholm",
                        "Stadsdelsområde anges bara för barn som bor i Stockholms stad (0180).",
                    )
                )
            elif router.resolve_district(child.district) is None:
                names = ", ".join(d.name for d in router.districts())
                errors.append(
                    FieldError(
                        f"{p}.district",
                        "district_unknown",
                        f"Okänt stadsdelsområde. Välj ett av: {names}.",
                    )
                )
        if child.placed_by and child.placed_by == child.municipality:
            errors.append(
                FieldError(
                    f"{p}.placed_by",
                    "placed_by_same",
                    "Placerande kommun är densamma som bostadskommunen; lämna fältet tomt "
                    "om barnet inte är placerat av en annan kommun.",
                )
            )
        if (child.assigned_municipality or child.arrival_municipality) and not child.unaccompanied:
            errors.append(
                FieldError(
                    f"{p}.unaccompanied",
                    "unaccompanied_missing",
                    "Anvisnings- eller ankomstkommun anges bara för ensamkommande barn; "
                    "markera att barnet är ensamkommande eller ta bort kommunen.",
                )
            )
    return errors


#: Why an address or district is refused for a child with protected identity (per field).
PROTECTED_DETAIL_MESSAGES = {
    "address": "Lämna inte adress för ett barn med skyddade personuppgifter – uppgiften "
    "lämnas per telefon.",
    "district": "Lämna inte stadsdelsområde för ett barn med skyddade personuppgifter – "
    "uppgiften lämnas per telefon.",
}


def _protected_identity_rules(form: ConcernForm) -> list[FieldError]:
    """Protected identity: refuse an address and a district rather than store them.

    The routine is to give them to social services by phone, so a misrouted report never
    carries them. (The web form drops them before validation; an API client is told.)"""
    errors: list[FieldError] = []
    for i, child in enumerate(form.children):
        if not child.protected_identity:
            continue
        for name in PROTECTED_DETAILS:
            if getattr(child, name):
                errors.append(
                    FieldError(
                        f"children.{i}.{name}",
                        "protected_identity_detail",
                        PROTECTED_DETAIL_MESSAGES[name],
                    )
                )
    return errors


def _child_identity_rules(form: ConcernForm, day: date) -> list[FieldError]:
    errors: list[FieldError] = []
    for i, child in enumerate(form.children):
        p = f"children.{i}"
        birth: date | None = None
        if child.personal_number:
            birth = birth_date_of(child.personal_number)
            if child.birth_date and child.birth_date != birth:
                errors.append(
                    FieldError(
                        f"{p}.birth_date",
                        "birth_date_mismatch",
                        "Födelsedatumet stämmer inte med personnumret. Ange bara det ena.",
                    )
                )
        elif child.birth_date:
            birth = child.birth_date
        else:
            errors.append(
                FieldError(
                    f"{p}.personal_number",
                    "identity_missing",
                    "Fyll i barnets personnummer eller samordningsnummer. Har barnet inget, "
                    "fyll i födelsedatum.",
                )
            )
        if birth is None:
            continue
        if birth > day:
            errors.append(
                FieldError(
                    f"{p}.personal_number" if child.personal_number else f"{p}.birth_date",
                    "birth_in_future",
                    "Födelsedatumet ligger efter dagens datum.",
                )
            )
        elif (age := age_on(birth, day)) >= age_rule().adult_age:
            errors.append(
                FieldError(
                    f"{p}.personal_number" if child.personal_number else f"{p}.birth_date",
                    "child_adult",
                    age_guidance(age),
                )
            )
    return errors


def _guardian_rules(form: ConcernForm) -> list[FieldError]:
    errors: list[FieldError] = []
    cats = categories()
    forbidding = [cats[c].label for c in form.concern.categories if cats[c].guardians_not_told]
    for i, guardian in enumerate(form.guardians):
        if guardian.informed and forbidding:
            errors.append(
                FieldError(
                    f"guardians.{i}.informed",
                    "guardian_must_not_be_informed",
                    "Vårdnadshavare ska inte informeras före anmälan när oron gäller "
                    f"{forbidding[0].lower()}: det kan utsätta barnet för fara. Kontakta "
                    "socialtjänsten först (ring), de bedömer när vårdnadshavarna informeras.",
                )
            )
        if not guardian.informed and not guardian.not_informed_reason:
            if forbidding:
                continue  # the reason is the category itself
            errors.append(
                FieldError(
                    f"guardians.{i}.not_informed_reason",
                    "not_informed_reason_missing",
                    "Fyll i varför vårdnadshavaren inte har informerats.",
                )
            )
    return errors


def _consultation_rules(form: ConcernForm, day: date) -> list[FieldError]:
    errors: list[FieldError] = []
    for i, c in enumerate(form.consultations):
        if c.kind == "anonymous_social_services" and c.date is None:
            errors.append(
                FieldError(
                    f"consultations.{i}.date",
                    "consultation_date_missing",
                    "Fyll i datum för den anonyma konsultationen med socialtjänsten.",
                )
            )
        if c.date and c.date > day:
            errors.append(
                FieldError(
                    f"consultations.{i}.date",
                    "consultation_in_future",
                    "Konsultationens datum ligger efter dagens datum.",
                )
            )
    return errors


#: How far back a report date may lie: the report is about what the counselor knows now, and
#: an old date was once used to let a 31-year-old pass the under-18 check.
REPORT_DATE_MAX_DAYS_BACK = 30


def _report_date_rules(report_date: date | None, today: date) -> list[FieldError]:
    if report_date is None:
        return []
    if report_date > today:
        return [
            FieldError("report_date", "report_date_future", "Datumet får inte ligga i framtiden.")
        ]
    if report_date < today - timedelta(days=REPORT_DATE_MAX_DAYS_BACK):
        return [
            FieldError(
                "report_date",
                "report_date_too_old",
                f"Anmälans datum får ligga högst {REPORT_DATE_MAX_DAYS_BACK} dagar bakåt i "
                "tiden. Ange dagens datum och skriv i texten när det du beskriver hände.",
            )
        ]
    return []


def validate_form(
    data: dict[str, Any] | ConcernForm,
    *,
    now: datetime | None = None,
    router: Router | None = None,
) -> ConcernForm:
    """Return the normalised form or raise :class:`FormInvalid` listing every problem."""
    try:
        form = data if isinstance(data, ConcernForm) else ConcernForm.model_validate(data)
    except ValidationError as exc:
        raise FormInvalid([translate_error(e) for e in exc.errors()]) from None
    today = today_in_sweden(now)
    day = form.report_date or today
    errors: list[FieldError] = _report_date_rules(form.report_date, today)
    # Under 18 on the later of the report date and the day of submission (``now``; the flow's
    # re-validation passes the stored submission time): a back-dated report date must not let
    # an adult pass (domain.md 7 says "on the report date"; the two differ by at most
    # REPORT_DATE_MAX_DAYS_BACK days, and in that window the stricter reading holds).
    errors += _child_identity_rules(form, max(day, today))
    errors += _protected_identity_rules(form)
    errors += _municipality_rules(form, router or get_router())
    errors += _guardian_rules(form)
    errors += _consultation_rules(form, day)
    if errors:
        raise FormInvalid(errors)
    return form.model_copy(update={"report_date": day})
