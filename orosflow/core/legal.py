"""Legal references and deadlines, read from data files so that text never hard-codes law."""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

DATA = Path(__file__).resolve().parents[1] / "data"


class LegalReference(BaseModel):
    label: str
    reference: str
    previous: str | None = None
    verified: bool
    note: str | None = None


@lru_cache
def legal_references() -> dict[str, LegalReference]:
    raw = tomllib.loads((DATA / "legal.toml").read_text(encoding="utf-8"))
    return {key: LegalReference(**value) for key, value in raw.items()}


def legal_text(key: str, *, flag_unverified: bool = True) -> str:
    """Swedish citation for user-facing text, flagged when the paragraph is unverified.

    ``flag_unverified=False`` for counselor-facing pages: the flag stays in the data and in the
    auditor's and admin's views, but a counselor cannot act on it (issue 12, item 6)."""
    ref = legal_references()[key]
    if ref.verified or not flag_unverified:
        return ref.reference
    text = ref.reference
    if ref.previous:
        text += f", tidigare {ref.previous}"
    return text + "; hänvisningen är inte verifierad"


@lru_cache
def deadlines() -> dict[str, Any]:
    return tomllib.loads((DATA / "deadlines.toml").read_text(encoding="utf-8"))


class AgeRule(BaseModel):
    """The age rule's numbers, leap-day reading and guidance texts (``data/age_rule.toml``)."""

    adult_age: int
    youth_clinic_max_age: int
    leap_day_birthday: Literal["february_28", "march_1"]
    leap_day_source: str
    leap_day_url: str
    guidance: dict[Literal["youth", "adult"], str]


@lru_cache
def age_rule() -> AgeRule:
    return AgeRule(**tomllib.loads((DATA / "age_rule.toml").read_text(encoding="utf-8")))


def age_guidance(age: int, *, flag_unverified: bool = True) -> str:
    """Swedish guidance for a person too old for an orosanmälan: 18–22 are the youth clinic's
    own clients (consent, LVU up to 20), older adults get the general text."""
    rule = age_rule()
    kind = "youth" if age <= rule.youth_clinic_max_age else "adult"
    refs = {key: legal_text(key, flag_unverified=flag_unverified) for key in legal_references()}
    return rule.guidance[kind].format(**refs)
