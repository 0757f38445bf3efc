"""Office hours and the Swedish calendar of days off, all in Europe/Stockholm wall-clock time.

Schedules are written as local wall-clock intervals and evaluated on the local date and time
of an aware instant, so daylight-saving changes need no special case: zoneinfo turns the
instant into the right local time and the schedule is read from there.

Days off are Saturdays, Sundays, the public holidays of ``holidays.country_holidays("SE")``
and the eves configured as observed (midsummer eve, Christmas eve, New Year's eve by default;
the Annual Leave Act 1977:480 § 7 treats them like Sundays and municipal offices are closed).
Some versions of the ``holidays`` package list every Sunday as a holiday named "Söndag"; those
entries are dropped so that only real holidays are named in explanations.

Opening instants (``Schedule.next_open``) are built from a local date and a wall-clock time
and normalised through UTC, so 08:00 on the Monday after a DST change carries that day's
offset, and an opening inside the spring-forward gap moves to the first real minute after it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

TZ = ZoneInfo("Europe/Stockholm")
DAY_KEYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SCHEDULE_KEYS: tuple[str, ...] = (*DAY_KEYS, "holiday")
#: Optional: intervals on a working day whose next day is a public holiday or observed eve.
HALF_DAY_KEY = "half_day"
INTERVAL_KEYS: tuple[str, ...] = (*SCHEDULE_KEYS, HALF_DAY_KEY)
#: How far ahead an opening is searched for; the longest Swedish run of days off is 5 days.
MAX_DAYS_AHEAD = 60
EVES: dict[str, str] = {
    "midsommarafton": "Midsommarafton",
    "julafton": "Julafton",
    "nyarsafton": "Nyårsafton",
}
WEEKDAY_NAMES_SV = ("måndag", "tisdag", "onsdag", "torsdag", "fredag", "lördag", "söndag")
MONTH_NAMES_SV = (
    "januari", "februari", "mars", "april", "maj", "juni",
    "juli", "augusti", "september", "oktober", "november", "december",
)  # fmt: skip
_KEY_LABELS_SV = {
    "mon": "mån",
    "tue": "tis",
    "wed": "ons",
    "thu": "tors",
    "fri": "fre",
    "sat": "lör",
    "sun": "sön",
    "holiday": "helgdag",
    HALF_DAY_KEY: "dag före helgdag",
}
_SUNDAY_NAMES = {"söndag", "sunday"}
_INTERVAL_RE = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
DAY_MINUTES = 24 * 60


def require_aware(at: datetime, what: str = "at") -> datetime:
    """Refuse naive datetimes: office hours are Swedish local time and must not be guessed."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(
            f"Tidpunkten ({what}) saknar tidszon; ange den med tidszon, "
            "t.ex. 2026-12-24T10:00:00+01:00."
        )
    return at


@dataclass(frozen=True)
class Interval:
    """A local opening interval in minutes; ``end < start`` means it runs past midnight."""

    start: int
    end: int

    @classmethod
    def parse(cls, text: str) -> Interval:
        """Parse "HH:MM-HH:MM"; an end of 00:00 or 24:00 means midnight."""
        m = _INTERVAL_RE.match(text.strip()) if isinstance(text, str) else None
        if not m:
            raise ValueError(f'ogiltigt intervall {text!r}, skriv t.ex. "08:00-16:30"')
        sh, sm, eh, em = (int(g) for g in m.groups())
        if sh > 23 or sm > 59 or em > 59 or eh > 24 or (eh == 24 and em != 0):
            raise ValueError(f"ogiltigt klockslag i {text!r}")
        start, end = sh * 60 + sm, eh * 60 + em
        if end == 0:
            end = DAY_MINUTES
        if start == end:
            raise ValueError(f"intervallet {text!r} har samma start och slut")
        return cls(start, end)

    @property
    def crosses_midnight(self) -> bool:
        return self.end < self.start

    def text(self) -> str:
        end = self.end % DAY_MINUTES
        return f"{self.start // 60:02d}:{self.start % 60:02d}–{end // 60:02d}:{end % 60:02d}"


def wall_clock(day: date, minute: int) -> datetime:
    """The instant a Stockholm wall clock shows ``minute`` after midnight of ``day``.

    ``minute`` may be 1440 or more (an interval ending at or after midnight). The UTC round
    trip gives the day's real offset and moves a time skipped by spring-forward past the gap.
    """
    day += timedelta(days=minute // DAY_MINUTES)
    minute %= DAY_MINUTES
    naive = datetime.combine(day, time(minute // 60, minute % 60))
    return naive.replace(tzinfo=TZ).astimezone(UTC).astimezone(TZ)


class SwedishCalendar:
    """Which local dates are days off, and why (for explanations)."""

    def __init__(self, observed_eves: frozenset[str]) -> None:
        self.observed_eves = observed_eves

    @staticmethod
    @lru_cache(maxsize=64)
    def public_holidays(year: int) -> dict[date, str]:
        """Swedish public holidays of a year, without the plain Sundays some versions add."""
        table = holidays.country_holidays("SE", years=year, language="sv")
        out: dict[date, str] = {}
        for day in sorted(table):
            names = [n for n in table.get_list(day) if n.strip().casefold() not in _SUNDAY_NAMES]
            if names:
                out[day] = "; ".join(names)
        return out

    def eve_name(self, day: date) -> str | None:
        """Name of an observed eve on this date, or None."""
        if "julafton" in self.observed_eves and (day.month, day.day) == (12, 24):
            return EVES["julafton"]
        if "nyarsafton" in self.observed_eves and (day.month, day.day) == (12, 31):
            return EVES["nyarsafton"]
        if (
            "midsommarafton" in self.observed_eves
            and day.month == 6
            and 19 <= day.day <= 25
            and day.weekday() == 4
        ):
            return EVES["midsommarafton"]
        return None

    def holiday_name(self, day: date) -> str | None:
        """Public holiday or observed eve on this date (not plain weekends), or None."""
        return self.public_holidays(day.year).get(day) or self.eve_name(day)

    def is_day_off(self, day: date) -> bool:
        return day.weekday() >= 5 or self.holiday_name(day) is not None

    def day_off_reason(self, day: date) -> str | None:
        """Swedish reason a date is off, e.g. "helgdag: Juldagen", or None on a working day."""
        name = self.public_holidays(day.year).get(day)
        if name:
            return f"allmän helgdag: {name}"
        eve = self.eve_name(day)
        if eve:
            return f"{eve.lower()}, behandlas som ledig dag"
        if day.weekday() >= 5:
            return "helg"
        return None


class Schedule:
    """A weekly schedule of local opening intervals, with optional holiday and half-day hours.

    ``half_day`` (optional) replaces the weekday's intervals on a working day whose next day
    is a public holiday or observed eve (e.g. 08:00-12:00 the day before Trettondedag jul).
    ``verified`` says whether the hours are a checked fact; it travels to the decisions.
    """

    def __init__(self, raw: dict[str, tuple[str, ...]], verified: bool = False) -> None:
        self.raw = raw
        self.verified = verified
        self.days: dict[str, tuple[Interval, ...]] = {
            key: tuple(Interval.parse(t) for t in raw.get(key, ())) for key in SCHEDULE_KEYS
        }
        self.half_day: tuple[Interval, ...] | None = (
            tuple(Interval.parse(t) for t in raw[HALF_DAY_KEY]) if HALF_DAY_KEY in raw else None
        )

    def intervals_for(self, day: date, calendar: SwedishCalendar) -> tuple[Interval, ...]:
        """Intervals starting on ``day``: holiday key on holidays/eves, half day, else weekday."""
        if calendar.holiday_name(day) is not None:
            return self.days["holiday"]
        weekday = self.days[DAY_KEYS[day.weekday()]]
        if (
            self.half_day is not None
            and weekday
            and day.weekday() < 5
            and calendar.holiday_name(day + timedelta(days=1)) is not None
        ):
            return self.half_day
        return weekday

    def is_open(self, at: datetime, calendar: SwedishCalendar) -> bool:
        """Open at this instant, read as Stockholm wall-clock time."""
        local = require_aware(at).astimezone(TZ)
        day = local.date()
        minute = local.hour * 60 + local.minute
        for iv in self.intervals_for(day, calendar):
            if iv.crosses_midnight:
                if minute >= iv.start:
                    return True
            elif iv.start <= minute < iv.end:
                return True
        for iv in self.intervals_for(day - timedelta(days=1), calendar):
            if iv.crosses_midnight and minute < iv.end:
                return True
        return False

    def next_open(self, at: datetime, calendar: SwedishCalendar) -> datetime | None:
        """The first opening after ``at`` (Stockholm time), or None when open at ``at``.

        Raises ValueError when nothing opens within ``MAX_DAYS_AHEAD`` days (an empty
        schedule; the loader refuses those, so this is a guard, not a route).
        """
        if self.is_open(at, calendar):
            return None
        day = require_aware(at).astimezone(TZ).date()
        for offset in range(MAX_DAYS_AHEAD + 1):
            current = day + timedelta(days=offset)
            for iv in sorted(self.intervals_for(current, calendar), key=lambda i: i.start):
                start = wall_clock(current, iv.start)
                if start > at:
                    return start
        raise ValueError(
            f"Ingen öppning inom {MAX_DAYS_AHEAD} dagar i schemat ({self.describe()})."
        )

    def next_close(self, at: datetime, calendar: SwedishCalendar) -> datetime | None:
        """The first instant after ``at`` when the schedule is closed, or None if closed now.

        Intervals that meet (12:00-13:00 after 08:00-12:00) are one opening, not a close.
        """
        if not self.is_open(at, calendar):
            return None
        local = require_aware(at).astimezone(TZ)
        ends: list[datetime] = []
        for offset in range(-1, MAX_DAYS_AHEAD + 1):
            current = local.date() + timedelta(days=offset)
            for iv in self.intervals_for(current, calendar):
                end = iv.end + (DAY_MINUTES if iv.crosses_midnight else 0)
                ends.append(wall_clock(current, end))
        for end in sorted(e for e in ends if e > at):
            if not self.is_open(end, calendar):
                return end
        raise ValueError(f"Schemat stänger inte inom {MAX_DAYS_AHEAD} dagar ({self.describe()}).")

    def has_hours_on_weekday(self, day: date) -> bool:
        return bool(self.days[DAY_KEYS[day.weekday()]])

    def has_weekly_hours(self) -> bool:
        """At least one weekday has an interval; otherwise the unit would never open."""
        return any(self.days[key] for key in DAY_KEYS)

    def describe(self) -> str:
        """Short Swedish summary, e.g. "mån–fre 08:00–16:30"; consecutive equal days grouped."""
        parts: list[str] = []
        keys = list(SCHEDULE_KEYS)
        i = 0
        while i < len(keys):
            key = keys[i]
            text = ", ".join(iv.text() for iv in self.days[key])
            j = i
            while (
                j + 1 < len(DAY_KEYS)
                and key != "holiday"
                and ", ".join(iv.text() for iv in self.days[keys[j + 1]]) == text
            ):
                j += 1
            if text:
                label = _KEY_LABELS_SV[key]
                if j > i:
                    label = f"{label}–{_KEY_LABELS_SV[keys[j]]}"
                parts.append(f"{label} {text}")
            i = j + 1
        if self.half_day:
            half = ", ".join(iv.text() for iv in self.half_day)
            parts.append(f"{_KEY_LABELS_SV[HALF_DAY_KEY]} {half}")
        return "; ".join(parts) if parts else "stängt"


def describe_moment(at: datetime, calendar: SwedishCalendar) -> str:
    """Swedish local-time description of an instant, naming the day-off reason if any."""
    local = require_aware(at).astimezone(TZ)
    text = f"{WEEKDAY_NAMES_SV[local.weekday()]} {local:%Y-%m-%d} kl. {local:%H:%M}"
    reason = calendar.day_off_reason(local.date())
    if reason and reason != "helg":
        text += f" ({reason})"
    return text


def describe_when(at: datetime) -> str:
    """A future instant in Swedish words, e.g. "måndag 28 december kl. 08:00"."""
    local = require_aware(at, "at").astimezone(TZ)
    return (
        f"{WEEKDAY_NAMES_SV[local.weekday()]} {local.day} "
        f"{MONTH_NAMES_SV[local.month - 1]} kl. {local:%H:%M}"
    )


def describe_opens_at(opens_at: datetime | None) -> str:
    """When a written report will first be read, in words for receipts and notifications:
    "läses tidigast måndag 28 december kl. 08:00", or "läses under dagens kontorstid"."""
    if opens_at is None:
        return "läses under dagens kontorstid"
    return f"läses tidigast {describe_when(require_aware(opens_at, 'opens_at'))}"
