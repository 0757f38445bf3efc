"""The time-of-day routine (domain.md 3.4, 10.5): written reports wait for the office to open,
socialjours take acute calls by phone, and 112 when the jour is closed.

Expected ``opens_at`` values are written out as ISO 8601 strings with their offset, so a
wrong offset on a daylight-saving weekend fails as clearly as a wrong day.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from routing import RULES, Decision, DirectoryError, Router, RoutingRequest
from routing.channels import EXAMPLE_CHANNELS
from routing.hours import TZ, describe_opens_at

FAKE = "000-000 00 00"  # every phone number in the example channels file


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=TZ)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _applied(d: Decision) -> list[str]:
    """The rule ids listed at the end of the explanation."""
    tail = d.explanation.rsplit("Tillämpade regler: ", 1)[1].rstrip(".")
    return tail.split(", ")


# --- not acute: always the written channel, with the next opening -----------------------------

# (what, request fields, at, unit_id, rule, opens_at)
NOT_ACUTE = [
    ("weekday 17:30", {}, local(2026, 11, 24, 17, 30), None, None, "2026-11-25T08:00:00+01:00"),
    ("weekday 10:00", {}, local(2026, 11, 24, 10, 0), None, None, None),
    ("weekday 07:00", {}, local(2026, 11, 24, 7, 0), None, None, "2026-11-24T08:00:00+01:00"),
    ("friday night", {}, local(2026, 11, 27, 23, 0), None, None, "2026-11-30T08:00:00+01:00"),
    # Christmas 2026: 23 Wed, 24 julafton (eve), 25 juldagen, 26 annandag (Sat), 27 Sun.
    ("dec 23 17:00", {}, local(2026, 12, 23, 17, 0), None, None, "2026-12-28T08:00:00+01:00"),
    ("julafton", {}, local(2026, 12, 24, 10, 0), None, None, "2026-12-28T08:00:00+01:00"),
    ("juldagen", {}, local(2026, 12, 25, 10, 0), None, None, "2026-12-28T08:00:00+01:00"),
    ("dec 27 sun", {}, local(2026, 12, 27, 20, 0), None, None, "2026-12-28T08:00:00+01:00"),
    # Easter 2026: skärtorsdag 2 Apr, långfredag 3, påskdagen 5, annandag påsk 6 Apr.
    ("skärtorsdag", {}, local(2026, 4, 2, 17, 0), None, None, "2026-04-07T08:00:00+02:00"),
    ("långfredag", {}, local(2026, 4, 3, 10, 0), None, None, "2026-04-07T08:00:00+02:00"),
    ("annandag påsk", {}, local(2026, 4, 6, 12, 0), None, None, "2026-04-07T08:00:00+02:00"),
    # Midsummer 2026: midsommarafton Fri 19 June (eve), midsommardagen Sat 20.
    ("midsummer thu", {}, local(2026, 6, 18, 17, 0), None, None, "2026-06-22T08:00:00+02:00"),
    ("midsommarafton", {}, local(2026, 6, 19, 10, 0), None, None, "2026-06-22T08:00:00+02:00"),
    # New Year: 31 Dec 2025 Wed -> 1 Jan Thu -> Fri 2 Jan; 31 Dec 2026 Thu -> Mon 4 Jan 2027.
    ("nyårsafton 25", {}, local(2025, 12, 31, 10, 0), None, None, "2026-01-02T08:00:00+01:00"),
    ("nyårsafton 26", {}, local(2026, 12, 31, 10, 0), None, None, "2027-01-04T08:00:00+01:00"),
    ("dec 30 17:00", {}, local(2026, 12, 30, 17, 0), None, None, "2027-01-04T08:00:00+01:00"),
    # Summer time starts Sun 29 March 2026: a report on Friday (+01:00) opens at +02:00.
    ("dst spring fri", {}, local(2026, 3, 27, 17, 0), None, None, "2026-03-30T08:00:00+02:00"),
    ("dst spring sun", {}, local(2026, 3, 29, 1, 30), None, None, "2026-03-30T08:00:00+02:00"),
    ("dst spring sun2", {}, local(2026, 3, 29, 3, 30), None, None, "2026-03-30T08:00:00+02:00"),
    # Summer time ends Sun 25 October 2026: a report on Friday (+02:00) opens at +01:00.
    ("dst autumn fri", {}, local(2026, 10, 23, 17, 0), None, None, "2026-10-26T08:00:00+01:00"),
    ("dst autumn sun", {}, local(2026, 10, 25, 2, 30), None, None, "2026-10-26T08:00:00+01:00"),
    # Stockholm city: the district administration's written channel, same opening.
    (
        "district evening",
        {"municipality": "0180", "district": "Södermalm"},
        local(2026, 12, 23, 17, 0),
        "sdf-sodermalm",
        "R-STOCKHOLM-DISTRICT",
        "2026-12-28T08:00:00+01:00",
    ),
    # Hallstahammar at night: its intake, never Västerås' socialjour.
    (
        "hallstahammar night",
        {"municipality": "1961"},
        local(2026, 11, 24, 2, 0),
        "intake-1961",
        None,
        "2026-11-24T08:00:00+01:00",
    ),
]


@pytest.mark.parametrize(
    ("fields", "at", "unit_id", "rule", "opens_at"),
    [case[1:] for case in NOT_ACUTE],
    ids=[case[0] for case in NOT_ACUTE],
)
def test_not_acute_goes_to_the_written_channel_with_opens_at(
    route: Callable[..., Decision],
    fields: dict[str, str],
    at: datetime,
    unit_id: str | None,
    rule: str | None,
    opens_at: str | None,
) -> None:
    fields = {"municipality": "0114", **fields}
    d = route(at=at, **fields)
    assert d.unit_id == (unit_id or f"intake-{fields['municipality']}")
    assert d.rule == (rule or "R-RESIDENCE")
    assert (d.phone_required, d.phone, d.written) == (False, FAKE, True)
    assert iso(d.opens_at) == opens_at
    assert d.also == []
    assert describe_opens_at(d.opens_at) in d.explanation
    assert ("R-WRITTEN-NEXT-OPENING" in _applied(d)) is (opens_at is not None)
    assert "socialjour" not in d.unit_kind


def test_dst_offsets_differ_across_the_two_weekends(route: Callable[..., Decision]) -> None:
    spring = route(municipality="0114", at=local(2026, 3, 27, 17, 0)).opens_at
    autumn = route(municipality="0114", at=local(2026, 10, 23, 17, 0)).opens_at
    assert spring is not None and autumn is not None
    assert spring.utcoffset() == timedelta(hours=2)
    assert autumn.utcoffset() == timedelta(hours=1)
    assert (spring.hour, autumn.hour) == (8, 8)  # 08:00 on the wall clock both times
    assert spring.tzinfo is not None and autumn.tzinfo is not None


def test_not_acute_is_never_the_socialjour_at_any_hour(router: Router) -> None:
    """Every hour of Christmas week 2026: the unit and rule never depend on the hour."""
    start = local(2026, 12, 21, 0, 0)
    for hour in range(0, 8 * 24):
        at = start + timedelta(hours=hour)
        d = router.route(RoutingRequest(municipality="1980", clinic_municipality="1980", at=at))
        assert (d.unit_id, d.rule, d.written, d.phone_required) == (
            "intake-1980",
            "R-RESIDENCE",
            True,
            False,
        ), at
        assert (d.opens_at is None) is router.is_open("intake-1980", at)
        if d.opens_at is not None:
            assert d.opens_at > at and router.is_open("intake-1980", d.opens_at)


@pytest.mark.parametrize(
    ("fields", "at", "rule", "opens_at"),
    [
        (
            {"municipality": "0180"},
            local(2026, 11, 24, 17, 30),
            "R-STOCKHOLM-DISTRICT-UNKNOWN",
            "2026-11-25T08:00:00+01:00",
        ),
        (
            {"municipality": "1980", "protected_identity": True},
            local(2026, 11, 24, 17, 30),
            "R-PROTECTED-IDENTITY",
            "2026-11-25T08:00:00+01:00",
        ),
        (
            {"municipality": "1980", "protected_identity": True},
            local(2026, 11, 24, 10, 0),
            "R-PROTECTED-IDENTITY",
            None,
        ),
    ],
    ids=["district-unknown-evening", "protected-evening", "protected-office"],
)
def test_phone_stays_required_where_other_rules_require_it(
    route: Callable[..., Decision],
    fields: dict[str, Any],
    at: datetime,
    rule: str,
    opens_at: str | None,
) -> None:
    d = route(at=at, **fields)
    assert (d.unit_id, d.rule, d.phone_required, d.phone, d.written) == (
        f"intake-{fields['municipality']}",
        rule,
        True,
        FAKE,
        True,
    )
    assert iso(d.opens_at) == opens_at
    if opens_at:
        assert "när enheten öppnar" in d.explanation


# --- acute in office hours: the office by phone first, written to the same unit ---------------


@pytest.mark.parametrize(
    ("fields", "at", "unit_id", "rule"),
    [
        ({"municipality": "0114"}, local(2026, 11, 24, 10, 0), "intake-0114", "R-ACUTE-PHONE"),
        ({"municipality": "1980"}, local(2026, 11, 24, 16, 29), "intake-1980", "R-ACUTE-PHONE"),
        (
            {"municipality": "0180", "district": "Farsta"},
            local(2026, 11, 24, 8, 0),
            "sdf-farsta",
            "R-ACUTE-PHONE",
        ),
        (
            {"municipality": "0180", "protected_identity": True},
            local(2026, 11, 24, 10, 0),
            "intake-0180",
            "R-ACUTE-PHONE",
        ),
        # Friday 15:00: Södertälje's jour is already open (14:00), but the office still is.
        ({"municipality": "0181"}, local(2026, 11, 27, 15, 0), "intake-0181", "R-ACUTE-PHONE"),
    ],
    ids=["0114", "1980-16:29", "district", "protected", "0181-fri-15"],
)
def test_acute_in_office_hours_phones_the_office_and_writes_to_it(
    route: Callable[..., Decision],
    fields: dict[str, Any],
    at: datetime,
    unit_id: str,
    rule: str,
) -> None:
    d = route(at=at, urgency="acute", **fields)
    assert (d.unit_id, d.rule, d.phone_required, d.phone, d.written, d.opens_at) == (
        unit_id,
        rule,
        True,
        FAKE,
        True,
        None,
    )
    assert d.also == []
    assert "ring först" in d.explanation and "samma enhet" in d.explanation


# --- acute out of hours: the socialjour by phone, the written report to the intake -------------

# (id, fields, at, jour, phone, jour opens_at, hours_verified, office, office opens_at)
ACUTE_OUT = [
    (
        "0114 evening, jour hours unknown",
        {"municipality": "0114"},
        local(2026, 11, 24, 19, 0),
        "sj-0114",
        FAKE,
        None,
        False,
        "intake-0114",
        "2026-11-25T08:00:00+01:00",
    ),
    (
        "västerås evening, jour open",
        {"municipality": "1980"},
        local(2026, 11, 24, 19, 0),
        "sj-vasteras",
        FAKE,
        None,
        True,
        "intake-1980",
        "2026-11-25T08:00:00+01:00",
    ),
    (
        "västerås tuesday 02:00, jour closed",
        {"municipality": "1980"},
        local(2026, 11, 24, 2, 0),
        "sj-vasteras",
        "112",
        "2026-11-24T16:30:00+01:00",
        True,
        "intake-1980",
        "2026-11-24T08:00:00+01:00",
    ),
    (
        "hallstahammar tuesday 02:00, shared jour closed",
        {"municipality": "1961"},
        local(2026, 11, 24, 2, 0),
        "sj-vasteras",
        "112",
        "2026-11-24T16:30:00+01:00",
        True,
        "intake-1961",
        "2026-11-24T08:00:00+01:00",
    ),
    (
        "västerås friday 00:30, jour open past midnight",
        {"municipality": "1980"},
        local(2026, 11, 28, 0, 30),
        "sj-vasteras",
        FAKE,
        None,
        True,
        "intake-1980",
        "2026-11-30T08:00:00+01:00",
    ),
    (
        "västerås julafton 10:00, holiday hours from 15:00",
        {"municipality": "1980"},
        local(2026, 12, 24, 10, 0),
        "sj-vasteras",
        "112",
        "2026-12-24T15:00:00+01:00",
        True,
        "intake-1980",
        "2026-12-28T08:00:00+01:00",
    ),
    (
        "södertälje tuesday 03:00, jour closed",
        {"municipality": "0181"},
        local(2026, 11, 24, 3, 0),
        "sj-sodertalje",
        "112",
        "2026-11-24T16:00:00+01:00",
        True,
        "intake-0181",
        "2026-11-24T08:00:00+01:00",
    ),
    (
        "södertälje dst sunday 03:30 CEST, jour closed",
        {"municipality": "0181"},
        local(2026, 3, 29, 3, 30),
        "sj-sodertalje",
        "112",
        "2026-03-29T16:00:00+02:00",
        True,
        "intake-0181",
        "2026-03-30T08:00:00+02:00",
    ),
    (
        "västerås dst sunday 10:00 CET, jour closed",
        {"municipality": "1980"},
        local(2026, 10, 25, 10, 0),
        "sj-vasteras",
        "112",
        "2026-10-25T15:00:00+01:00",
        True,
        "intake-1980",
        "2026-10-26T08:00:00+01:00",
    ),
    (
        "stockholm district evening",
        {"municipality": "0180", "district": "Bromma"},
        local(2026, 11, 24, 19, 0),
        "sj-0180",
        FAKE,
        None,
        False,
        "sdf-bromma",
        "2026-11-25T08:00:00+01:00",
    ),
]


@pytest.mark.parametrize(
    (
        "fields",
        "at",
        "jour",
        "phone",
        "jour_opens",
        "hours_verified",
        "office",
        "office_opens",
    ),
    [case[1:] for case in ACUTE_OUT],
    ids=[case[0] for case in ACUTE_OUT],
)
def test_acute_out_of_hours_calls_the_socialjour_and_writes_to_the_office(
    route: Callable[..., Decision],
    fields: dict[str, str],
    at: datetime,
    jour: str,
    phone: str,
    jour_opens: str | None,
    hours_verified: bool,
    office: str,
    office_opens: str,
) -> None:
    d = route(at=at, urgency="acute", **fields)
    # The example channels give every jour an e-mail, so the jour also gets it in writing.
    assert (d.unit_kind, d.unit_id, d.rule, d.phone_required, d.phone, d.written) == (
        "socialjour",
        jour,
        "R-OUT-OF-HOURS",
        True,
        phone,
        True,
    )
    assert iso(d.opens_at) == jour_opens
    assert d.hours_verified is hours_verified
    assert len(d.also) == 1
    copy = d.also[0]
    assert (copy.unit_id, copy.rule, copy.phone_required, copy.phone, copy.written) == (
        office,
        "R-WRITTEN-NEXT-OPENING",
        False,
        FAKE,
        True,
    )
    assert iso(copy.opens_at) == office_opens
    assert copy.also == []
    assert describe_opens_at(copy.opens_at) in copy.explanation
    assert describe_opens_at(copy.opens_at) in d.explanation
    closed = phone == "112"
    assert ("R-SOCIALJOUR-CLOSED-112" in _applied(d)) is closed
    if closed:
        assert "ring 112 och begär socialjouren via SOS Alarm" in d.explanation
    assert ("inte verifierade (saknas i katalogen)" in d.explanation) is (not hours_verified)


def test_vasteras_0200_tuesday_is_112(route: Callable[..., Decision]) -> None:
    """The brief's example: Västerås (1980), acute, 02:00 on a Tuesday: the jour closed at 00:00."""
    d = route(municipality="1980", urgency="acute", at=local(2026, 11, 24, 2, 0))
    assert (d.unit_id, d.phone, d.rule) == ("sj-vasteras", "112", "R-OUT-OF-HOURS")
    assert _applied(d) == ["R-RESIDENCE", "R-OUT-OF-HOURS", "R-SOCIALJOUR-CLOSED-112"]
    assert "ring 112 och begär socialjouren via SOS Alarm" in d.explanation
    assert "öppnar igen tisdag 24 november kl. 16:30" in d.explanation


@pytest.mark.parametrize(
    ("fields", "calls"),
    [
        # Protected identity: phone on the written copy too (to be made when the office opens).
        ({"municipality": "1980", "protected_identity": True}, [True, True]),
        # Unknown Stockholm district: the city-wide intake must be phoned as well.
        ({"municipality": "0180"}, [True, True]),
        ({"municipality": "1980"}, [True, False]),
    ],
    ids=["protected", "district-unknown", "plain"],
)
def test_written_copy_needs_a_phone_only_where_other_rules_say_so(
    route: Callable[..., Decision], fields: dict[str, Any], calls: list[bool]
) -> None:
    d = route(urgency="acute", at=local(2026, 11, 24, 19, 0), **fields)
    assert [x.phone_required for x in [d, *d.also]] == calls
    assert d.also[0].rule == "R-WRITTEN-NEXT-OPENING"
    assert d.also[0].opens_at is not None


# --- channels: a jour without e-mail is a phone step only; its own number ---------------------


@pytest.fixture
def phone_only_router(tmp_path: Path) -> Router:
    """Jours with a phone but no e-mail; intakes with e-mail; distinct numbers per unit."""
    path = tmp_path / "channels.toml"
    path.write_text(
        '[units.sj-vasteras]\nphone = "021-000 00 01"\n'
        '[units.sj-0114]\nphone = "08-000 00 02"\n'
        '[units.intake-1980]\nemail = "mottagning@vasteras.example.se"\nphone = "021-000 00 03"\n'
        '[units.intake-0114]\nemail = "mottagning@vasby.example.se"\nphone = "08-000 00 04"\n',
        encoding="utf-8",
    )
    return Router(channels_path=path)


@pytest.mark.parametrize(
    ("municipality", "at", "jour", "phone", "hours_verified", "office_phone"),
    [
        ("1980", local(2026, 11, 24, 19, 0), "sj-vasteras", "021-000 00 01", True, "021-000 00 03"),
        ("1980", local(2026, 11, 24, 2, 0), "sj-vasteras", "112", True, "021-000 00 03"),
        ("0114", local(2026, 11, 24, 19, 0), "sj-0114", "08-000 00 02", False, "08-000 00 04"),
        ("0114", local(2026, 11, 24, 2, 0), "sj-0114", "08-000 00 02", False, "08-000 00 04"),
    ],
    ids=["vasteras-open", "vasteras-closed", "unknown-evening", "unknown-night"],
)
def test_jour_without_email_is_phone_only(
    phone_only_router: Router,
    municipality: str,
    at: datetime,
    jour: str,
    phone: str,
    hours_verified: bool,
    office_phone: str,
) -> None:
    d = phone_only_router.route(
        RoutingRequest(
            municipality=municipality, clinic_municipality="0180", urgency="acute", at=at
        )
    )
    assert (d.unit_id, d.phone, d.written, d.phone_required, d.email) == (
        jour,
        phone,
        False,
        True,
        None,
    )
    assert d.hours_verified is hours_verified
    assert "ingen skriftlig kanal" in d.explanation
    copy = d.also[0]
    assert (copy.unit_id, copy.written, copy.phone, copy.phone_required) == (
        f"intake-{municipality}",
        True,
        office_phone,
        False,
    )
    assert copy.email is not None


def test_unknown_jour_hours_use_its_own_number_and_say_unverified(
    phone_only_router: Router,
) -> None:
    at = local(2026, 11, 24, 2, 0)
    req = RoutingRequest(municipality="0114", clinic_municipality="0114", urgency="acute", at=at)
    d = phone_only_router.route(req)
    assert (d.unit_id, d.phone, d.opens_at, d.hours_verified) == (
        "sj-0114",
        "08-000 00 02",
        None,
        False,
    )
    assert "Öppettiderna för Socialjouren för Upplands Väsby är inte verifierade" in d.explanation
    assert "R-SOCIALJOUR-CLOSED-112" not in _applied(d)


# --- further recipients -----------------------------------------------------------------------


def test_further_recipients_get_the_same_time_of_day_treatment(
    route: Callable[..., Decision],
) -> None:
    """Acute Tuesday 02:00, child in Upplands Väsby, staying in Södertälje, placed by Västerås."""
    d = route(
        municipality="0114",
        staying_municipality="0181",
        placed_by="1980",
        urgency="acute",
        at=local(2026, 11, 24, 2, 0),
    )
    rows = [
        (d.unit_id, d.rule, d.phone, d.written, iso(d.opens_at)),
        *[(a.unit_id, a.rule, a.phone, a.written, iso(a.opens_at)) for a in d.also],
    ]
    assert rows == [
        ("sj-0114", "R-OUT-OF-HOURS", FAKE, True, None),
        ("intake-0114", "R-WRITTEN-NEXT-OPENING", FAKE, True, "2026-11-24T08:00:00+01:00"),
        ("sj-sodertalje", "R-ACUTE-STAYING", "112", True, "2026-11-24T16:00:00+01:00"),
        ("sj-vasteras", "R-PLACED-BY", "112", True, "2026-11-24T16:30:00+01:00"),
    ]
    for extra, office in ((d.also[1], "intake-0181"), (d.also[2], "intake-1980")):
        assert [(a.unit_id, a.rule, a.written, iso(a.opens_at)) for a in extra.also] == [
            (office, "R-WRITTEN-NEXT-OPENING", True, "2026-11-24T08:00:00+01:00")
        ]
        assert "R-SOCIALJOUR-CLOSED-112" in _applied(extra)


@pytest.mark.parametrize(
    ("at", "opens_at"),
    [
        (local(2026, 11, 24, 10, 0), None),
        (local(2026, 12, 23, 17, 0), "2026-12-28T08:00:00+01:00"),
    ],
)
def test_placing_municipality_not_acute_gets_its_written_copy(
    route: Callable[..., Decision], at: datetime, opens_at: str | None
) -> None:
    d = route(municipality="0114", placed_by="1980", at=at)
    placed = d.also[0]
    assert (placed.unit_id, placed.rule, placed.phone_required, placed.written) == (
        "intake-1980",
        "R-PLACED-BY",
        False,
        True,
    )
    assert iso(placed.opens_at) == opens_at == iso(d.opens_at)


def test_every_rule_named_is_documented(route: Callable[..., Decision]) -> None:
    """Every rule id a decision carries or lists is in RULES, with a Swedish text."""
    cases = [
        {"municipality": "0114", "at": local(2026, 11, 24, 17, 30)},
        {"municipality": "1980", "urgency": "acute", "at": local(2026, 11, 24, 2, 0)},
        {"municipality": "0114", "urgency": "acute", "placed_by": "1980"},
    ]
    seen: set[str] = set()
    for fields in cases:
        d = route(**fields)
        stack = [d]
        while stack:
            x = stack.pop()
            assert x.rule in RULES
            seen |= set(_applied(x))
            stack.extend(x.also)
    assert seen <= set(RULES)
    assert {"R-WRITTEN-NEXT-OPENING", "R-SOCIALJOUR-CLOSED-112", "R-ACUTE-PHONE"} <= seen


# --- Router.next_open -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unit_id", "at", "expected"),
    [
        ("intake-0114", local(2026, 11, 24, 10, 0), None),
        ("intake-0114", local(2026, 11, 24, 16, 30), "2026-11-25T08:00:00+01:00"),
        ("intake-0114", local(2026, 3, 28, 12, 0), "2026-03-30T08:00:00+02:00"),
        ("intake-0114", local(2026, 10, 24, 12, 0), "2026-10-26T08:00:00+01:00"),
        ("sj-vasteras", local(2026, 11, 24, 10, 0), "2026-11-24T16:30:00+01:00"),
        ("sj-vasteras", local(2026, 11, 24, 23, 59), None),
        ("sj-vasteras", local(2026, 11, 25, 0, 0), "2026-11-25T16:30:00+01:00"),
        ("sj-vasteras", local(2026, 11, 28, 0, 59), None),  # Friday's shift runs to 01:00
        ("sj-vasteras", local(2026, 11, 28, 1, 0), "2026-11-28T15:00:00+01:00"),  # Saturday
        ("sj-vasteras", local(2026, 3, 29, 10, 0), "2026-03-29T15:00:00+02:00"),
        ("sj-sodertalje", local(2026, 3, 29, 3, 0), "2026-03-29T16:00:00+02:00"),
        ("sj-sodertalje", local(2026, 10, 25, 2, 30), "2026-10-25T16:00:00+01:00"),
        # Unknown hours: assumed reachable when the default office hours are closed.
        ("sj-0114", local(2026, 11, 24, 19, 0), None),
        ("sj-0114", local(2026, 11, 24, 10, 0), "2026-11-24T16:30:00+01:00"),
    ],
)
def test_next_open(router: Router, unit_id: str, at: datetime, expected: str | None) -> None:
    got = router.next_open(unit_id, at)
    assert iso(got) == expected
    assert (got is None) is router.is_open(unit_id, at)
    if got is not None:
        assert router.is_open(unit_id, got)
        assert not router.is_open(unit_id, got - timedelta(minutes=1))


def test_next_open_refuses_naive_time(router: Router) -> None:
    with pytest.raises(ValueError, match="tidszon"):
        router.next_open("intake-0114", datetime(2026, 11, 24, 10, 0))


def _with_hours(data_copy: Path, extra: str, office_extra: str = "") -> Router:
    path = data_copy / "hours.toml"
    text = path.read_text(encoding="utf-8")
    if office_extra:
        text = text.replace("[office_default]\n", f"[office_default]\n{office_extra}\n", 1)
    path.write_text(text + extra, encoding="utf-8")
    return Router(channels_path=EXAMPLE_CHANNELS, data_dir=data_copy)


def test_opening_inside_the_spring_gap_moves_past_it(data_copy: Path) -> None:
    """02:30 does not exist on 29 March 2026; the unit opens at the first real minute after."""
    router = _with_hours(data_copy, '\n[[unit]]\nid = "sj-0114"\nsun = ["02:30-06:00"]\n')
    got = router.next_open("sj-0114", local(2026, 3, 28, 23, 0))
    assert iso(got) == "2026-03-29T03:30:00+02:00"
    autumn = router.next_open("sj-0114", local(2026, 10, 24, 23, 0))
    assert iso(autumn) == "2026-10-25T02:30:00+02:00"  # the first 02:30 of the two


# --- half days ----------------------------------------------------------------------------------


@pytest.fixture
def half_day_router(data_copy: Path) -> Router:
    """The shipped data with half days 08:00-12:00 on [office_default]."""
    return _with_hours(data_copy, "", office_extra='half_day = ["08:00-12:00"]')


@pytest.mark.parametrize(
    ("at", "opens_at"),
    [
        # Mon 5 Jan 2026, the day before Trettondedag jul (Tue): half day.
        (local(2026, 1, 5, 11, 59), None),
        (local(2026, 1, 5, 12, 0), "2026-01-07T08:00:00+01:00"),
        (local(2026, 1, 5, 13, 30), "2026-01-07T08:00:00+01:00"),
        # Wed 23 Dec 2026, the day before julafton (observed eve): half day.
        (local(2026, 12, 23, 13, 30), "2026-12-28T08:00:00+01:00"),
        # Thu 30 Apr 2026, before Första maj (Fri): half day, opens Monday at summer time.
        (local(2026, 4, 30, 13, 30), "2026-05-04T08:00:00+02:00"),
        # Fri 30 Oct 2026, before Alla helgons dag (Sat 31 Oct): half day.
        (local(2026, 10, 30, 13, 30), "2026-11-02T08:00:00+01:00"),
        # Thu 18 June 2026, before midsommarafton: half day.
        (local(2026, 6, 18, 13, 30), "2026-06-22T08:00:00+02:00"),
        # Ordinary days keep full hours.
        (local(2026, 1, 7, 13, 30), None),
        (local(2026, 11, 27, 13, 30), None),  # Friday before an ordinary weekend
    ],
)
def test_half_day_closes_at_noon_before_a_holiday(
    half_day_router: Router, at: datetime, opens_at: str | None
) -> None:
    req = RoutingRequest(municipality="0114", clinic_municipality="0114", at=at)
    d = half_day_router.route(req)
    assert (d.unit_id, d.rule, d.phone_required, d.phone, d.written) == (
        "intake-0114",
        "R-RESIDENCE",
        False,
        FAKE,
        True,
    )
    assert iso(d.opens_at) == opens_at
    acute = half_day_router.route(req.model_copy(update={"urgency": "acute"}))
    assert acute.unit_kind == ("intake" if opens_at is None else "socialjour")
    if opens_at is not None:
        assert iso(acute.also[0].opens_at) == opens_at
        assert "dag före helgdag 08:00–12:00" in d.explanation


def test_half_day_per_unit_replaces_the_default(data_copy: Path) -> None:
    router = _with_hours(
        data_copy,
        '\n[[unit]]\nid = "intake-0114"\nverified = true\n'
        + "".join(f'{k} = ["08:00-16:00"]\n' for k in ("mon", "tue", "wed", "thu", "fri"))
        + 'half_day = ["08:00-13:00"]\n',
    )
    before_holiday = local(2026, 1, 5, 12, 30)
    assert router.is_open("intake-0114", before_holiday)
    assert not router.is_open("intake-0114", before_holiday.replace(hour=13))
    assert router.is_open("intake-0115", before_holiday.replace(hour=13))  # default: no half day
    assert router.unit("intake-0114").hours_verified
    d = router.route(
        RoutingRequest(municipality="0114", clinic_municipality="0114", at=local(2026, 1, 5, 14))
    )
    assert iso(d.opens_at) == "2026-01-07T08:00:00+01:00"
    assert d.hours_verified is True


def test_shipped_data_has_no_half_days(router: Router) -> None:
    assert router.directory.office_default.half_day is None
    assert all(s.half_day is None for s in router.directory.schedules.values())
    day_before_holiday = local(2026, 1, 5, 15, 0)
    assert router.is_open("intake-0114", day_before_holiday)


def test_hours_verified_follows_the_schedule_flag(router: Router) -> None:
    assert router.unit("sj-vasteras").hours_verified  # verified = true in hours.toml
    assert router.unit("sj-sodertalje").hours_verified
    assert not router.unit("sj-0114").hours_verified  # no schedule: unknown
    assert not router.unit("intake-0114").hours_verified  # default office hours: assumed
    assert not router.directory.office_default.verified


def _replace_line(path: Path, contains: str, new: str) -> int:
    lines = path.read_text(encoding="utf-8").split("\n")
    for i, line in enumerate(lines):
        if line.strip().startswith(contains):
            lines[i] = new
            path.write_text("\n".join(lines), encoding="utf-8")
            return i + 1
    raise AssertionError(f"{contains!r} not in {path}")


@pytest.mark.parametrize(
    ("contains", "new", "message"),
    [
        ('mon = ["08:00-16:30"]', 'half_day = ["8-12"]', "ogiltigt intervall"),
        ('mon = ["08:00-16:30"]', 'half_day = "08:00-12:00"', "lista med intervall"),
        ('mon = ["08:00-16:30"]', 'half_day = ["08:00-12:61"]', "klockslag"),
        ('mon = ["08:00-16:30"]', 'halfday = ["08:00-12:00"]', "okänt fält"),
        ("verified = false", 'verified = "nej"', "true eller false"),
        ('holiday = ["16:00-01:00"]', 'half_day = ["25:00-12:00"]', "klockslag"),
    ],
)
def test_broken_half_day_or_flag_names_file_and_line(
    data_copy: Path, contains: str, new: str, message: str
) -> None:
    line = _replace_line(data_copy / "hours.toml", contains, new)
    with pytest.raises(DirectoryError) as info:
        Router(channels_path=EXAMPLE_CHANNELS, data_dir=data_copy)
    text = str(info.value)
    assert "hours.toml" in text and f"rad {line}" in text and message in text


def test_schedule_that_never_opens_is_refused(data_copy: Path) -> None:
    path = data_copy / "hours.toml"
    path.write_text(
        path.read_text(encoding="utf-8") + '\n[[unit]]\nid = "intake-0114"\nholiday = []\n',
        encoding="utf-8",
    )
    with pytest.raises(DirectoryError, match="saknar öppettider") as info:
        Router(channels_path=EXAMPLE_CHANNELS, data_dir=data_copy)
    assert "intake-0114" in str(info.value)


def test_next_working_day_at_is_unchanged_for_the_lifecycle(router: Router) -> None:
    """The lifecycle's noon deadline still uses the calendar, not the half-day hours."""
    got = router.next_working_day_at("intake-0114", local(2026, 12, 23, 17, 0), time(12, 0))
    assert iso(got) == "2026-12-28T12:00:00+01:00"
    assert date(2026, 12, 28) == got.date()
