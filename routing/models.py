"""Pydantic models of the routing API: what callers send, what they get back, and the directory."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

UnitKind = Literal["intake", "district", "socialjour"]
Urgency = Literal["acute", "not_acute"]

_CODE_FIELDS = (
    "municipality",
    "district",
    "staying_municipality",
    "placed_by",
    "assigned_municipality",
    "arrival_municipality",
)


class RoutingRequest(BaseModel):
    """What the router needs to know about one child; never an address or a name.

    Municipality fields are SCB codes (four digits). ``district`` is only read for children
    living in Stockholm city (0180) without protected identity. Unknown keys are refused so a
    misspelt optional key (``placedby``) cannot silently change the route.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    municipality: str | None = None
    district: str | None = None
    staying_municipality: str | None = None
    clinic_municipality: str
    urgency: Urgency = "not_acute"
    protected_identity: bool = False
    placed_by: str | None = None
    unaccompanied: bool = False
    assigned_municipality: str | None = None
    arrival_municipality: str | None = None
    at: datetime

    @field_validator(*_CODE_FIELDS, mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        """An empty form field means "not known", not a code to look up."""
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        """Office hours are local Swedish time; a naive time would be guessed, so refuse it."""
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                "Tidpunkten (at) saknar tidszon; ange den med tidszon, "
                "t.ex. 2026-12-24T10:00:00+01:00."
            )
        return value


class Decision(BaseModel):
    """One recipient of a report and why; stored with the handover for auditors.

    A decision is one step: a written report to a unit (``written``), a phone call to it
    (``phone_required``), or both. Acute out of office hours the socialjour call is the
    decision and the written report to the intake unit is the first entry of its ``also``.
    """

    municipality: str
    municipality_name: str
    unit_kind: UnitKind
    unit_id: str
    unit_name: str
    phone_required: bool
    phone: str | None
    email: str | None
    portal_group: str | None
    channel_verified: bool
    rule: str
    explanation: str
    directory_version: str
    #: When this unit next opens after ``at`` (aware, Europe/Stockholm offset): for an intake
    #: unit or district the time it next reads written reports, for a socialjour the time
    #: it is next staffed. None = open at ``at``.
    opens_at: datetime | None = None
    #: The written report goes to this unit (one handover); False = a phone step only
    #: (a socialjour without an e-mail in the channels file).
    written: bool = True
    #: Whether the hours behind ``opens_at`` and the phone step are a checked fact (the
    #: ``verified`` flag of the unit's schedule in hours.toml); False for a socialjour whose
    #: hours are unknown and for offices on unverified default hours.
    hours_verified: bool = True
    also: list[Decision] = Field(default_factory=list)


class Municipality(BaseModel):
    """One of Sweden's 290 municipalities (SCB code, name, county)."""

    model_config = ConfigDict(frozen=True)

    code: str
    name: str
    county_code: str
    county_name: str


class District(BaseModel):
    """A Stockholm city district area; the counselor picks it, helped by ``help_text``."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    help_text: str
    unit_name: str


class Unit(BaseModel):
    """A receiving unit (intake, Stockholm district or socialjour) with its configured channel.

    ``municipality`` is the owning municipality, or None for a socialjour shared by several;
    ``municipalities`` lists every municipality the unit serves. ``hours`` is the unit's own
    schedule as written in hours.toml, or None when the default applies (offices) or the hours
    are unknown (socialjour: assumed reachable whenever the municipality's office is closed).
    ``hours_verified`` is the schedule's ``verified`` flag (False when the hours are unknown).
    """

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    kind: UnitKind
    municipality: str | None
    municipalities: tuple[str, ...]
    coverage_verified: bool = True
    hours: dict[str, tuple[str, ...]] | None = None
    hours_verified: bool = False
    email: str | None = None
    phone: str | None = None
    portal_group: str | None = None
    channel_verified: bool = False
    has_channel: bool = False
