"""Every routing rule: who receives the report, with which rule id, and the Swedish explanation."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

import pytest
from pydantic import ValidationError

from routing import Decision, Router, RoutingRequest, UnknownCodeError
from routing.hours import TZ

OFFICE = datetime(2026, 11, 24, 10, 0, tzinfo=TZ)  # Tuesday
EVENING = datetime(2026, 11, 24, 19, 0, tzinfo=TZ)

# domain.md 7.1 and 7.2.
STOCKHOLM_COUNTY = (
    "0114 0115 0117 0120 0123 0125 0126 0127 0128 0136 0138 0139 0140 "
    "0160 0162 0163 0180 0181 0182 0183 0184 0186 0187 0188 0191 0192"
).split()
VASTMANLAND = "1904 1907 1960 1961 1962 1980 1981 1982 1983 1984".split()

# domain.md 3.4: the groupings found; everything else has its own default jour.
SHARED_SOCIALJOUR = {
    "0163": "sj-nordvast",
    "0183": "sj-nordvast",
    "0191": "sj-nordvast",
    "0162": "sj-nordost",
    "0115": "sj-nordost",
    "0120": "sj-sydost",
    "0182": "sj-sydost",
    "0138": "sj-sydost",
    "0181": "sj-sodertalje",
    "1980": "sj-vasteras",
    "1961": "sj-vasteras",
}

DISTRICTS = {
    "sdf-bromma": "Bromma",
    "sdf-enskede-arsta-vantor": "Enskede-Årsta-Vantör",
    "sdf-farsta": "Farsta",
    "sdf-hagersten-alvsjo": "Hägersten-Älvsjö",
    "sdf-hasselby-vallingby": "Hässelby-Vällingby",
    "sdf-kungsholmen": "Kungsholmen",
    "sdf-norrmalm": "Norrmalm",
    "sdf-rinkeby-kista": "Rinkeby-Kista",
    "sdf-skarpnack": "Skarpnäck",
    "sdf-skarholmen": "Skärholmen",
    "sdf-spanga-tensta": "Spånga-Tensta",
    "sdf-sodermalm": "Södermalm",
    "sdf-ostermalm": "Östermalm",
}


def _ids(decision: Decision) -> list[str]:
    return [decision.unit_id, *(a.unit_id for a in decision.also)]


# --- residence and fallbacks -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "municipality", "unit_id", "rule"),
    [
        ({"municipality": "0114"}, "0114", "intake-0114", "R-RESIDENCE"),
        (
            {"municipality": "0114", "staying_municipality": "1980"},
            "0114",
            "intake-0114",
            "R-RESIDENCE",
        ),
        ({"staying_municipality": "1980"}, "1980", "intake-1980", "R-STAYING-FALLBACK"),
        ({}, "0180", "intake-0180", "R-STOCKHOLM-DISTRICT-UNKNOWN"),
        ({"clinic_municipality": "1980"}, "1980", "intake-1980", "R-CLINIC-FALLBACK"),
        ({"municipality": "2584"}, "2584", "intake-2584", "R-RESIDENCE"),  # Kiruna
        (
            {"municipality": "1280", "clinic_municipality": "1980"},
            "1280",
            "intake-1280",
            "R-RESIDENCE",
        ),
        (
            {"municipality": "", "staying_municipality": " "},
            "0180",
            "intake-0180",
            "R-STOCKHOLM-DISTRICT-UNKNOWN",
        ),
    ],
)
def test_responsible_municipality(
    route: Callable[..., Decision],
    fields: dict[str, str],
    municipality: str,
    unit_id: str,
    rule: str,
) -> None:
    d = route(**fields)
    assert (d.municipality, d.unit_id, d.rule) == (municipality, unit_id, rule)
    assert d.unit_kind == "intake"
    assert d.also == []


def test_clinic_fallback_explains(route: Callable[..., Decision]) -> None:
    d = route(clinic_municipality="1980")
    assert "Västerås (1980" in d.explanation
    assert "R-CLINIC-FALLBACK" in d.explanation


def test_other_county_is_routed_to_that_municipality(route: Callable[..., Decision]) -> None:
    d = route(municipality="2584", clinic_municipality="0180")
    assert (d.municipality, d.municipality_name) == ("2584", "Kiruna")
    assert "Norrbottens län" in d.explanation and "annat län" in d.explanation


def test_every_municipality_resolves(router: Router) -> None:
    for m in router.municipalities():
        req = RoutingRequest(municipality=m.code, clinic_municipality="0180", at=OFFICE)
        d = router.route(req)
        assert d.municipality == m.code
        assert d.unit_kind == "intake"
        assert d.email and d.email.endswith("@example.se")


# --- Stockholm city districts ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "district_id"),
    [(i, i) for i in DISTRICTS]
    + [(n, i) for i, n in DISTRICTS.items()]
    + [(n.upper(), i) for i, n in DISTRICTS.items()]
    + [(n.lower(), i) for i, n in DISTRICTS.items()],
)
def test_every_stockholm_district_by_id_and_name(
    route: Callable[..., Decision], given: str, district_id: str
) -> None:
    d = route(municipality="0180", district=given)
    assert (d.unit_kind, d.unit_id, d.rule) == ("district", district_id, "R-STOCKHOLM-DISTRICT")
    assert d.municipality == "0180"
    assert DISTRICTS[district_id] in d.explanation
    assert not d.phone_required


def test_router_lists_the_13_districts(router: Router) -> None:
    districts = router.districts()
    assert {d.id: d.name for d in districts} == DISTRICTS
    for d in districts:
        assert d.help_text.startswith("Vägledning")
        assert router.resolve_district(d.name) == d
        assert router.resolve_district(d.id.upper()) == d
    assert router.resolve_district("Hägersten-Liljeholmen") is None  # merged in 2020


def test_stockholm_district_out_of_hours_is_written_to_the_district(
    route: Callable[..., Decision],
) -> None:
    d = route(municipality="0180", district="Bromma", at=EVENING)
    assert (d.unit_kind, d.unit_id, d.rule) == ("district", "sdf-bromma", "R-STOCKHOLM-DISTRICT")
    assert (d.phone_required, d.written) == (False, True)
    assert d.opens_at is not None and d.opens_at.isoformat() == "2026-11-25T08:00:00+01:00"


def test_stockholm_district_acute_out_of_hours_calls_city_socialjour(
    route: Callable[..., Decision],
) -> None:
    d = route(municipality="0180", district="Bromma", at=EVENING, urgency="acute")
    assert (d.unit_kind, d.unit_id, d.rule) == ("socialjour", "sj-0180", "R-OUT-OF-HOURS")
    assert d.phone_required
    assert [(a.unit_id, a.rule, a.written) for a in d.also] == [
        ("sdf-bromma", "R-WRITTEN-NEXT-OPENING", True)
    ]


def test_unknown_stockholm_district_goes_to_city_intake_with_phone(
    route: Callable[..., Decision],
) -> None:
    d = route(municipality="0180")
    assert (d.unit_id, d.rule) == ("intake-0180", "R-STOCKHOLM-DISTRICT-UNKNOWN")
    assert d.phone_required and d.phone
    assert "stadsövergripande" in d.explanation


def test_district_is_ignored_outside_stockholm(route: Callable[..., Decision]) -> None:
    d = route(municipality="0114", district="Södermalm")
    assert d.unit_id == "intake-0114"
    assert "Södermalm" not in d.explanation


# --- county tables -----------------------------------------------------------------------------


@pytest.mark.parametrize("code", STOCKHOLM_COUNTY + VASTMANLAND)
def test_stockholm_and_vastmanland_have_intake_and_socialjour(router: Router, code: str) -> None:
    day = router.route(RoutingRequest(municipality=code, clinic_municipality=code, at=OFFICE))
    assert day.unit_kind == "intake"
    assert day.unit_id == f"intake-{code}"
    night = router.route(RoutingRequest(municipality=code, clinic_municipality=code, at=EVENING))
    assert (night.unit_kind, night.unit_id) == ("intake", f"intake-{code}")
    assert night.written and night.opens_at is not None
    assert night.opens_at.isoformat() == "2026-11-25T08:00:00+01:00"
    acute = router.route(
        RoutingRequest(municipality=code, clinic_municipality=code, at=EVENING, urgency="acute")
    )
    assert acute.unit_kind == "socialjour"
    assert acute.unit_id == SHARED_SOCIALJOUR.get(code, f"sj-{code}")
    assert acute.phone_required
    assert acute.also[0].unit_id == night.unit_id
    assert router.socialjour_for(code).id == acute.unit_id
    assert code in router.socialjour_for(code).municipalities


def test_socialjour_verification_flags(router: Router) -> None:
    assert router.socialjour_verified("0163")  # Nordväst [V]
    assert router.socialjour_verified("0162")  # Danderyd in Nordost [V]
    assert not router.socialjour_verified("0115")  # Vallentuna in Nordost [P]
    assert not router.socialjour_verified("0182")  # Sydost, 2014 source
    assert not router.socialjour_verified("0184")  # Solna [U]: own default jour
    assert router.unit("sj-nordvast").coverage_verified
    assert not router.unit("sj-nordost").coverage_verified


# --- acute, placed, unaccompanied --------------------------------------------------------------


def test_acute_in_office_hours_is_phone_first_with_number(route: Callable[..., Decision]) -> None:
    d = route(municipality="0114", urgency="acute")
    assert (d.unit_id, d.rule, d.phone_required) == ("intake-0114", "R-ACUTE-PHONE", True)
    assert d.phone and d.phone in d.explanation
    assert "ring" in d.explanation and "först" in d.explanation and "112" in d.explanation


def test_acute_out_of_hours_is_socialjour_by_phone(route: Callable[..., Decision]) -> None:
    d = route(municipality="1980", urgency="acute", at=EVENING)
    assert (d.unit_id, d.rule, d.phone_required) == ("sj-vasteras", "R-OUT-OF-HOURS", True)
    # R-ACUTE-PHONE is the office-hours rule; out of hours the jour call is R-OUT-OF-HOURS.
    assert "R-ACUTE-PHONE" not in d.explanation
    assert "Vid fara för liv eller hälsa: ring 112 först" in d.explanation


@pytest.mark.parametrize(
    ("fields", "also"),
    [
        ({"urgency": "acute", "staying_municipality": "1980"}, [("1980", "R-ACUTE-STAYING")]),
        ({"urgency": "not_acute", "staying_municipality": "1980"}, []),
        ({"urgency": "acute", "staying_municipality": "0114"}, []),
        ({"placed_by": "1980"}, [("1980", "R-PLACED-BY")]),
        ({"placed_by": "0114"}, []),
        (
            {"urgency": "acute", "staying_municipality": "1980", "placed_by": "0186"},
            [("1980", "R-ACUTE-STAYING"), ("0186", "R-PLACED-BY")],
        ),
        (
            {"urgency": "acute", "staying_municipality": "1980", "placed_by": "1980"},
            [("1980", "R-ACUTE-STAYING")],
        ),
    ],
)
def test_extra_recipients(
    route: Callable[..., Decision], fields: dict[str, str], also: list[tuple[str, str]]
) -> None:
    d = route(municipality="0114", **fields)
    assert d.municipality == "0114"
    assert [(a.municipality, a.rule) for a in d.also] == also
    for extra in d.also:
        assert extra.unit_id == f"intake-{extra.municipality}"
        assert extra.also == []
        assert extra.directory_version == d.directory_version
        if fields.get("urgency") == "acute":
            assert extra.phone_required


def test_placing_municipality_out_of_hours_gets_a_written_report(
    route: Callable[..., Decision],
) -> None:
    d = route(municipality="0114", placed_by="1980", at=EVENING)
    assert _ids(d) == ["intake-0114", "intake-1980"]
    assert [(x.rule, x.written, x.phone_required) for x in [d, *d.also]] == [
        ("R-RESIDENCE", True, False),
        ("R-PLACED-BY", True, False),
    ]
    assert all(x.opens_at and x.opens_at.isoformat() == "2026-11-25T08:00:00+01:00" for x in d.also)


def test_placing_municipality_acute_out_of_hours_gets_its_socialjour(
    route: Callable[..., Decision],
) -> None:
    d = route(municipality="0114", placed_by="1980", at=EVENING, urgency="acute")
    assert _ids(d) == ["sj-0114", "intake-0114", "sj-vasteras"]
    placed = d.also[1]
    assert placed.rule == "R-PLACED-BY"
    assert "R-OUT-OF-HOURS" in placed.explanation
    assert [(a.unit_id, a.rule) for a in placed.also] == [("intake-1980", "R-WRITTEN-NEXT-OPENING")]


@pytest.mark.parametrize(
    ("fields", "municipality", "rule"),
    [
        (
            {"assigned_municipality": "1980", "arrival_municipality": "0181"},
            "1980",
            "R-UNACCOMPANIED-ASSIGNED",
        ),
        ({"assigned_municipality": "1980"}, "1980", "R-UNACCOMPANIED-ASSIGNED"),
        ({"arrival_municipality": "0181"}, "0181", "R-UNACCOMPANIED-ARRIVAL"),
        (
            {"arrival_municipality": "0181", "municipality": "0114"},
            "0181",
            "R-UNACCOMPANIED-ARRIVAL",
        ),
        ({"municipality": "0114"}, "0114", "R-RESIDENCE"),
        ({"staying_municipality": "0186"}, "0186", "R-STAYING-FALLBACK"),
    ],
)
def test_unaccompanied(
    route: Callable[..., Decision], fields: dict[str, str], municipality: str, rule: str
) -> None:
    d = route(unaccompanied=True, **fields)
    assert (d.municipality, d.rule, d.unit_id) == (municipality, rule, f"intake-{municipality}")


def test_assigned_municipality_ignored_unless_unaccompanied(route: Callable[..., Decision]) -> None:
    d = route(municipality="0114", assigned_municipality="1980")
    assert (d.municipality, d.rule) == ("0114", "R-RESIDENCE")


# --- protected identity ------------------------------------------------------------------------


@pytest.mark.parametrize("district", ["Södermalm", "sdf-sodermalm", "Bromma", "no-such-district"])
@pytest.mark.parametrize("at", [OFFICE, EVENING], ids=["office", "evening"])
def test_protected_identity_never_uses_the_district(
    route: Callable[..., Decision], district: str, at: datetime
) -> None:
    d = route(municipality="0180", district=district, protected_identity=True, at=at)
    assert d.municipality == "0180"
    assert d.unit_kind != "district"
    assert d.unit_id == "intake-0180"
    assert d.phone_required
    assert d.rule == "R-PROTECTED-IDENTITY"
    assert (d.opens_at is None) is (at == OFFICE)
    acute = route(
        municipality="0180", district=district, protected_identity=True, at=at, urgency="acute"
    )
    assert acute.rule == ("R-ACUTE-PHONE" if at == OFFICE else "R-OUT-OF-HOURS")
    assert all(x.unit_kind != "district" and x.phone_required for x in [acute, *acute.also])
    dumped = json.dumps(
        [d.model_dump(mode="json"), acute.model_dump(mode="json")], ensure_ascii=False
    )
    for name in [*DISTRICTS.values(), *DISTRICTS, district]:
        assert name not in dumped
    assert "skyddade personuppgifter" in d.explanation


def test_protected_identity_routes_by_stated_municipality(route: Callable[..., Decision]) -> None:
    d = route(municipality="1980", protected_identity=True, clinic_municipality="0180")
    assert (d.municipality, d.unit_id, d.rule) == ("1980", "intake-1980", "R-PROTECTED-IDENTITY")
    assert d.phone_required and d.phone and d.phone in d.explanation


def test_protected_identity_without_stated_municipality_uses_clinic(
    route: Callable[..., Decision],
) -> None:
    d = route(protected_identity=True, clinic_municipality="1980")
    assert (d.municipality, d.rule, d.phone_required) == ("1980", "R-PROTECTED-IDENTITY", True)
    assert "R-CLINIC-FALLBACK" in d.explanation


def test_protected_identity_extra_recipients_need_phone(route: Callable[..., Decision]) -> None:
    d = route(municipality="0114", placed_by="0180", district="Farsta", protected_identity=True)
    assert [a.unit_id for a in d.also] == ["intake-0180"]
    assert all(x.phone_required for x in [d, *d.also])
    assert "Farsta" not in d.model_dump_json()


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field",
    [
        "municipality",
        "staying_municipality",
        "clinic_municipality",
        "placed_by",
        "assigned_municipality",
        "arrival_municipality",
    ],
)
@pytest.mark.parametrize("code", ["9999", "180", "0100", "abcd"])
def test_unknown_codes_raise(router: Router, field: str, code: str) -> None:
    fields: dict[str, object] = {"clinic_municipality": "0180", "at": OFFICE, "unaccompanied": True}
    fields[field] = code
    with pytest.raises(UnknownCodeError) as info:
        router.route(RoutingRequest(**fields))  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    assert (info.value.field, info.value.code) == (field, code)
    assert "Okänd kommunkod" in str(info.value)


def test_unknown_district_raises(route: Callable[..., Decision]) -> None:
    with pytest.raises(UnknownCodeError) as info:
        route(municipality="0180", district="Liljeholmen-Älvsjö")
    assert info.value.field == "district"
    assert "Södermalm" in info.value.message


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValidationError, match="tidszon"):
        RoutingRequest(clinic_municipality="0180", at=datetime(2026, 11, 24, 10, 0))


def test_unknown_request_key_is_refused() -> None:
    with pytest.raises(ValidationError):
        RoutingRequest(clinic_municipality="0180", at=OFFICE, placedby="0114")  # type: ignore[call-arg]


def test_decision_carries_channel_and_version(
    route: Callable[..., Decision], router: Router
) -> None:
    d = route(municipality="0114")
    assert d.email == "intake-0114@example.se"
    assert d.portal_group == "intake-0114"
    assert d.channel_verified is False
    assert d.directory_version == router.directory_version
    assert d.municipality_name == "Upplands Väsby"
    assert d.explanation.endswith("Tillämpade regler: R-RESIDENCE.")


def test_siblings_route_independently(router: Router) -> None:
    """One decision per child: siblings in two municipalities go to two units."""
    a = router.route(
        RoutingRequest(
            municipality="0180", district="Farsta", clinic_municipality="0180", at=OFFICE
        )
    )
    b = router.route(RoutingRequest(municipality="1980", clinic_municipality="0180", at=OFFICE))
    assert (a.unit_id, b.unit_id) == ("sdf-farsta", "intake-1980")
