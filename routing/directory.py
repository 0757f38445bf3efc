"""Load and validate the routing directory (routing/data/) once, at start-up.

Every check that can fail raises :class:`DirectoryError` with a Swedish message naming the
file and the line (or entry), because a silently wrong directory routes children's reports
to the wrong social services. The files:

- ``municipalities.csv``: all 290 municipalities (``kommunkod,kommun,lanskod,lan``).
- ``districts.toml``: Stockholm city's 13 district areas, with help texts.
- ``socialjour.toml``: which municipalities share which socialjour (verified or not).
- ``hours.toml``: default office hours, per-unit schedules (socialjour hours included), optional
  half days, ``verified`` flags and the observed eves.

Units are derived from these: one intake unit per municipality (``intake-<code>``), one
district unit per Stockholm district (``sdf-…``), the shared socialjours, and a default
socialjour ``sj-<code>`` for every municipality not in a grouping.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from routing.errors import DirectoryError
from routing.hours import EVES, INTERVAL_KEYS, Interval, Schedule, SwedishCalendar
from routing.models import District, Municipality, Unit

DATA_DIR = Path(__file__).parent / "data"
DATA_FILES = ("municipalities.csv", "districts.toml", "socialjour.toml", "hours.toml")
EXPECTED_MUNICIPALITIES = 290
EXPECTED_COUNTIES = 21
STOCKHOLM_CITY = "0180"
CSV_HEADER = ["kommunkod", "kommun", "lanskod", "lan"]

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_CODE_RE = re.compile(r"^\d{4}$")
_COUNTY_RE = re.compile(r"^\d{2}$")
_GENERATED_ID_RE = re.compile(r"^(intake|sj)-\d{4}$")
_TOML_POS_RE = re.compile(r"at line (\d+), column (\d+)")


@dataclass(frozen=True)
class Directory:
    """The validated directory: municipalities, districts, units and their schedules."""

    municipalities: dict[str, Municipality]
    districts: tuple[District, ...]
    units: dict[str, Unit]
    intake_of: dict[str, str]
    socialjour_of: dict[str, str]
    socialjour_verified: dict[str, bool]
    office_default: Schedule
    #: Own schedule per unit; offices without one map to ``office_default``, and a socialjour
    #: without one is absent (hours unknown).
    schedules: dict[str, Schedule]
    calendar: SwedishCalendar
    version: str
    data_dir: Path


def intake_id(code: str) -> str:
    return f"intake-{code}"


def default_socialjour_id(code: str) -> str:
    return f"sj-{code}"


def directory_version(data_dir: Path) -> str:
    """Short sha256 over the data files' names and bytes; stored with every decision."""
    digest = hashlib.sha256()
    for name in DATA_FILES:
        digest.update(name.encode() + b"\0")
        digest.update((data_dir / name).read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:12]


class SourceFile:
    """One data file's text, with helpers to name lines in error messages."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise DirectoryError(f"{path}: filen saknas.") from None
        except UnicodeDecodeError as exc:
            raise DirectoryError(f"{path}: filen är inte giltig UTF-8 ({exc.reason}).") from None
        self.lines = self.text.splitlines()

    def fail(
        self, message: str, line: int | None = None, entry: str | None = None
    ) -> DirectoryError:
        where = str(self.path)
        if line is not None:
            where += f", rad {line}"
        if entry:
            where += f" ({entry})"
        return DirectoryError(f"{where}: {message}")

    def toml(self) -> dict[str, Any]:
        try:
            return tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as exc:
            m = _TOML_POS_RE.search(str(exc))
            line = int(m.group(1)) if m else None
            col = f", kolumn {m.group(2)}" if m else ""
            raise self.fail(f"ogiltig TOML{col}: {exc}", line) from None

    def table_lines(self, header: str) -> list[int]:
        """1-based line numbers of each ``[[header]]`` occurrence, in order."""
        pattern = re.compile(rf"^\s*\[\[\s*{re.escape(header)}\s*\]\]")
        return [i + 1 for i, ln in enumerate(self.lines) if pattern.match(ln)]

    def find_line(self, start: int | None, needle: str) -> int | None:
        """First line at or after ``start`` (until the next table header) containing needle."""
        if start is None:
            return None
        for i in range(start - 1, len(self.lines)):
            ln = self.lines[i]
            if i >= start and ln.lstrip().startswith("["):
                break
            if needle.isidentifier():
                if re.match(rf"^\s*{re.escape(needle)}\s*=", ln):
                    return i + 1
            elif needle in ln:
                return i + 1
        return start


def _entry(src: SourceFile, header: str, index: int) -> tuple[int | None, str]:
    lines = src.table_lines(header)
    line = lines[index] if index < len(lines) else None
    return line, f"[[{header}]] nr {index + 1}"


def _load_municipalities(data_dir: Path) -> dict[str, Municipality]:
    src = SourceFile(data_dir / "municipalities.csv")
    reader = csv.reader(io.StringIO(src.text, newline=""))
    out: dict[str, Municipality] = {}
    seen_line: dict[str, int] = {}
    names: dict[str, int] = {}
    counties: dict[str, tuple[str, int]] = {}
    header = next(reader, None)
    if header != CSV_HEADER:
        raise src.fail(f"rubrikraden ska vara {','.join(CSV_HEADER)}, var {header!r}", 1)
    for row in reader:
        line = reader.line_num
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != 4:
            raise src.fail(f"raden ska ha 4 kolumner, har {len(row)}: {row!r}", line)
        code, name, county, county_name = (c.strip() for c in row)
        if not _CODE_RE.match(code):
            raise src.fail(f"kommunkoden {code!r} ska vara fyra siffror", line)
        if code in seen_line:
            raise src.fail(f"kommunkoden {code} finns redan på rad {seen_line[code]}", line)
        if not name:
            raise src.fail(f"kommun {code} saknar namn", line)
        if name.casefold() in names:
            raise src.fail(
                f"kommunnamnet {name!r} finns redan på rad {names[name.casefold()]}", line
            )
        if not _COUNTY_RE.match(county) or code[:2] != county:
            raise src.fail(
                f"länskoden {county!r} stämmer inte med kommunkodens två första siffror ({code})",
                line,
            )
        if not county_name:
            raise src.fail(f"län {county} saknar namn", line)
        if county in counties and counties[county][0] != county_name:
            first_name, first_line = counties[county]
            raise src.fail(
                f"län {county} heter {county_name!r} här men {first_name!r} på rad {first_line}",
                line,
            )
        counties.setdefault(county, (county_name, line))
        seen_line[code] = line
        names[name.casefold()] = line
        out[code] = Municipality(code=code, name=name, county_code=county, county_name=county_name)
    if len(out) != EXPECTED_MUNICIPALITIES:
        raise src.fail(f"filen ska innehålla {EXPECTED_MUNICIPALITIES} kommuner, har {len(out)}")
    if len(counties) != EXPECTED_COUNTIES:
        raise src.fail(f"filen ska innehålla {EXPECTED_COUNTIES} län, har {len(counties)}")
    return out


def _require_str(
    src: SourceFile, table: dict[str, Any], key: str, line: int | None, entry: str
) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise src.fail(f"fältet {key!r} saknas eller är tomt", src.find_line(line, key), entry)
    return value.strip()


def _check_keys(
    src: SourceFile, table: dict[str, Any], allowed: set[str], line: int | None, entry: str
) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise src.fail(
            f"okänt fält {extra[0]!r} (tillåtna: {', '.join(sorted(allowed))})",
            src.find_line(line, extra[0]),
            entry,
        )


def _load_districts(data_dir: Path) -> tuple[District, ...]:
    src = SourceFile(data_dir / "districts.toml")
    doc = src.toml()
    _check_keys(src, doc, {"district"}, None, "")
    entries = doc.get("district")
    if not isinstance(entries, list) or not entries:
        raise src.fail("inga [[district]]-poster hittades")
    out: list[District] = []
    ids: set[str] = set()
    names: set[str] = set()
    for i, table in enumerate(entries):
        line, entry = _entry(src, "district", i)
        if not isinstance(table, dict):
            raise src.fail("posten ska vara en tabell", line, entry)
        _check_keys(src, table, {"id", "name", "unit_name", "help"}, line, entry)
        did = _require_str(src, table, "id", line, entry)
        entry = f"{entry}, id {did!r}"
        if not _ID_RE.match(did) or not did.startswith("sdf-"):
            raise src.fail(
                "id ska börja med 'sdf-' och bara innehålla a-z, 0-9 och '-'",
                src.find_line(line, "id"),
                entry,
            )
        if did in ids:
            raise src.fail("id förekommer två gånger", src.find_line(line, "id"), entry)
        name = _require_str(src, table, "name", line, entry)
        if name.casefold() in names or name.casefold() in ids:
            raise src.fail(
                f"namnet {name!r} förekommer två gånger", src.find_line(line, "name"), entry
            )
        ids.add(did)
        names.add(name.casefold())
        out.append(
            District(
                id=did,
                name=name,
                unit_name=_require_str(src, table, "unit_name", line, entry),
                help_text=_require_str(src, table, "help", line, entry),
            )
        )
    return tuple(out)


@dataclass(frozen=True)
class _Grouping:
    id: str
    name: str
    verified: bool
    members: tuple[tuple[str, bool], ...]


def _load_socialjour(data_dir: Path, municipalities: dict[str, Municipality]) -> list[_Grouping]:
    src = SourceFile(data_dir / "socialjour.toml")
    doc = src.toml()
    _check_keys(src, doc, {"socialjour"}, None, "")
    entries = doc.get("socialjour", [])
    if not isinstance(entries, list):
        raise src.fail("'socialjour' ska vara en lista av [[socialjour]]-tabeller")
    out: list[_Grouping] = []
    ids: set[str] = set()
    member_of: dict[str, str] = {}
    for i, table in enumerate(entries):
        line, entry = _entry(src, "socialjour", i)
        if not isinstance(table, dict):
            raise src.fail("posten ska vara en tabell", line, entry)
        _check_keys(
            src, table, {"id", "name", "verified", "source", "note", "members"}, line, entry
        )
        gid = _require_str(src, table, "id", line, entry)
        entry = f"{entry}, id {gid!r}"
        if not _ID_RE.match(gid) or not gid.startswith("sj-") or _GENERATED_ID_RE.match(gid):
            raise src.fail(
                "id ska börja med 'sj-', bara innehålla a-z, 0-9 och '-', och inte vara "
                "'sj-<kommunkod>' (reserverat för standardjourer)",
                src.find_line(line, "id"),
                entry,
            )
        if gid in ids:
            raise src.fail("id förekommer två gånger", src.find_line(line, "id"), entry)
        ids.add(gid)
        name = _require_str(src, table, "name", line, entry)
        verified = table.get("verified")
        if not isinstance(verified, bool):
            raise src.fail(
                "fältet 'verified' ska vara true eller false",
                src.find_line(line, "verified"),
                entry,
            )
        members_raw = table.get("members")
        if not isinstance(members_raw, list) or not members_raw:
            raise src.fail(
                "'members' ska vara en icke-tom lista", src.find_line(line, "members"), entry
            )
        members: list[tuple[str, bool]] = []
        for member in members_raw:
            code = member.get("municipality") if isinstance(member, dict) else None
            mline = src.find_line(line, f'"{code}"') if isinstance(code, str) else line
            if not isinstance(member, dict) or not isinstance(code, str):
                raise src.fail('varje medlem ska vara { municipality = "kod" }', mline, entry)
            _check_keys(src, member, {"municipality", "verified"}, mline, entry)
            if code not in municipalities:
                raise src.fail(f"okänd kommunkod {code!r} i members", mline, entry)
            if code in member_of:
                raise src.fail(f"kommun {code} ingår redan i {member_of[code]}", mline, entry)
            mverified = member.get("verified", verified)
            if not isinstance(mverified, bool):
                raise src.fail("'verified' ska vara true eller false", mline, entry)
            member_of[code] = gid
            members.append((code, mverified))
        out.append(_Grouping(gid, name, verified, tuple(members)))
    return out


def _schedule_from(
    src: SourceFile, table: dict[str, Any], line: int | None, entry: str
) -> tuple[Schedule, dict[str, tuple[str, ...]]]:
    """Validate the interval keys (weekdays, holiday, half_day) and the verified flag."""
    raw: dict[str, tuple[str, ...]] = {}
    for key in INTERVAL_KEYS:
        if key not in table:
            continue
        value = table[key]
        kline = src.find_line(line, key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise src.fail(
                f'{key!r} ska vara en lista med intervall som "08:00-16:30"', kline, entry
            )
        raw[key] = tuple(v.strip() for v in value)
        for v in raw[key]:
            try:
                Interval.parse(v)
            except ValueError as exc:
                raise src.fail(f"{key}: {exc}", kline, entry) from None
    verified = table.get("verified", False)
    if not isinstance(verified, bool):
        raise src.fail(
            "'verified' ska vara true eller false", src.find_line(line, "verified"), entry
        )
    schedule = Schedule(raw, verified)
    if not schedule.has_weekly_hours():
        raise src.fail(
            "schemat saknar öppettider: minst en av mon–sun måste ha ett intervall, annars "
            "öppnar enheten aldrig",
            line,
            entry,
        )
    return schedule, raw


def _load_hours(
    data_dir: Path, unit_ids: set[str]
) -> tuple[Schedule, dict[str, tuple[Schedule, dict[str, tuple[str, ...]]]], SwedishCalendar]:
    src = SourceFile(data_dir / "hours.toml")
    doc = src.toml()
    _check_keys(src, doc, {"calendar", "office_default", "unit"}, None, "")
    cal = doc.get("calendar", {})
    cal_line = next((i + 1 for i, ln in enumerate(src.lines) if ln.strip() == "[calendar]"), None)
    if not isinstance(cal, dict):
        raise src.fail("[calendar] ska vara en tabell", cal_line)
    _check_keys(src, cal, {"observed_eves"}, cal_line, "[calendar]")
    eves = cal.get("observed_eves", [])
    if not isinstance(eves, list) or any(e not in EVES for e in eves):
        raise src.fail(
            f"observed_eves får bara innehålla {', '.join(EVES)}",
            src.find_line(cal_line, "observed_eves"),
            "[calendar]",
        )
    calendar = SwedishCalendar(frozenset(eves))

    office = doc.get("office_default")
    off_line = next(
        (i + 1 for i, ln in enumerate(src.lines) if ln.strip() == "[office_default]"), None
    )
    if not isinstance(office, dict):
        raise src.fail("[office_default] saknas")
    _check_keys(src, office, {"verified", "source", *INTERVAL_KEYS}, off_line, "[office_default]")
    office_default, _ = _schedule_from(src, office, off_line, "[office_default]")

    per_unit: dict[str, tuple[Schedule, dict[str, tuple[str, ...]]]] = {}
    units = doc.get("unit", [])
    if not isinstance(units, list):
        raise src.fail("'unit' ska vara en lista av [[unit]]-tabeller")
    for i, table in enumerate(units):
        line, entry = _entry(src, "unit", i)
        if not isinstance(table, dict):
            raise src.fail("posten ska vara en tabell", line, entry)
        _check_keys(src, table, {"id", "verified", "source", *INTERVAL_KEYS}, line, entry)
        uid = _require_str(src, table, "id", line, entry)
        entry = f"{entry}, id {uid!r}"
        if uid not in unit_ids:
            raise src.fail("okänd enhet", src.find_line(line, "id"), entry)
        if uid in per_unit:
            raise src.fail("enheten har redan ett schema", src.find_line(line, "id"), entry)
        per_unit[uid] = _schedule_from(src, table, line, entry)
    return office_default, per_unit, calendar


def _intake_name(m: Municipality) -> str:
    if m.code == STOCKHOLM_CITY:
        return "Stockholms stad, stadsövergripande mottagning av orosanmälningar (e-tjänsten)"
    return f"Socialtjänsten i {m.name}, mottagning barn och unga"


def load_directory(data_dir: Path = DATA_DIR) -> Directory:
    """Read and cross-check every data file; raise DirectoryError naming the broken line."""
    municipalities = _load_municipalities(data_dir)
    districts = _load_districts(data_dir)
    groupings = _load_socialjour(data_dir, municipalities)

    units: dict[str, Unit] = {}
    intake_of: dict[str, str] = {}
    for m in municipalities.values():
        uid = intake_id(m.code)
        units[uid] = Unit(
            id=uid,
            name=_intake_name(m),
            kind="intake",
            municipality=m.code,
            municipalities=(m.code,),
        )
        intake_of[m.code] = uid
    for d in districts:
        units[d.id] = Unit(
            id=d.id,
            name=d.unit_name,
            kind="district",
            municipality=STOCKHOLM_CITY,
            municipalities=(STOCKHOLM_CITY,),
        )
    socialjour_of: dict[str, str] = {}
    socialjour_verified: dict[str, bool] = {}
    for g in groupings:
        codes = tuple(code for code, _ in g.members)
        units[g.id] = Unit(
            id=g.id,
            name=g.name,
            kind="socialjour",
            municipality=codes[0] if len(codes) == 1 else None,
            municipalities=codes,
            coverage_verified=g.verified and all(v for _, v in g.members),
        )
        for code, verified in g.members:
            socialjour_of[code] = g.id
            socialjour_verified[code] = verified
    for m in municipalities.values():
        if m.code in socialjour_of:
            continue
        uid = default_socialjour_id(m.code)
        units[uid] = Unit(
            id=uid,
            name=f"Socialjouren för {m.name}",
            kind="socialjour",
            municipality=m.code,
            municipalities=(m.code,),
            coverage_verified=False,
        )
        socialjour_of[m.code] = uid
        socialjour_verified[m.code] = False

    office_default, per_unit, calendar = _load_hours(data_dir, set(units))
    schedules: dict[str, Schedule] = {}
    for uid, (schedule, raw) in per_unit.items():
        schedules[uid] = schedule
        units[uid] = units[uid].model_copy(
            update={"hours": raw, "hours_verified": schedule.verified}
        )
    for uid, unit in units.items():
        if uid in schedules:
            continue
        if unit.kind == "socialjour":
            # Hours unknown: assumed reachable when the offices close, never a verified fact.
            units[uid] = unit.model_copy(update={"hours_verified": False})
        else:
            schedules[uid] = office_default
            units[uid] = unit.model_copy(update={"hours_verified": office_default.verified})

    return Directory(
        municipalities=municipalities,
        districts=districts,
        units=units,
        intake_of=intake_of,
        socialjour_of=socialjour_of,
        socialjour_verified=socialjour_verified,
        office_default=office_default,
        schedules=schedules,
        calendar=calendar,
        version=directory_version(data_dir),
        data_dir=data_dir,
    )
