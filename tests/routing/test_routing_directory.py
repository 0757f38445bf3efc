"""Directory validation: the shipped data is complete, and a broken file stops start-up."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from routing import DirectoryError, Router
from routing.channels import EXAMPLE_CHANNELS
from routing.directory import DATA_DIR, directory_version, load_directory

# shared/ lies beside the repository (domain.md 7.3 checked this file).
SHARED_KOMMUNER = Path(__file__).resolve().parents[3] / "shared" / "kommuner.csv"


def test_municipalities_complete_and_unique(router: Router) -> None:
    municipalities = router.municipalities()
    codes = [m.code for m in municipalities]
    assert len(codes) == 290
    assert len(set(codes)) == 290
    assert len({m.name for m in municipalities}) == 290
    assert all(re.fullmatch(r"\d{4}", c) for c in codes)
    assert all(m.code[:2] == m.county_code for m in municipalities)
    counties = Counter(m.county_code for m in municipalities)
    assert len(counties) == 21
    # domain.md 7.3: counts per county.
    assert counties["01"] == 26 and counties["19"] == 10 and counties["14"] == 49
    assert counties["12"] == 33 and counties["09"] == 1
    assert len({(m.county_code, m.county_name) for m in municipalities}) == 21


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("0180", "Stockholm"),
        ("1980", "Västerås"),
        ("1480", "Göteborg"),
        ("1280", "Malmö"),
        ("0380", "Uppsala"),
        ("2584", "Kiruna"),
        ("0980", "Gotland"),
        ("0114", "Upplands Väsby"),
        ("0139", "Upplands-Bro"),
        ("2023", "Malung-Sälen"),
        ("0331", "Heby"),
    ],
)
def test_spot_checks(router: Router, code: str, name: str) -> None:
    assert router.municipality_exists(code)
    assert router.municipality_name(code) == name


@pytest.mark.skipif(not SHARED_KOMMUNER.exists(), reason="shared/ not beside the repo")
def test_data_file_is_the_checked_source() -> None:
    assert (DATA_DIR / "municipalities.csv").read_bytes() == SHARED_KOMMUNER.read_bytes()


def test_every_unit_reachable_and_every_reference_exists(router: Router) -> None:
    directory = router.directory
    units = directory.units
    reachable: set[str] = set()
    for code in directory.municipalities:
        intake = directory.intake_of[code]
        jour = directory.socialjour_of[code]
        assert units[intake].kind == "intake" and code in units[intake].municipalities
        assert units[jour].kind == "socialjour" and code in units[jour].municipalities
        reachable |= {intake, jour}
    for d in directory.districts:
        assert units[d.id].kind == "district" and units[d.id].municipality == "0180"
        reachable.add(d.id)
    assert reachable == set(units)
    for unit in units.values():
        for code in unit.municipalities:
            assert code in directory.municipalities
    assert set(directory.schedules) <= set(units)
    assert len(directory.districts) == 13


def test_directory_version_is_short_hash_of_data(router: Router, data_copy: Path) -> None:
    assert re.fullmatch(r"[0-9a-f]{12}", router.directory_version)
    assert directory_version(data_copy) == router.directory_version
    path = data_copy / "districts.toml"
    path.write_text(path.read_text(encoding="utf-8") + "\n# ändrad\n", encoding="utf-8")
    assert load_directory(data_copy).version != router.directory_version


def _replace_line(path: Path, contains: str, new: str) -> int:
    """Replace the first line starting with ``contains``; return its 1-based number."""
    lines = path.read_text(encoding="utf-8").split("\n")
    for i, line in enumerate(lines):
        if line.strip().startswith(contains):
            lines[i] = new
            path.write_text("\n".join(lines), encoding="utf-8")
            return i + 1
    raise AssertionError(f"{contains!r} not in {path}")


@pytest.mark.parametrize(
    ("file", "contains", "new", "message"),
    [
        (
            "municipalities.csv",
            "0115,Vallentuna",
            "0114,Vallentuna,01,Stockholms län",
            "finns redan",
        ),
        ("municipalities.csv", "1980,Västerås", "1980,Västerås,18,Västmanlands län", "länskoden"),
        ("municipalities.csv", "0117,Österåker", "117,Österåker,01,Stockholms län", "fyra siffror"),
        ("municipalities.csv", "0120,Värmdö", "0120,Värmdö,01", "4 kolumner"),
        ("municipalities.csv", "0123,Järfälla", "0123,Järfälla,01,Stockholm", "heter"),
        ("municipalities.csv", "kommunkod,kommun", "code,name,county,county_name", "rubrikraden"),
        ("districts.toml", 'id = "sdf-farsta"', 'id = "sdf-bromma"', "två gånger"),
        ("districts.toml", 'name = "Farsta"', 'name = "Farsta', "ogiltig TOML"),
        ("districts.toml", 'name = "Norrmalm"', 'nam = "Norrmalm"', "okänt fält"),
        ("districts.toml", 'id = "sdf-norrmalm"', 'id = "Norrmalm"', "sdf-"),
        (
            "socialjour.toml",
            '{ municipality = "0183" }',
            '  { municipality = "0999" },',
            "okänd kommunkod",
        ),
        (
            "socialjour.toml",
            '{ municipality = "0182" }',
            '  { municipality = "0163" },',
            "ingår redan",
        ),
        ("socialjour.toml", "verified = true", "verified = 1", "true eller false"),
        ("hours.toml", 'id = "sj-sodertalje"', 'id = "sj-sodertalj"', "okänd enhet"),
        ("hours.toml", 'fri = ["14:00-02:00"]', 'fri = ["14-02"]', "ogiltigt intervall"),
        ("hours.toml", 'mon = ["08:00-16:30"]', 'mon = ["08:00-25:00"]', "klockslag"),
        ("hours.toml", "observed_eves =", 'observed_eves = ["påskafton"]', "observed_eves"),
    ],
)
def test_broken_data_file_names_file_and_line(
    data_copy: Path, file: str, contains: str, new: str, message: str
) -> None:
    line = _replace_line(data_copy / file, contains, new)
    with pytest.raises(DirectoryError) as info:
        Router(channels_path=EXAMPLE_CHANNELS, data_dir=data_copy)
    text = str(info.value)
    assert file in text
    assert f"rad {line}" in text
    assert message in text


def test_truncated_municipality_file_is_refused(data_copy: Path) -> None:
    path = data_copy / "municipalities.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    with pytest.raises(DirectoryError, match="290 kommuner, har 289"):
        load_directory(data_copy)


def test_missing_data_file_is_refused(data_copy: Path) -> None:
    (data_copy / "hours.toml").unlink()
    with pytest.raises(DirectoryError, match="hours.toml: filen saknas"):
        load_directory(data_copy)


def test_unit_override_of_office_hours(data_copy: Path) -> None:
    """Office hours are overridable per unit in hours.toml."""
    from datetime import datetime

    from routing.hours import TZ

    path = data_copy / "hours.toml"
    path.write_text(
        path.read_text(encoding="utf-8")
        + '\n[[unit]]\nid = "intake-0114"\nmon = ["09:00-15:00"]\ntue = ["09:00-15:00"]\n',
        encoding="utf-8",
    )
    router = Router(channels_path=EXAMPLE_CHANNELS, data_dir=data_copy)
    tuesday = datetime(2026, 11, 24, 15, 30, tzinfo=TZ)
    assert not router.is_open("intake-0114", tuesday)
    assert router.is_open("intake-0115", tuesday)
    assert not router.is_working_day("intake-0114", tuesday.date().replace(day=25))  # Wednesday
    assert router.unit("intake-0114").hours == {"mon": ("09:00-15:00",), "tue": ("09:00-15:00",)}
