"""The Router: directory + channels + rules, loaded once and shared (see :func:`get_router`)."""

from __future__ import annotations

import os
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path

from routing.channels import EXAMPLE_CHANNELS, Channel, load_channels
from routing.directory import DATA_DIR, Directory, load_directory
from routing.errors import UnknownCodeError
from routing.hours import MAX_DAYS_AHEAD, TZ, SwedishCalendar, require_aware, wall_clock
from routing.models import Decision, District, Municipality, RoutingRequest, Unit
from routing.rules import decide

CHANNELS_ENV = "OROSFLOW_CHANNELS_FILE"


class Router:
    """Answers "who receives this report, and why"; also office hours and the directory.

    Loading validates every data file and the channels file, so a broken deployment stops at
    start-up (``DirectoryError``) instead of routing a report to the wrong place.
    """

    def __init__(self, channels_path: Path | None = None, data_dir: Path = DATA_DIR) -> None:
        self.directory: Directory = load_directory(data_dir)
        self.channels = load_channels(channels_path or EXAMPLE_CHANNELS, set(self.directory.units))
        self.directory_version: str = self.directory.version
        self.calendar: SwedishCalendar = self.directory.calendar
        self._district_index: dict[str, District] = {}
        for d in self.directory.districts:
            self._district_index[d.id.casefold()] = d
            self._district_index[d.name.casefold()] = d

    # --- routing -----------------------------------------------------------------------------

    def route(self, req: RoutingRequest) -> Decision:
        """One decision per child; further recipients are in ``Decision.also``."""
        return decide(self, req)

    # --- municipalities and districts ----------------------------------------------------------

    def municipality_exists(self, code: str) -> bool:
        return code in self.directory.municipalities

    def municipality(self, code: str) -> Municipality:
        try:
            return self.directory.municipalities[code]
        except KeyError:
            raise UnknownCodeError("municipality", code) from None

    def municipality_name(self, code: str) -> str:
        return self.municipality(code).name

    def municipalities(self) -> list[Municipality]:
        return list(self.directory.municipalities.values())

    def districts(self) -> list[District]:
        return list(self.directory.districts)

    def resolve_district(self, name_or_id: str) -> District | None:
        """Accept the id or the Swedish name, case-insensitively (the form may send either)."""
        return self._district_index.get(" ".join(name_or_id.split()).casefold())

    # --- units and channels ------------------------------------------------------------------

    def channel(self, unit_id: str) -> Channel | None:
        return self.channels.by_unit.get(unit_id)

    def unit(self, unit_id: str) -> Unit:
        """The unit with its configured channel merged in."""
        try:
            base = self.directory.units[unit_id]
        except KeyError:
            # The message reaches portal users: it never repeats what they sent.
            raise UnknownCodeError(
                "unit_id", unit_id, "Okänd enhet: den finns inte i katalogen."
            ) from None
        ch = self.channel(unit_id)
        if ch is None:
            return base
        return base.model_copy(
            update={
                "email": ch.email,
                "phone": ch.phone,
                "portal_group": ch.portal_group,
                "channel_verified": ch.verified,
                "has_channel": ch.usable,
            }
        )

    def units(self) -> list[Unit]:
        return [self.unit(uid) for uid in self.directory.units]

    def intake_for(self, municipality: str) -> Unit:
        return self.unit(self.directory.intake_of[self.municipality(municipality).code])

    def socialjour_for(self, municipality: str) -> Unit:
        return self.unit(self.directory.socialjour_of[self.municipality(municipality).code])

    def socialjour_verified(self, municipality: str) -> bool:
        """Whether the directory's socialjour for this municipality is a verified fact."""
        return self.directory.socialjour_verified[self.municipality(municipality).code]

    def units_without_channel(self) -> list[str]:
        """Unit ids with no channel entry, or one with neither e-mail nor phone."""
        return sorted(
            uid
            for uid in self.directory.units
            if (ch := self.channel(uid)) is None or not ch.usable
        )

    # --- office hours --------------------------------------------------------------------------

    def is_open(self, unit_id: str, at: datetime) -> bool:
        """Open at this instant (Stockholm wall clock).

        A socialjour whose hours are unknown is taken as reachable whenever the default office
        hours are closed: that is when reports go to it, and its real hours are configuration.
        """
        unit = self.unit(unit_id)
        require_aware(at)
        schedule = self.directory.schedules.get(unit.id)
        if schedule is None:
            return not self.directory.office_default.is_open(at, self.calendar)
        return schedule.is_open(at, self.calendar)

    def next_open(self, unit_id: str, at: datetime) -> datetime | None:
        """When the unit next opens after ``at`` (aware, Europe/Stockholm); None if open at ``at``.

        For an office this is when it next reads written reports; for a socialjour when it is
        next staffed. Scans day by day (at most ``MAX_DAYS_AHEAD``) over the unit's schedule,
        holidays, observed eves and half days. A socialjour with unknown hours is taken as
        reachable whenever the default office hours are closed, so it "opens" when they close.
        """
        unit = self.unit(unit_id)
        require_aware(at)
        schedule = self.directory.schedules.get(unit.id)
        if schedule is None:
            return self.directory.office_default.next_close(at, self.calendar)
        return schedule.next_open(at, self.calendar)

    def hours_known(self, unit_id: str) -> bool:
        """Whether hours.toml or the default office hours give this unit a schedule."""
        return self.unit(unit_id).id in self.directory.schedules

    def schedule_text(self, unit_id: str) -> str:
        """Swedish summary of a unit's hours, for explanations."""
        schedule = self.directory.schedules.get(self.unit(unit_id).id)
        if schedule is None:
            return "öppettider okända; antas nåbar när kontoren har stängt"
        return schedule.describe()

    def is_working_day(self, unit_id: str, day: date) -> bool:
        """A weekday that is not a holiday or observed eve and has office hours for the unit.

        Working days are a calendar notion, so a socialjour uses the default office schedule.
        """
        unit = self.unit(unit_id)
        schedule = self.directory.schedules.get(unit.id)
        if unit.kind == "socialjour" or schedule is None:
            schedule = self.directory.office_default
        return schedule.has_hours_on_weekday(day) and not self.calendar.is_day_off(day)

    def next_working_day_at(self, unit_id: str, after: datetime, at: time) -> datetime:
        """``at`` (local wall-clock time) on the first working day after ``after``'s local date."""
        local = require_aware(after, "after").astimezone(TZ)
        day = local.date()
        for _ in range(MAX_DAYS_AHEAD):
            day += timedelta(days=1)
            if self.is_working_day(unit_id, day):
                return wall_clock(day, at.hour * 60 + at.minute)
        raise ValueError(f"Ingen arbetsdag inom {MAX_DAYS_AHEAD} dagar för enheten {unit_id}.")


@lru_cache(maxsize=8)
def _router_for(path: Path) -> Router:
    return Router(channels_path=path)


def get_router(channels_path: Path | None = None) -> Router:
    """Shared router, cached per channels file.

    ``None`` means the file named by ``OROSFLOW_CHANNELS_FILE``, else the shipped example.
    """
    if channels_path is None:
        env = os.environ.get(CHANNELS_ENV)
        channels_path = Path(env) if env else EXAMPLE_CHANNELS
    return _router_for(Path(channels_path).expanduser().resolve())


def clear_router_cache() -> None:
    """Forget cached routers (tests, or after the channels file was edited)."""
    _router_for.cache_clear()
