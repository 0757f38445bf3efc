"""Validation rules: each gives a Swedish message for its field, valid input is normalised."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from orosflow.handover.validation import FormInvalid, validate_form

from factories import child, form, pnr

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # 11:00 in Stockholm


def errors_of(data: dict) -> dict[str, tuple[str, str]]:
    with pytest.raises(FormInvalid) as exc:
        validate_form(data, now=NOW)
    return {e.field: (e.code, e.message) for e in exc.value.errors}


def test_example_form_is_valid_and_normalised() -> None:
    result = validate_form(form(), now=NOW)
    assert result.children[0].personal_number == "201203151236"
    assert result.report_date == date(2026, 11, 23)


@pytest.mark.parametrize(
    "number",
    [
        pnr(date(2012, 3, 15)),
        pnr(date(2012, 3, 15), long=False),
        pnr(date(2012, 3, 15)).replace("-", ""),
        pnr(date(2012, 3, 15), long=False).replace("-", ""),
    ],
)
def test_personnummer_accepts_10_and_12_digits_with_or_without_separator(number: str) -> None:
    result = validate_form(form(children=[child(personal_number=number)]), now=NOW)
    assert result.children[0].personal_number == pnr(date(2012, 3, 15)).replace("-", "")


@pytest.mark.parametrize(
    "number",
    ["20120315-1237", "20120230-1234", "2012031", "abcdefghij", "20120315-12345"],
    ids=["checksum", "no-such-date", "too-short", "letters", "too-long"],
)
def test_invalid_personnummer_is_refused(number: str) -> None:
    errs = errors_of(form(children=[child(personal_number=number)]))
    code, message = errs["children.0.personal_number"]
    assert code == "personal_number_invalid"
    assert "inte giltigt" in message


def test_samordningsnummer_is_accepted_and_gives_birth_date() -> None:
    number = pnr(date(2011, 5, 4), coordination=True)
    assert number[6:8] == "64"
    result = validate_form(form(children=[child(personal_number=number)]), now=NOW)
    assert result.children[0].personal_number == number.replace("-", "")


def test_invalid_samordningsnummer_is_refused() -> None:
    good = pnr(date(2011, 5, 4), coordination=True)
    bad = good[:-1] + str((int(good[-1]) + 1) % 10)
    errs = errors_of(form(children=[child(personal_number=bad)]))
    assert errs["children.0.personal_number"][0] == "personal_number_invalid"


def test_child_turning_18_on_report_day_is_refused_with_explanation() -> None:
    errs = errors_of(form(children=[child(personal_number=pnr(date(2008, 11, 23)))]))
    code, message = errs["children.0.personal_number"]
    assert code == "child_adult"
    assert "under 18" in message and "samtycke" in message


def test_child_turning_18_tomorrow_is_covered() -> None:
    result = validate_form(form(children=[child(personal_number=pnr(date(2008, 11, 24)))]), now=NOW)
    assert len(result.children) == 1


def test_age_boundary_uses_stockholm_date_not_utc() -> None:
    # 23:30 UTC on the 22nd is already the 23rd in Stockholm: the child has turned 18.
    late = datetime(2026, 11, 22, 23, 30, tzinfo=UTC)
    with pytest.raises(FormInvalid) as exc:
        validate_form(form(children=[child(personal_number=pnr(date(2008, 11, 23)))]), now=late)
    assert exc.value.errors[0].code == "child_adult"


def test_birth_date_when_no_number() -> None:
    c = child(personal_number=None, birth_date="2013-01-02")
    assert validate_form(form(children=[c]), now=NOW).children[0].birth_date == date(2013, 1, 2)
    errs = errors_of(form(children=[child(personal_number=None, birth_date="2007-01-02")]))
    assert errs["children.0.birth_date"][0] == "child_adult"


def test_missing_identity_is_refused() -> None:
    errs = errors_of(form(children=[child(personal_number=None, birth_date=None)]))
    assert errs["children.0.personal_number"][0] == "identity_missing"


@pytest.mark.parametrize("field", ["municipality", "staying_municipality", "placed_by"])
def test_unknown_municipality_code_is_refused(field: str) -> None:
    c = child(**{field: "0999"}, district=None)
    errs = errors_of(form(children=[c]))
    code, message = errs[f"children.0.{field}"]
    assert code == "municipality_unknown" and "0999" not in message  # never echoed


def test_malformed_municipality_code_gets_hint() -> None:
    errs = errors_of(form(clinic={"name": "UM", "municipality": "180"}))
    assert "fyra siffror" in errs["clinic.municipality"][1]


def test_district_outside_stockholm_and_unknown_district() -> None:
    errs = errors_of(form(children=[child(municipality="1980", district="Södermalm")]))
    assert errs["children.0.district"][0] == "district_outside_stockholm"
    errs = errors_of(form(children=[child(district="Gamla Stan")]))
    code, message = errs["children.0.district"]
    assert code == "district_unknown" and "Södermalm" in message


@pytest.mark.parametrize("municipality", ["0180", "1980"])
def test_protected_identity_refuses_address_and_district(municipality: str) -> None:
    """Given by phone, never in the form: one error per field, and no district rule on top."""
    kid = child(protected_identity=True, municipality=municipality, district="Gamla Stan")
    errs = errors_of(form(children=[kid]))
    assert set(errs) == {"children.0.address", "children.0.district"}
    assert errs["children.0.address"] == (
        "protected_identity_detail",
        "Lämna inte adress för ett barn med skyddade personuppgifter – uppgiften lämnas per "
        "telefon.",
    )
    assert errs["children.0.district"][0] == "protected_identity_detail"
    ok = child(protected_identity=True, municipality=municipality, address=None, district=None)
    assert validate_form(form(children=[ok]), now=NOW).children[0].protected_identity


@pytest.mark.parametrize(
    "category", ["violence_by_guardian", "sexual_abuse", "honour_related", "witnessed_violence"]
)
def test_guardians_must_not_be_told_when_violence_or_honour(category: str) -> None:
    data = form(concern={"categories": [category], "observations": "Observation."})
    errs = errors_of(data)
    code, message = errs["guardians.0.informed"]
    assert code == "guardian_must_not_be_informed"
    assert "socialtjänsten först" in message
    data["guardians"][0]["informed"] = False
    assert validate_form(data, now=NOW).guardians[0].informed is False


def test_reason_required_when_guardian_not_informed() -> None:
    data = form()
    data["guardians"][0]["informed"] = False
    assert errors_of(data)["guardians.0.not_informed_reason"][0] == "not_informed_reason_missing"


def test_unknown_category_and_empty_observations() -> None:
    errs = errors_of(form(concern={"categories": ["aliens"], "observations": "  "}))
    assert errs["concern.categories"][0] == "category_unknown"
    assert errs["concern.observations"][0] == "string_too_short"


def test_anonymous_consultation_needs_date_and_report_date_not_future() -> None:
    errs = errors_of(
        form(consultations=[{"kind": "anonymous_social_services"}], report_date="2026-11-24")
    )
    assert errs["consultations.0.date"][0] == "consultation_date_missing"
    assert errs["report_date"][0] == "report_date_future"


def test_structural_errors_are_swedish_and_never_echo_input() -> None:
    data = form(urgency="soon")
    data["reporter"]["email"] = "not-an-address"
    del data["clinic"]
    errs = errors_of(data)
    assert errs["urgency"] == ("enum", "Ogiltigt val. Tillåtna värden: 'acute' eller 'not_acute'.")
    assert errs["reporter.email"][1] == "Ange en giltig e-postadress."
    assert errs["clinic"][0] == "missing"
    assert all("not-an-address" not in m and "soon" not in m for _, m in errs.values())


def test_siblings_each_validated_with_their_index() -> None:
    errs = errors_of(form(children=[child(), child(personal_number="20120315-1237")]))
    assert list(errs) == ["children.1.personal_number"]


# --- issue 11, finding 7: validation gaps ------------------------------------------------------

#: The digits 0-9 in other scripts: Arabic-Indic, Eastern Arabic (Persian), Devanagari,
#: fullwidth, mathematical bold.
DIGIT_SYSTEMS = {
    "arabic-indic": 0x0660,
    "persian": 0x06F0,
    "devanagari": 0x0966,
    "fullwidth": 0xFF10,
    "math-bold": 0x1D7CE,
}


def _in_digits(text: str, zero: int) -> str:
    return text.translate({ord(str(d)): chr(zero + d) for d in range(10)})


@pytest.mark.parametrize("system", sorted(DIGIT_SYSTEMS))
@pytest.mark.parametrize("which", ["all", "one"])
def test_personnummer_in_other_digits_is_refused_not_normalised(system: str, which: str) -> None:
    good = pnr(date(2012, 3, 15))
    number = (
        _in_digits(good, DIGIT_SYSTEMS[system])
        if which == "all"
        else good[:-1] + _in_digits(good[-1], DIGIT_SYSTEMS[system])
    )
    errs = errors_of(form(children=[child(personal_number=number)]))
    code, message = errs["children.0.personal_number"]
    assert code == "personal_number_invalid" and "0–9" in message
    assert number not in message


@pytest.mark.parametrize("system", sorted(DIGIT_SYSTEMS))
def test_municipality_code_in_other_digits_is_refused(system: str) -> None:
    code = _in_digits("0180", DIGIT_SYSTEMS[system])
    errs = errors_of(form(clinic={"name": "UM", "municipality": code}))
    assert errs["clinic.municipality"][0] == "string_pattern_mismatch"
    assert code not in errs["clinic.municipality"][1]


def test_report_date_long_ago_is_refused_and_cannot_make_an_adult_a_child() -> None:
    """The attack: report_date 2005-01-01 let a person born in 1995 pass the under-18 check."""
    adult = child(personal_number=pnr(date(1995, 6, 1)))
    errs = errors_of(form(children=[adult], report_date="2005-01-01"))
    assert errs["report_date"][0] == "report_date_too_old"
    assert "30 dagar" in errs["report_date"][1]
    assert errs["children.0.personal_number"][0] == "child_adult"


def test_report_date_window_is_30_days_back_to_today() -> None:
    assert validate_form(form(report_date="2026-10-24"), now=NOW).report_date == date(2026, 10, 24)
    assert errors_of(form(report_date="2026-10-23"))["report_date"][0] == "report_date_too_old"
    assert errors_of(form(report_date="2026-11-24"))["report_date"][0] == "report_date_future"


def test_age_is_checked_on_the_later_of_report_date_and_today() -> None:
    # 17 on the report date (ten days ago), 18 today: no orosanmälan, guidance instead.
    turned_18 = child(personal_number=pnr(date(2008, 11, 20)))
    errs = errors_of(form(children=[turned_18], report_date="2026-11-13"))
    assert errs["children.0.personal_number"][0] == "child_adult"


@pytest.mark.parametrize(
    ("field", "item", "limit"),
    [
        ("other_children", {"name": "Syskon", "age": 5}, 20),
        ("consultations", {"kind": "colleague"}, 10),
    ],
)
def test_lists_have_limits_with_swedish_field_errors(
    field: str, item: dict[str, object], limit: int
) -> None:
    assert len(getattr(validate_form(form(**{field: [item] * limit}), now=NOW), field)) == limit
    for count in (limit + 1, 5000):
        errs = errors_of(form(**{field: [item] * count}))
        assert errs[field] == ("too_long", f"Högst {limit} får anges.")
        assert len(errs) == 1  # one error for the list, not one per item


def test_category_list_has_a_limit() -> None:
    errs = errors_of(form(concern={"categories": ["neglect"] * 5000, "observations": "Text."}))
    assert errs["concern.categories"] == ("too_long", "Högst 20 får anges.")
