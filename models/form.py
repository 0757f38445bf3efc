"""The concern form (orosanmälan) as counselors submit it, before anything is stored.

Structure and single-field formats are checked here; rules that need the report date or the
municipal directory live in ``orosflow.handover.validation`` so that every entry point
applies them the same way. Custom errors carry a stable code and a Swedish message for the
counselor.
"""

from __future__ import annotations

import re
import tomllib
from datetime import date
from datetime import date as Date  # a field below is named "date"
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from personnummer import personnummer
from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from models.text import MULTILINE, clean_text

CATEGORIES_FILE = Path(__file__).parent / "data" / "categories.toml"
ASCII_PERSONAL_NUMBER = re.compile(r"[0-9]{6}(?:[0-9]{2})?[-+]?[0-9]{4}", re.ASCII)
#: Most other children in the home (as many as the web form offers rows for): a household
#: list, not a register; 5,000 entries were once accepted.
MAX_OTHER_CHILDREN = 20
#: Most consultations recorded with one report (the web form offers 10 rows).
MAX_CONSULTATIONS = 10
#: A child's fields that are never taken, stored or shown when the child has protected
#: identity (domain.md 3.3): the routine is to give them to social services by phone, so a
#: misrouted report cannot carry them.
PROTECTED_DETAILS = ("address", "district")
#: Most category entries in one list (14 categories exist; room to grow, none to abuse).
MAX_CATEGORIES = 20

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LongText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20000), MULTILINE
]
OptText = Annotated[str | None, StringConstraints(strip_whitespace=True, max_length=2000)]
OptLongText = Annotated[
    str | None, StringConstraints(strip_whitespace=True, max_length=2000), MULTILINE
]
#: ``[0-9]``, not ``\d``: a regex ``\d`` also matches Arabic-Indic and other Unicode digits.
MunicipalityCode = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9]{4}$")]
Phone = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9][0-9 \-()]{4,24}$")
]


class Category(BaseModel):
    id: str
    group: str
    label: str
    guardians_not_told: bool


@lru_cache
def categories() -> dict[str, Category]:
    """Concern categories from the data file, keyed by id."""
    raw = tomllib.loads(CATEGORIES_FILE.read_text(encoding="utf-8"))
    items = [Category(**c) for c in raw["category"]]
    return {c.id: c for c in items}


class Strict(BaseModel):
    """Base of every part of the form: unknown fields refused, and the one free-text rule
    (``models.text``) applied to every string field, present and future, before anything else
    looks at it. Fields marked ``MULTILINE`` may hold tabs and line breaks."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _free_text(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        multiline = field is not None and MULTILINE in field.metadata
        return clean_text(value, multiline=multiline)


class Urgency(StrEnum):
    ACUTE = "acute"
    NOT_ACUTE = "not_acute"


def normalise_personal_number(value: str) -> str:
    """Return the 12-digit form (YYYYMMDDNNNC) of a personnummer or samordningsnummer.

    Checksum and date come from the maintained ``personnummer`` library; a 10-digit number gets
    its century from the separator the way Skatteverket defines it (``+`` means 100 or older).
    """
    compact = value.strip().replace(" ", "")
    invalid = PydanticCustomError(
        "personal_number_invalid",
        "Personnumret eller samordningsnumret är inte giltigt. Kontrollera siffrorna "
        "(10 eller 12 siffror, t.ex. ÅÅMMDD-NNNN) och att datumet finns.",
    )
    if not ASCII_PERSONAL_NUMBER.fullmatch(compact):
        # Only 0-9 (and one - or +): the library would parse Arabic-Indic or other Unicode
        # digits and the number would be stored as typed, unfindable and unroutable.
        if any(ch.isdigit() and not ch.isascii() for ch in compact):
            raise PydanticCustomError(
                "personal_number_invalid",
                "Personnumret eller samordningsnumret är inte giltigt: skriv det med siffrorna "
                "0–9 (10 eller 12 siffror, t.ex. ÅÅMMDD-NNNN).",
            )
        raise invalid
    if "+" in compact and len(compact) == 13:
        # "+" says "100 or older" and only has a meaning with a 2-digit year; the library
        # silently drops it when the 4-digit year already states the century (a 1912 birth
        # typed as 20120315+1236 was read as a 14-year-old).
        raise PydanticCustomError(
            "personal_number_separator_invalid",
            "Personnumret är motsägelsefullt: plustecknet betyder att personen är 100 år eller "
            "äldre och används bara med tvåsiffrigt årtal. Med fyrsiffrigt årtal, skriv "
            "ÅÅÅÅMMDD-NNNN eller ÅÅÅÅMMDDNNNN.",
        )
    try:
        parsed = personnummer.parse(compact)
    except personnummer.PersonnummerException:
        raise invalid from None
    return parsed.format(long_format=True)


def birth_date_of(personal_number: str) -> date:
    """Birth date encoded in a normalised personnummer or samordningsnummer (day + 60)."""
    year, month, day = (
        int(personal_number[:4]),
        int(personal_number[4:6]),
        int(personal_number[6:8]),
    )
    return date(year, month, day - 60 if day > 60 else day)


class Child(Strict):
    name: Text
    personal_number: str | None = Field(
        default=None, description="Personnummer or samordningsnummer, 10 or 12 digits."
    )
    birth_date: date | None = Field(
        default=None, description="Only when the child has no personnummer/samordningsnummer."
    )
    address: OptText = None
    municipality: MunicipalityCode | None = Field(
        default=None, description="SCB code of the municipality of residence; null if unknown."
    )
    district: str | None = Field(
        default=None, description="Stockholm city district area (id or name), for 0180 only."
    )
    staying_municipality: MunicipalityCode | None = Field(
        default=None, description="SCB code of where the child is staying now."
    )
    staying_description: OptText = None
    school: OptText = None
    interpreter_language: OptText = None
    protected_identity: bool = False
    placed_by: MunicipalityCode | None = Field(
        default=None, description="SCB code of the municipality that placed the child (HVB etc.)."
    )
    unaccompanied: bool = False
    assigned_municipality: MunicipalityCode | None = None
    arrival_municipality: MunicipalityCode | None = None

    @field_validator("personal_number", mode="before")
    @classmethod
    def _personal_number(cls, value: object) -> object:
        value = clean_text(value)  # the free-text rule first, as for every other field
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str):
            raise PydanticCustomError(
                "personal_number_invalid", "Personnumret ska anges som text, t.ex. ÅÅMMDD-NNNN."
            )
        return normalise_personal_number(value)

    def without_protected_details(self) -> Child:
        """The child as it may be stored or shown: with protected identity, no address and
        no district (also for a report stored before they were refused)."""
        if not self.protected_identity:
            return self
        return self.model_copy(update=dict.fromkeys(PROTECTED_DETAILS))


class OtherChild(Strict):
    name: Text
    age: int | None = Field(default=None, ge=0, le=25)


class Guardian(Strict):
    name: Text
    phone: Phone | None = None
    relation: Text
    informed: bool
    not_informed_reason: OptLongText = None


class Concern(Strict):
    categories: list[str] = Field(min_length=1, max_length=MAX_CATEGORIES)
    observations: LongText
    child_said: Annotated[
        str | None, StringConstraints(strip_whitespace=True, max_length=20000), MULTILINE
    ] = None

    @field_validator("categories")
    @classmethod
    def _known_categories(cls, value: list[str]) -> list[str]:
        known = categories()
        unknown = [c for c in value if c not in known]
        if unknown:
            # The message never repeats what was sent (it could be anything a person typed).
            raise PydanticCustomError(
                "category_unknown",
                "Okänd kategori. Välj bland kategorierna i formuläret.",
            )
        return list(dict.fromkeys(value))


class Consultation(Strict):
    kind: Literal["colleague", "manager", "anonymous_social_services"]
    date: Date | None = None
    note: OptText = None


class Reporter(Strict):
    name: Text
    title: Text
    phone: Phone
    email: EmailStr


class Clinic(Strict):
    name: Text
    municipality: MunicipalityCode


class ConcernForm(Strict):
    """One submission: one or more children, each of whom becomes a report of its own."""

    children: list[Child] = Field(min_length=1, max_length=12)
    other_children: list[OtherChild] = Field(default_factory=list, max_length=MAX_OTHER_CHILDREN)
    guardians: list[Guardian] = Field(default_factory=list, max_length=6)
    concern: Concern
    urgency: Urgency
    child_told: bool
    child_view: OptLongText = None
    consultations: list[Consultation] = Field(default_factory=list, max_length=MAX_CONSULTATIONS)
    reporter: Reporter
    clinic: Clinic
    report_date: date | None = Field(
        default=None, description="Defaults to today (Europe/Stockholm); never in the future."
    )

    def without_protected_details(self) -> ConcernForm:
        """The form with every protected child's address and district left out."""
        children = [c.without_protected_details() for c in self.children]
        if all(new is old for new, old in zip(children, self.children, strict=True)):
            return self
        return self.model_copy(update={"children": children})
