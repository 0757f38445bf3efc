"""Office hours, Swedish holidays, observed eves and daylight saving: the time-of-day rule."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

import holidays
import pytest

from routing import Decision, Router
from routing.hours import TZ, SwedishCalendar


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=TZ)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# Upplands Väsby: default office hours, default (unverified) socialjour sj-0114.
MUN = "0114"

# Independent of the holidays package: the Swedish public holidays (lag 1989:253).
PUBLIC_HOLIDAYS = {
    2026: {
        date(2026, 1, 1): "Nyårsdagen",
        date(2026, 1, 6): "Trettondedag jul",
        date(2026, 4, 3): "Långfredagen",
        date(2026, 4, 5): "Påskdagen",
        date(2026, 4, 6): "Annandag påsk",
        date(2026, 5, 1): "Första maj",
        date(2026, 5, 14): "Kristi himmelsfärdsdag",
        date(2026, 5, 24): "Pingstdagen",
        date(2026, 6, 6): "Nationaldagen",
        date(2026, 6, 20): "Midsommardagen",
        date(2026, 10, 31): "Alla helgons dag",
        date(2026, 12, 25): "Juldagen",
        date(2026, 12, 26): "Annandag jul",
    },
    2027: {
        date(2027, 1, 1): "Nyårsdagen",
        date(2027, 1, 6): "Trettondedag jul",
        date(2027, 3, 26): "Långfredagen",
        date(2027, 3, 28): "Påskdagen",
        date(2027, 3, 29): "Annandag påsk",
        date(2027, 5, 1): "Första maj",
        date(2027, 5, 6): "Kristi himmelsfärdsdag",
        date(2027, 5, 16): "Pingstdagen",
        date(2027, 6, 6): "Nationaldagen",
        date(2027, 6, 26): "Midsommardagen",
        date(2027, 11, 6): "Alla helgons dag",
        date(2027, 12, 25): "Juldagen",
        date(2027, 12, 26): "Annandag jul",
    },
}
ALL_HOLIDAYS = [(d, n) for year in PUBLIC_HOLIDAYS.values() for d, n in year.items()]

# Observed eves (days off by decision, see hours.toml) and the working day before each.
EVES = [
    (date(2026, 6, 19), "Midsommarafton", date(2026, 6, 18)),
    (date(2026, 12, 24), "Julafton", date(2026, 12, 23)),
    (date(2026, 12, 31), "Nyårsafton", date(2026, 12, 30)),
    (date(2027, 6, 25), "Midsommarafton", date(2027, 6, 24)),
    (date(2027, 12, 24), "Julafton", date(2027, 12, 23)),
    (date(2027, 12, 31), "Nyårsafton", date(2027, 12, 30)),
]


def _last_sunday(year: int, month: int) -> date:
    day = date(year, month, 31)
    return day - timedelta(days=(day.weekday() + 1) % 7)


def _next_working_day_0800(day: date) -> str:
    """Expected opening from this test's own calendar (not the router's): 08:00 local.

    Summer time (EU rule): from the last Sunday of March to the last Sunday of October.
    """
    off = {d for d, _ in ALL_HOLIDAYS} | {e for e, _, _ in EVES}
    day += timedelta(days=1)
    while day.weekday() >= 5 or day in off:
        day += timedelta(days=1)
    summer = _last_sunday(day.year, 3) <= day < _last_sunday(day.year, 10)
    return f"{day.isoformat()}T08:00:00{'+02:00' if summer else '+01:00'}"


@pytest.mark.parametrize(
    ("at", "opens_at"),
    [
        (local(2026, 11, 24, 7, 59), "2026-11-24T08:00:00+01:00"),
        (local(2026, 11, 24, 8, 0), None),
        (local(2026, 11, 24, 12, 0), None),
        (local(2026, 11, 24, 16, 29), None),
        (local(2026, 11, 24, 16, 30), "2026-11-25T08:00:00+01:00"),
        (local(2026, 11, 24, 16, 31), "2026-11-25T08:00:00+01:00"),
        (local(2026, 11, 24, 23, 59), "2026-11-25T08:00:00+01:00"),
    ],
    ids=lambda v: v.strftime("%H:%M") if isinstance(v, datetime) else str(v),
)
def test_weekday_office_hours_boundary(
    route: Callable[..., Decision], at: datetime, opens_at: str | None
) -> None:
    """Not acute: the intake unit at every hour; the boundary only moves opens_at."""
    d = route(municipality=MUN, at=at)
    assert (d.unit_kind, d.unit_id, d.rule) == ("intake", "intake-0114", "R-RESIDENCE")
    assert (d.phone_required, d.written) == (False, True)
    assert (d.opens_at.isoformat() if d.opens_at else None) == opens_at
    assert ("utanför kontorstiden" in d.explanation) is (opens_at is not None)
    acute = route(municipality=MUN, at=at, urgency="acute")
    assert acute.unit_kind == ("intake" if opens_at is None else "socialjour")
    assert acute.rule == ("R-ACUTE-PHONE" if opens_at is None else "R-OUT-OF-HOURS")


@pytest.mark.parametrize(
    ("at", "opens_at"),
    [
        (local(2026, 11, 27, 16, 29), None),  # Friday
        (local(2026, 11, 27, 16, 31), "2026-11-30T08:00:00+01:00"),
        (local(2026, 11, 27, 22, 0), "2026-11-30T08:00:00+01:00"),
        (local(2026, 11, 28, 3, 0), "2026-11-30T08:00:00+01:00"),  # Saturday
        (local(2026, 11, 28, 12, 0), "2026-11-30T08:00:00+01:00"),
        (local(2026, 11, 29, 12, 0), "2026-11-30T08:00:00+01:00"),  # Sunday
        (local(2026, 11, 29, 23, 59), "2026-11-30T08:00:00+01:00"),
        (local(2026, 11, 30, 7, 59), "2026-11-30T08:00:00+01:00"),  # Monday
        (local(2026, 11, 30, 8, 0), None),
    ],
    ids=lambda v: v.strftime("%a-%H:%M") if isinstance(v, datetime) else str(v),
)
def test_friday_evening_to_monday_morning(
    route: Callable[..., Decision], at: datetime, opens_at: str | None
) -> None:
    d = route(municipality=MUN, at=at)
    assert (d.unit_id, d.written, d.phone_required) == ("intake-0114", True, False)
    assert (d.opens_at.isoformat() if d.opens_at else None) == opens_at


@pytest.mark.parametrize(("day", "name"), ALL_HOLIDAYS, ids=[str(d) for d, _ in ALL_HOLIDAYS])
def test_each_public_holiday_waits_for_the_next_working_day(
    route: Callable[..., Decision], router: Router, day: date, name: str
) -> None:
    at = datetime.combine(day, time(10, 0), TZ)
    d = route(municipality=MUN, at=at)
    assert (d.unit_id, d.rule, d.phone_required, d.written) == (
        "intake-0114",
        "R-RESIDENCE",
        False,
        True,
    )
    assert d.opens_at is not None
    assert d.opens_at.isoformat() == _next_working_day_0800(day)
    assert "R-WRITTEN-NEXT-OPENING" in d.explanation
    assert not router.is_working_day("intake-0114", day)
    if day.weekday() < 5:
        # A holiday on a weekday is named, so the counselor sees why the office is closed.
        assert name in d.explanation
    acute = route(municipality=MUN, at=at, urgency="acute")
    assert (acute.unit_kind, acute.rule, acute.phone_required) == (
        "socialjour",
        "R-OUT-OF-HOURS",
        True,
    )


@pytest.mark.parametrize("year", sorted(PUBLIC_HOLIDAYS))
def test_holiday_calendar_matches_law_and_skips_plain_sundays(router: Router, year: int) -> None:
    assert router.calendar.public_holidays(year) == PUBLIC_HOLIDAYS[year]


def test_holiday_package_listing_sundays_is_handled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Some versions of `holidays` list every Sunday as "Söndag"; those must not count."""

    def with_sundays(country: str, **kwargs: object) -> holidays.HolidayBase:
        return holidays.SE(include_sundays=True, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("routing.hours.holidays.country_holidays", with_sundays)
    SwedishCalendar.public_holidays.cache_clear()
    try:
        assert holidays.SE(include_sundays=True, years=2026, language="sv").get("2026-03-01")
        assert SwedishCalendar.public_holidays(2026) == PUBLIC_HOLIDAYS[2026]
    finally:
        SwedishCalendar.public_holidays.cache_clear()


@pytest.mark.parametrize(("eve", "name", "before"), EVES, ids=[str(e[0]) for e in EVES])
def test_observed_eves_are_days_off(
    route: Callable[..., Decision], router: Router, eve: date, name: str, before: date
) -> None:
    d = route(municipality=MUN, at=datetime.combine(eve, time(10, 0), TZ))
    assert d.unit_id == "intake-0114" and d.opens_at is not None
    assert d.opens_at.isoformat() == _next_working_day_0800(eve)
    assert name.lower() in d.explanation
    assert not router.is_working_day("intake-0114", eve)
    acute = route(municipality=MUN, at=datetime.combine(eve, time(10, 0), TZ), urgency="acute")
    assert acute.unit_kind == "socialjour" and acute.rule == "R-OUT-OF-HOURS"
    # The working day before is an ordinary office day (no half days in the shipped data).
    before_d = route(municipality=MUN, at=datetime.combine(before, time(15, 0), TZ))
    assert (before_d.unit_kind, before_d.opens_at) == ("intake", None)
    assert router.is_working_day("intake-0114", before)


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (local(2026, 11, 24, 10, 0), local(2026, 11, 25, 12, 0)),  # Tue -> Wed
        (local(2026, 11, 27, 17, 0), local(2026, 11, 30, 12, 0)),  # Fri -> Mon
        (local(2026, 12, 23, 20, 0), local(2026, 12, 28, 12, 0)),  # julafton, jul, helg
        (local(2026, 12, 30, 9, 0), local(2027, 1, 4, 12, 0)),  # nyårsafton, nyårsdagen
        (local(2026, 6, 18, 15, 0), local(2026, 6, 22, 12, 0)),  # midsommar
        (local(2026, 4, 2, 15, 0), local(2026, 4, 7, 12, 0)),  # påsk
        (local(2026, 3, 27, 17, 0), local(2026, 3, 30, 12, 0)),  # over DST start
        (local(2026, 10, 23, 17, 0), local(2026, 10, 26, 12, 0)),  # over DST end
    ],
)
def test_next_working_day_at_noon(router: Router, after: datetime, expected: datetime) -> None:
    got = router.next_working_day_at("intake-0114", after, time(12, 0))
    assert got == expected
    assert got.tzinfo is not None
    assert (got.hour, got.minute) == (12, 0)
    assert got.utcoffset() == expected.utcoffset()


def test_next_working_day_offsets_across_dst(router: Router) -> None:
    spring = router.next_working_day_at("intake-0114", local(2026, 3, 27, 17, 0), time(12, 0))
    autumn = router.next_working_day_at("intake-0114", local(2026, 10, 23, 17, 0), time(12, 0))
    assert spring.utcoffset() == timedelta(hours=2)
    assert autumn.utcoffset() == timedelta(hours=1)
    assert spring.astimezone(UTC) == utc(2026, 3, 30, 10, 0)
    assert autumn.astimezone(UTC) == utc(2026, 10, 26, 11, 0)


# Södertälje's socialjour: Sat 16:00-02:00, Sun 16:00-01:00 (domain.md 3.4).
# Västerås' socialjour: Sun 15:00-00:00.
@pytest.mark.parametrize(
    ("unit_id", "at", "is_open"),
    [
        # 29 March 2026: 02:00 CET -> 03:00 CEST (01:00 UTC).
        ("sj-sodertalje", utc(2026, 3, 29, 0, 59), True),  # 01:59 CET, Saturday's shift
        ("sj-sodertalje", utc(2026, 3, 29, 1, 0), False),  # 03:00 CEST, closed
        ("sj-sodertalje", utc(2026, 3, 29, 13, 59), False),  # 15:59 CEST
        ("sj-sodertalje", utc(2026, 3, 29, 14, 0), True),  # 16:00 CEST
        ("sj-vasteras", utc(2026, 3, 29, 12, 59), False),  # 14:59 CEST
        ("sj-vasteras", utc(2026, 3, 29, 13, 0), True),  # 15:00 CEST
        ("sj-vasteras", utc(2026, 3, 29, 21, 59), True),  # 23:59 CEST
        ("sj-vasteras", utc(2026, 3, 29, 22, 0), False),  # 00:00 CEST Monday
        # 25 October 2026: 03:00 CEST -> 02:00 CET (01:00 UTC); 02:xx happens twice.
        ("sj-sodertalje", utc(2026, 10, 24, 23, 59), True),  # 01:59 CEST
        ("sj-sodertalje", utc(2026, 10, 25, 0, 0), False),  # 02:00 CEST (first)
        ("sj-sodertalje", utc(2026, 10, 25, 1, 30), False),  # 02:30 CET (second)
        ("sj-sodertalje", utc(2026, 10, 25, 14, 59), False),  # 15:59 CET
        ("sj-sodertalje", utc(2026, 10, 25, 15, 0), True),  # 16:00 CET
        ("sj-vasteras", utc(2026, 10, 25, 13, 59), False),  # 14:59 CET
        ("sj-vasteras", utc(2026, 10, 25, 14, 0), True),  # 15:00 CET
        ("intake-0114", utc(2026, 3, 30, 5, 59), False),  # Mon 07:59 CEST
        ("intake-0114", utc(2026, 3, 30, 6, 0), True),  # Mon 08:00 CEST
        ("intake-0114", utc(2026, 3, 27, 15, 29), True),  # Fri 16:29 CET
        ("intake-0114", utc(2026, 3, 27, 15, 30), False),  # Fri 16:30 CET
        ("intake-0114", utc(2026, 10, 26, 6, 59), False),  # Mon 07:59 CET
        ("intake-0114", utc(2026, 10, 26, 7, 0), True),  # Mon 08:00 CET
        ("intake-0114", utc(2026, 10, 23, 14, 29), True),  # Fri 16:29 CEST
        ("intake-0114", utc(2026, 10, 23, 14, 30), False),  # Fri 16:30 CEST
    ],
    ids=lambda v: v.strftime("%Y%m%dT%H%MZ") if isinstance(v, datetime) else str(v),
)
def test_hours_across_dst_changes(
    router: Router, unit_id: str, at: datetime, is_open: bool
) -> None:
    assert router.is_open(unit_id, at) is is_open


@pytest.mark.parametrize(
    ("at", "kind"),
    [
        (utc(2026, 3, 29, 0, 30), "socialjour"),
        (utc(2026, 3, 29, 1, 30), "socialjour"),
        (utc(2026, 3, 29, 9, 0), "socialjour"),
        (utc(2026, 10, 25, 0, 30), "socialjour"),
        (utc(2026, 10, 25, 1, 30), "socialjour"),
        (utc(2026, 10, 25, 9, 0), "socialjour"),
        (utc(2026, 3, 30, 6, 0), "intake"),
        (utc(2026, 10, 26, 7, 0), "intake"),
        (utc(2026, 10, 26, 6, 30), "socialjour"),
    ],
    ids=lambda v: v.strftime("%Y%m%dT%H%MZ") if isinstance(v, datetime) else v,
)
def test_acute_routing_on_dst_days(route: Callable[..., Decision], at: datetime, kind: str) -> None:
    d = route(municipality="0181", at=at, urgency="acute")
    assert d.unit_kind == kind
    if kind == "socialjour":
        assert [a.unit_id for a in d.also] == ["intake-0181"]


def test_socialjour_outside_its_own_hours_says_call_112(route: Callable[..., Decision]) -> None:
    # Tuesday 03:00: Södertälje's jour closed at 01:00; the counselor is told to call 112.
    d = route(municipality="0181", at=local(2026, 11, 24, 3, 0), urgency="acute")
    assert (d.unit_id, d.phone) == ("sj-sodertalje", "112")
    assert "ring 112 och begär socialjouren via SOS Alarm" in d.explanation
    assert d.opens_at is not None and d.opens_at.isoformat() == "2026-11-24T16:00:00+01:00"


def test_unit_schedule_override_is_used(router: Router) -> None:
    # Västerås' socialjour has its own hours, so it is closed on a weekday morning even though
    # the default rule would treat it as reachable whenever the offices are closed.
    assert not router.is_open("sj-vasteras", local(2026, 11, 24, 7, 0))
    assert router.is_open("sj-0114", local(2026, 11, 24, 7, 0))
    assert not router.is_open("sj-0114", local(2026, 11, 24, 10, 0))


def test_naive_datetime_is_refused(router: Router) -> None:
    with pytest.raises(ValueError, match="tidszon"):
        router.is_open("intake-0114", datetime(2026, 11, 24, 10, 0))
