"""The age rule (issue 15, item 3): under 18 on the report date AND on the day of submission,
29 February counted per lag (1930:173) 1 §, youth-clinic guidance for 18–22 kept apart from
older adults, and a "+" with a 4-digit year refused as contradictory."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from orosflow.core.legal import age_rule
from orosflow.handover import validation
from orosflow.handover.validation import FormInvalid, age_on, validate_form

from factories import child, form, pnr

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # 11:00 in Stockholm, a Monday


def noon(day: str) -> datetime:
    """Midday in Stockholm on ``day``: far from midnight whatever the UTC offset."""
    return datetime.fromisoformat(day).replace(hour=11, tzinfo=UTC)


def child_errors(birth: date, *, now: datetime = NOW, **overrides: object) -> dict[str, str]:
    """Field → code for a form with one child born on ``birth``; {} when it is accepted."""
    data = form(children=[child(personal_number=pnr(birth))], **overrides)
    try:
        validate_form(data, now=now)
    except FormInvalid as exc:
        return {e.field: e.code for e in exc.errors}
    return {}


ADULT = {"children.0.personal_number": "child_adult"}


@pytest.mark.parametrize(
    ("birth", "report_date", "expected"),
    [
        # The attack: a back-dated report made a person born in 1995 a "child".
        (date(1995, 6, 1), "2010-01-01", {**ADULT, "report_date": "report_date_too_old"}),
        # Inside the 30-day window: 17 on the report date, 18 on the day of submission.
        (date(2008, 11, 20), "2026-11-13", ADULT),
        (date(2008, 11, 23), "2026-10-24", ADULT),  # oldest allowed report date, 18 today
        (date(2008, 11, 24), None, {}),  # 17 years 364 days on submission
        (date(2008, 11, 24), "2026-10-24", {}),  # ... and back-dated within the window
        (date(2008, 11, 23), None, ADULT),  # the 18th birthday is the day of submission
        (date(2008, 11, 22), None, ADULT),
    ],
    ids=[
        "backdated-2010-adult-1995",
        "17-on-report-date-18-on-submission",
        "oldest-report-date-18-today",
        "17y364d-today",
        "17y364d-backdated",
        "18-today",
        "18-yesterday",
    ],
)
def test_age_on_report_date_and_on_submission(
    birth: date, report_date: str | None, expected: dict[str, str]
) -> None:
    assert child_errors(birth, report_date=report_date) == expected


@pytest.mark.parametrize(
    ("birth", "day", "age"),
    [
        # Born on 29 February: a common year has no 29th, its last day of February counts.
        (date(2008, 2, 29), date(2024, 2, 28), 15),  # leap year: not yet
        (date(2008, 2, 29), date(2024, 2, 29), 16),  # leap year: the day itself
        (date(2008, 2, 29), date(2025, 2, 27), 16),
        (date(2008, 2, 29), date(2025, 2, 28), 17),  # common year: 28 February
        (date(2008, 2, 29), date(2026, 2, 28), 18),
        (date(2008, 2, 29), date(2026, 3, 1), 18),
        (date(2008, 2, 29), date(2028, 2, 28), 19),  # leap year again: 29 February
        (date(2008, 2, 29), date(2028, 2, 29), 20),
        # Neighbours of the leap day keep their own dates in both kinds of year.
        (date(2008, 2, 28), date(2026, 2, 28), 18),
        (date(2008, 3, 1), date(2026, 2, 28), 17),
        (date(2008, 3, 1), date(2026, 3, 1), 18),
        (date(2006, 3, 1), date(2024, 2, 29), 17),
        (date(2006, 3, 1), date(2024, 3, 1), 18),
    ],
)
def test_age_on_counts_29_february_as_28_february_in_common_years(
    birth: date, day: date, age: int
) -> None:
    assert age_on(birth, day) == age


@pytest.mark.parametrize(
    ("birth", "submitted", "expected"),
    [
        # 18th birthday of a 29 February child always falls in a common year (2008 + 18).
        (date(2008, 2, 29), "2026-02-27", {}),
        (date(2008, 2, 29), "2026-02-28", ADULT),
        (date(2008, 2, 29), "2026-03-01", ADULT),
        # 18th birthday in a leap year (2024), for children born around the leap day.
        (date(2006, 2, 28), "2024-02-27", {}),
        (date(2006, 2, 28), "2024-02-28", ADULT),
        (date(2006, 3, 1), "2024-02-29", {}),
        (date(2006, 3, 1), "2024-03-01", ADULT),
    ],
)
def test_leap_day_births_around_the_18th_birthday(
    birth: date, submitted: str, expected: dict[str, str]
) -> None:
    assert child_errors(birth, now=noon(submitted)) == expected


def test_leap_day_reading_is_data_with_its_source() -> None:
    rule = age_rule()
    assert rule.leap_day_birthday == "february_28"
    assert "1930:173" in rule.leap_day_source and rule.leap_day_url.startswith("https://")


def test_leap_day_reading_can_be_switched_to_1_march(monkeypatch: pytest.MonkeyPatch) -> None:
    march = age_rule().model_copy(update={"leap_day_birthday": "march_1"})
    monkeypatch.setattr(validation, "age_rule", lambda: march)
    assert age_on(date(2008, 2, 29), date(2026, 2, 28)) == 17
    assert age_on(date(2008, 2, 29), date(2026, 3, 1)) == 18


def guidance_for(birth: date) -> str:
    with pytest.raises(FormInvalid) as exc:
        validate_form(form(children=[child(personal_number=pnr(birth))]), now=NOW)
    (error,) = exc.value.errors
    assert error.code == "child_adult"
    return error.message


@pytest.mark.parametrize(
    ("birth", "kind"),
    [
        (date(2008, 11, 23), "youth"),  # 18 today
        (date(2006, 11, 24), "youth"),  # 19
        (date(2003, 11, 24), "youth"),  # 22 years 364 days
        (date(2003, 11, 23), "adult"),  # 23 today
        (date(1995, 6, 1), "adult"),  # 31
    ],
)
def test_youth_clinic_guidance_for_18_to_22_and_adult_guidance_from_23(
    birth: date, kind: str
) -> None:
    message = guidance_for(birth)
    youth = guidance_for(date(2008, 11, 23))
    adult = guidance_for(date(2003, 11, 23))
    assert youth != adult
    assert message == (youth if kind == "youth" else adult)
    # Both Swedish, both say why (under 18) and that contact goes by consent.
    for text in (youth, adult):
        assert "under 18 år" in text and "samtycke" in text and "sekretess" in text
    assert "18–22" in youth and "LVU" in youth and "20 år" in youth and "1990:52" in youth
    assert "LVU" not in adult and "äldre än ungdomsmottagningens" in adult


def test_plus_with_a_four_digit_year_is_refused_as_contradictory() -> None:
    data = form(children=[child(personal_number="20120315+1236")])
    with pytest.raises(FormInvalid) as exc:
        validate_form(data, now=NOW)
    (error,) = exc.value.errors
    assert error.field == "children.0.personal_number"
    assert error.code == "personal_number_separator_invalid"
    assert "motsägelsefullt" in error.message and "100 år" in error.message
    assert "20120315" not in error.message


def test_plus_with_a_two_digit_year_means_100_or_older() -> None:
    """10 digits with "+" is read as Skatteverket defines it (the personnummer library): born
    1912, so refused by the age rule with the adult guidance, never read as a 2012 child."""
    data = form(children=[child(personal_number="120315+1236")])
    with pytest.raises(FormInvalid) as exc:
        validate_form(data, now=NOW)
    (error,) = exc.value.errors
    assert (error.field, error.code) == ("children.0.personal_number", "child_adult")
    assert error.message == guidance_for(date(1995, 6, 1))
