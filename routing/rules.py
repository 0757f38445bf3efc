"""Routing rules: who receives a child-concern report, and a Swedish explanation of why.

Each rule has a stable id (stored with the handover, so auditors can find the rule later)
and renders its explanation with the actual municipality and unit names. The routine behind
the time rules (domain.md 3.4, 10.5): written reports are read only in office hours, and
socialjours take phone calls about acute matters, not written reports. Order of rules:

1. Which municipality is responsible (first that applies):
   ``R-UNACCOMPANIED-ASSIGNED`` (unaccompanied minor with a known anvisningskommun),
   ``R-UNACCOMPANIED-ARRIVAL`` (else the ankomstkommun), ``R-RESIDENCE`` (residence
   municipality, any of the 290, also across county borders), ``R-STAYING-FALLBACK``
   (residence unknown: where the child is staying), ``R-CLINIC-FALLBACK`` (else the clinic's
   municipality). With protected identity the stated municipality is used under
   ``R-PROTECTED-IDENTITY``, and every recipient requires a phone contact.
2. Which unit in it: the intake unit; for Stockholm city (0180) the district administration
   (``R-STOCKHOLM-DISTRICT``). Unknown district (``R-STOCKHOLM-DISTRICT-UNKNOWN``): the city's
   city-wide intake (the e-service that forwards to the right district), phone required — a
   guessed district risks the wrong receiver and a late protection assessment. With
   protected identity the district is never used nor named; the city-wide intake receives it.
3. When and how (the unit of step 2 is the "office"):
   - Not acute, at any hour: the office's written channel. In office hours ``opens_at`` is
     None; outside them ``R-WRITTEN-NEXT-OPENING`` sets ``opens_at`` to the office's next
     opening (weekends, public holidays, observed eves and half days counted). No phone call
     is added by the time of day; steps 1–2 may still require one.
   - Acute in office hours: ``R-ACUTE-PHONE``, the office by phone first (its number), the
     written report to the same unit (``written``, ``opens_at`` None).
   - Acute out of office hours: ``R-OUT-OF-HOURS``, the municipality's socialjour by phone.
     Its ``written`` is True only when its channel has an e-mail. When the jour's own hours
     (hours.toml) say it is closed, ``R-SOCIALJOUR-CLOSED-112``: the phone is "112" and the
     counselor asks SOS Alarm for the socialjour; ``opens_at`` is the jour's next opening.
     A jour with unknown hours is assumed reachable whenever the offices are closed, gets
     its own number and ``hours_verified`` False. The written report goes to the office as
     a separate decision, the first entry of the jour decision's ``also``, with rule
     ``R-WRITTEN-NEXT-OPENING`` and ``opens_at`` = the office's next opening.
4. Further recipients: ``R-ACUTE-STAYING`` (acute, and the child stays in another
   municipality: it carries the acute responsibility) and ``R-PLACED-BY`` (the placing
   municipality keeps responsibility). Each gets steps 2–3 on its own; acute out of hours its
   socialjour call carries its own written copy in its own ``also`` (nested, not flattened).

A decision's ``rule`` is the rule that settled how this unit is reached, by precedence
OUT-OF-HOURS > ACUTE-PHONE > PROTECTED-IDENTITY > STOCKHOLM-DISTRICT(-UNKNOWN) > step 1;
a further recipient's ``rule`` is the rule that added it (ACUTE-STAYING, PLACED-BY), and the
written copy beside a socialjour call has ``R-WRITTEN-NEXT-OPENING``. On a non-acute report
``R-WRITTEN-NEXT-OPENING`` only sets ``opens_at``, so it is listed in the explanation but is
not the ``rule``: the unit and rule of a non-acute report do not depend on the hour.
``R-SOCIALJOUR-CLOSED-112`` is likewise listed, never the ``rule``. Every applied rule id is
listed at the end of the explanation. Explanations never contain an address, and never the
district when the identity is protected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from routing.directory import STOCKHOLM_CITY
from routing.errors import UnknownCodeError
from routing.hours import describe_moment, describe_opens_at, describe_when, require_aware
from routing.models import Decision, District, RoutingRequest, Unit

if TYPE_CHECKING:
    from routing.router import Router

RULES: dict[str, str] = {
    "R-RESIDENCE": "Bostadskommunens socialtjänst tar emot anmälan (gäller alla 290 kommuner, "
    "även i andra län).",
    "R-STOCKHOLM-DISTRICT": "I Stockholms stad tar stadsdelsförvaltningen i barnets "
    "stadsdelsområde emot anmälan.",
    "R-STOCKHOLM-DISTRICT-UNKNOWN": "Okänt stadsdelsområde i Stockholms stad: stadens "
    "stadsövergripande mottagning tar emot anmälan och lämnar den vidare; telefonkontakt krävs.",
    "R-STAYING-FALLBACK": "Okänd bostadskommun: vistelsekommunen tar emot anmälan.",
    "R-CLINIC-FALLBACK": "Okänd bostads- och vistelsekommun: mottagningens kommun tar emot "
    "anmälan.",
    "R-UNACCOMPANIED-ASSIGNED": "Ensamkommande barn: anvisningskommunen tar emot anmälan.",
    "R-UNACCOMPANIED-ARRIVAL": "Ensamkommande barn utan anvisningskommun: ankomstkommunen tar "
    "emot anmälan.",
    "R-PROTECTED-IDENTITY": "Skyddade personuppgifter: adress och stadsdel används inte, den "
    "kommun kuratorn anger tar emot anmälan, telefonkontakt krävs.",
    "R-ACUTE-STAYING": "Akut ärende: vistelsekommunen får också anmälan när den är en annan.",
    "R-PLACED-BY": "Placerat barn: den placerande kommunen får också anmälan.",
    "R-OUT-OF-HOURS": "Akut ärende utanför kontorstid (kvällar, nätter, helger, helgdagar, "
    "lediga aftnar): ring kommunens socialjour; den skriftliga anmälan går till mottagningen "
    "och läses när den öppnar.",
    "R-ACUTE-PHONE": "Akut ärende under kontorstid: ring mottagningen först (numret anges); "
    "den skriftliga anmälan följer till samma enhet.",
    "R-WRITTEN-NEXT-OPENING": "Skriftliga anmälningar läses bara under kontorstid: anmälan går "
    "till mottagningen eller stadsdelsförvaltningen och läses tidigast när den öppnar nästa "
    "gång (opens_at). Socialjouren tar akuta ärenden per telefon, inte skriftliga anmälningar.",
    "R-SOCIALJOUR-CLOSED-112": "Socialjouren har stängt enligt sina öppettider: ring 112 och "
    "begär socialjouren via SOS Alarm.",
}

_PRECEDENCE = (
    "R-OUT-OF-HOURS",
    "R-ACUTE-PHONE",
    "R-PROTECTED-IDENTITY",
    "R-STOCKHOLM-DISTRICT",
    "R-STOCKHOLM-DISTRICT-UNKNOWN",
)
_CODE_FIELDS = (
    "clinic_municipality",
    "municipality",
    "staying_municipality",
    "placed_by",
    "assigned_municipality",
    "arrival_municipality",
)


@dataclass
class _Recipient:
    """A municipality chosen to receive the report, before the time-of-day rules."""

    code: str
    office_unit: str = ""
    steps: list[tuple[str | None, str]] = field(default_factory=list)
    phone_required: bool = False
    fixed_rule: str | None = None


def check_codes(router: Router, req: RoutingRequest) -> District | None:
    """Refuse unknown codes before routing; return the resolved Stockholm district, if used."""
    for name in _CODE_FIELDS:
        code = getattr(req, name)
        if code is not None and not router.municipality_exists(code):
            raise UnknownCodeError(name, code)
    if req.protected_identity or not req.district or req.municipality != STOCKHOLM_CITY:
        return None
    district = router.resolve_district(req.district)
    if district is None:
        names = ", ".join(d.name for d in router.districts())
        raise UnknownCodeError(
            "district",
            req.district,
            f"Okänt stadsdelsområde i Stockholms stad. Välj ett av: {names} "
            "(eller lämna fältet tomt om det inte är känt).",
        )
    return district


def _m(router: Router, code: str, county: bool = False) -> str:
    """Municipality as "Name (code)" or "Name (code, County)"."""
    mun = router.municipality(code)
    return f"{mun.name} ({code}, {mun.county_name})" if county else f"{mun.name} ({code})"


def _responsible(router: Router, req: RoutingRequest) -> _Recipient:
    """Step 1: the responsible municipality and the rule that chose it."""
    protected = req.protected_identity
    rec: _Recipient
    if req.unaccompanied and req.assigned_municipality:
        rec = _Recipient(req.assigned_municipality)
        rec.steps.append(
            (
                "R-UNACCOMPANIED-ASSIGNED",
                f"Barnet är ensamkommande och anvisat till {_m(router, rec.code, True)}; "
                "anvisningskommunen ansvarar.",
            )
        )
    elif req.unaccompanied and req.arrival_municipality:
        rec = _Recipient(req.arrival_municipality)
        rec.steps.append(
            (
                "R-UNACCOMPANIED-ARRIVAL",
                "Barnet är ensamkommande och ännu inte anvisat någon kommun; ankomstkommunen "
                f"{_m(router, rec.code, True)} är vistelsekommun och ansvarar tills "
                "Migrationsverket har anvisat en kommun.",
            )
        )
    elif req.municipality and protected:
        rec = _Recipient(req.municipality)
        rec.steps.append(
            (
                "R-PROTECTED-IDENTITY",
                "Barnet har skyddade personuppgifter: adress och stadsdel används inte. Anmälan "
                f"går till den kommun kuratorn har angett, {_m(router, rec.code, True)}.",
            )
        )
    elif req.municipality:
        rec = _Recipient(req.municipality)
        text = f"Barnet bor i {_m(router, rec.code, True)}; bostadskommunen ansvarar."
        clinic = router.municipality(req.clinic_municipality)
        if router.municipality(rec.code).county_code != clinic.county_code:
            text += (
                " Barnet bor i ett annat län än mottagningen; samma regel gäller i alla "
                "290 kommuner."
            )
        rec.steps.append(("R-RESIDENCE", text))
    elif req.staying_municipality:
        rec = _Recipient(req.staying_municipality)
        rec.steps.append(
            (
                "R-STAYING-FALLBACK",
                "Bostadskommunen är inte känd. Anmälan går till vistelsekommunen "
                f"{_m(router, rec.code, True)}, som har det yttersta ansvaret och kan föra "
                "ärendet vidare.",
            )
        )
    else:
        rec = _Recipient(req.clinic_municipality)
        rec.steps.append(
            (
                "R-CLINIC-FALLBACK",
                "Varken bostadskommun eller vistelsekommun är känd. Anmälan går till "
                f"mottagningens kommun {_m(router, rec.code, True)}, som kan föra ärendet "
                "vidare.",
            )
        )
    if req.unaccompanied and not (req.assigned_municipality or req.arrival_municipality):
        rec.steps.insert(
            0,
            (
                None,
                "Barnet är ensamkommande, men varken anvisnings- eller ankomstkommun är angiven.",
            ),
        )
    return rec


def _protected_note(rec: _Recipient) -> None:
    """Protected identity: phone required on every recipient; the rule is named once per one."""
    rec.phone_required = True
    if not any(rule == "R-PROTECTED-IDENTITY" for rule, _ in rec.steps):
        rec.steps.append(
            (
                "R-PROTECTED-IDENTITY",
                "Barnet har skyddade personuppgifter: adress och stadsdel används inte, och "
                "telefonkontakt krävs.",
            )
        )


def _choose_office(
    router: Router, req: RoutingRequest, rec: _Recipient, district: District | None
) -> None:
    """Step 2: the intake unit, or for Stockholm city the district administration."""
    rec.office_unit = router.intake_for(rec.code).id
    if rec.code != STOCKHOLM_CITY:
        if req.district and not req.protected_identity and req.municipality == rec.code:
            rec.steps.append((None, "Stadsdelsområde används bara för Stockholms stad."))
        return
    if req.protected_identity:
        rec.steps.append(
            (
                None,
                "I Stockholms stad går anmälan därför till stadens stadsövergripande mottagning.",
            )
        )
        return
    if district is not None and req.municipality == rec.code:
        rec.office_unit = district.id
        rec.steps.append(
            (
                "R-STOCKHOLM-DISTRICT",
                f"Barnet bor i stadsdelsområdet {district.name}; ansvarig är {district.unit_name}.",
            )
        )
        return
    rec.phone_required = True
    rec.steps.append(
        (
            "R-STOCKHOLM-DISTRICT-UNKNOWN",
            "Stadsdelsområdet i Stockholms stad är inte angivet. Anmälan går till stadens "
            "stadsövergripande mottagning, som lämnar den vidare till rätt "
            "stadsdelsförvaltning; ring och stäm av vilken stadsdelsförvaltning som tar ärendet.",
        )
    )


def _phone_text(phone: str | None) -> str:
    if phone:
        return f" på {phone}"
    return " (telefonnummer saknas i kanalfilen; ta reda på numret via kommunens webbplats)"


def _channel_notes(router: Router, unit: Unit) -> list[tuple[str | None, str]]:
    channel = router.channel(unit.id)
    if channel is None or not channel.usable:
        return [(None, f"Ingen kontaktkanal är konfigurerad för {unit.name}.")]
    if not channel.verified:
        return [(None, "Kontaktuppgifterna är inte verifierade.")]
    return []


def _decision(
    router: Router,
    rec: _Recipient,
    unit: Unit,
    steps: list[tuple[str | None, str]],
    *,
    rule: str | None,
    phone_required: bool,
    phone: str | None,
    written: bool,
    opens_at: datetime | None,
) -> Decision:
    """Assemble one decision; ``rule`` None means "by precedence over the applied rules"."""
    steps = steps + _channel_notes(router, unit)
    applied = [r for r, _ in steps if r is not None]
    if rule is None:
        rule = next((r for r in _PRECEDENCE if r in applied), applied[0])
    ids = list(dict.fromkeys(applied))
    explanation = " ".join(text for _, text in steps) + f" Tillämpade regler: {', '.join(ids)}."
    channel = router.channel(unit.id)
    return Decision(
        municipality=rec.code,
        municipality_name=router.municipality_name(rec.code),
        unit_kind=unit.kind,
        unit_id=unit.id,
        unit_name=unit.name,
        phone_required=phone_required,
        phone=phone,
        email=channel.email if channel else None,
        portal_group=channel.portal_group if channel else None,
        channel_verified=bool(channel and channel.verified),
        rule=rule,
        explanation=explanation,
        directory_version=router.directory_version,
        opens_at=opens_at,
        written=written,
        hours_verified=unit.hours_verified,
    )


def _closed_note(router: Router, req: RoutingRequest, office: Unit) -> str:
    return (
        f"Anmälan görs {describe_moment(req.at, router.calendar)}, utanför kontorstiden för "
        f"{office.name} ({router.schedule_text(office.id)})."
    )


def _unverified_hours_note(office: Unit) -> tuple[None, str]:
    """opens_at rests on hours nobody has checked; say so rather than sound certain."""
    default = " (standardtider)" if office.hours is None else ""
    return (
        None,
        f"Öppettiderna för {office.name} är inte verifierade{default}; tidpunkten är en "
        "uppskattning.",
    )


def _office_decision(
    router: Router, req: RoutingRequest, rec: _Recipient, copy_of_call: bool
) -> Decision:
    """The written report to the office (intake or district), with phone first when acute.

    ``copy_of_call``: the written report beside a socialjour call (acute, out of hours).
    """
    office = router.unit(rec.office_unit)
    opens_at = router.next_open(office.id, req.at)
    acute_phone = req.urgency == "acute" and opens_at is None
    phone_required = rec.phone_required or acute_phone
    channel = router.channel(office.id)
    phone = channel.phone if channel else None
    steps = list(rec.steps)
    if opens_at is None:
        if acute_phone:
            steps.append(
                (
                    "R-ACUTE-PHONE",
                    f"Akut ärende under kontorstid: ring först {office.name}"
                    f"{_phone_text(phone)}; den skriftliga anmälan skickas efteråt till samma "
                    f"enhet och {describe_opens_at(None)}. Vid fara för liv eller hälsa: "
                    "ring 112 först.",
                )
            )
        else:
            steps.append(
                (None, f"Den skriftliga anmälan till {office.name} {describe_opens_at(None)}.")
            )
    else:
        when = describe_opens_at(opens_at)
        if copy_of_call:
            text = (
                f"Den skriftliga anmälan går till {office.name}, som har stängt nu "
                f"({router.schedule_text(office.id)}); den {when}. Det akuta ärendet tas per "
                "telefon av socialjouren."
            )
        else:
            text = (
                f"{_closed_note(router, req, office)} Skriftliga anmälningar läses bara under "
                f"kontorstid, och socialjouren tar inte emot skriftliga anmälningar: anmälan "
                f"går till {office.name} och {when}. Blir ärendet akut: ring socialjouren, "
                "eller 112 vid fara för liv eller hälsa."
            )
        steps.append(("R-WRITTEN-NEXT-OPENING", text))
        if not office.hours_verified:
            steps.append(_unverified_hours_note(office))
    if phone_required and not acute_phone:
        later = f" när enheten öppnar ({describe_when(opens_at)})" if opens_at else ""
        steps.append(
            (
                None,
                f"Telefonkontakt krävs: ring {office.name}{_phone_text(phone)}{later} och "
                "dokumentera samtalet.",
            )
        )
    return _decision(
        router,
        rec,
        office,
        steps,
        rule="R-WRITTEN-NEXT-OPENING" if copy_of_call else rec.fixed_rule,
        phone_required=phone_required,
        phone=phone,
        written=True,
        opens_at=opens_at,
    )


def _socialjour_decision(router: Router, req: RoutingRequest, rec: _Recipient) -> Decision:
    """Acute out of office hours: the socialjour by phone (or 112 when it is closed)."""
    office = router.unit(rec.office_unit)
    office_opens = router.next_open(office.id, req.at)
    jour = router.socialjour_for(rec.code)
    channel = router.channel(jour.id)
    written = bool(channel and channel.email)
    opens_at = router.next_open(jour.id, req.at)
    known = router.hours_known(jour.id)
    closed = known and opens_at is not None
    phone = "112" if closed else (channel.phone if channel else None)
    steps = list(rec.steps)
    steps.append(
        (
            "R-OUT-OF-HOURS",
            f"Akut ärende. {_closed_note(router, req, office)} Socialjouren tar akuta ärenden "
            f"per telefon, så samtalet går till {jour.name}. Den skriftliga anmälan går till "
            f"{office.name} och {describe_opens_at(office_opens)}.",
        )
    )
    if not router.socialjour_verified(rec.code):
        steps.append(
            (
                None,
                f"Vilken socialjour som täcker {_m(router, rec.code)} är inte verifierat i "
                "katalogen; kontrollera på kommunens webbplats.",
            )
        )
    if not known:
        steps.append(
            (
                None,
                f"Öppettiderna för {jour.name} är inte verifierade (saknas i katalogen); "
                "jouren antas nåbar när kontoren har stängt. Svarar ingen: ring 112 och "
                "begär socialjouren via SOS Alarm.",
            )
        )
    elif closed:
        assert opens_at is not None
        steps.append(
            (
                "R-SOCIALJOUR-CLOSED-112",
                f"Enligt katalogen har {jour.name} stängt nu ({router.schedule_text(jour.id)}): "
                "ring 112 och begär socialjouren via SOS Alarm. Jouren öppnar igen "
                f"{describe_when(opens_at)}.",
            )
        )
    else:
        steps.append((None, f"{jour.name} har öppet nu ({router.schedule_text(jour.id)})."))
    if not closed:
        steps.append(
            (
                None,
                f"Ring {jour.name}{_phone_text(phone)} nu och dokumentera samtalet. Vid fara "
                "för liv eller hälsa: ring 112 först.",
            )
        )
    if known and not jour.hours_verified:
        steps.append((None, f"Öppettiderna för {jour.name} är inte verifierade."))
    if written:
        later = f"; den {describe_opens_at(opens_at)}" if opens_at else ""
        steps.append(
            (
                None,
                f"{jour.name} har en skriftlig kanal (e-post i kanalfilen) och får också den "
                f"skriftliga anmälan{later}.",
            )
        )
    else:
        steps.append(
            (None, f"{jour.name} har ingen skriftlig kanal: dit går bara telefonsamtalet.")
        )
    return _decision(
        router,
        rec,
        jour,
        steps,
        rule=rec.fixed_rule,
        phone_required=True,
        phone=phone,
        written=written,
        opens_at=opens_at,
    )


def _deliver(router: Router, req: RoutingRequest, rec: _Recipient) -> Decision:
    """Step 3: written to the office at any hour; acute is a phone call first (see module doc)."""
    if req.urgency == "acute" and not router.is_open(rec.office_unit, req.at):
        call = _socialjour_decision(router, req, rec)
        call.also = [_office_decision(router, req, rec, copy_of_call=True)]
        return call
    return _office_decision(router, req, rec, copy_of_call=False)


def _extras(router: Router, req: RoutingRequest, primary: str) -> list[_Recipient]:
    """Step 4: the staying municipality (acute) and the placing municipality, once each."""
    extras: dict[str, _Recipient] = {}
    staying = req.staying_municipality
    if req.urgency == "acute" and staying and staying != primary:
        rec = extras.setdefault(staying, _Recipient(staying, fixed_rule="R-ACUTE-STAYING"))
        rec.steps.append(
            (
                "R-ACUTE-STAYING",
                f"Akut ärende: barnet vistas i {_m(router, staying, True)}. Vistelsekommunen har "
                "det yttersta ansvaret i akuta situationer och får därför också anmälan.",
            )
        )
    if req.placed_by and req.placed_by != primary:
        rec = extras.setdefault(req.placed_by, _Recipient(req.placed_by, fixed_rule="R-PLACED-BY"))
        rec.steps.append(
            (
                "R-PLACED-BY",
                f"Barnet är placerat av {_m(router, req.placed_by, True)}. Den placerande "
                "kommunen behåller ansvaret under placeringen och får därför också anmälan.",
            )
        )
    return list(extras.values())


def decide(router: Router, req: RoutingRequest) -> Decision:
    """Apply every rule to one child's request; one decision (with ``also``) per child."""
    require_aware(req.at)
    district = check_codes(router, req)
    primary = _responsible(router, req)
    if req.protected_identity:
        _protected_note(primary)
    _choose_office(router, req, primary, district)
    decision = _deliver(router, req, primary)
    for extra in _extras(router, req, primary.code):
        if req.protected_identity:
            _protected_note(extra)
        _choose_office(router, req, extra, None)
        decision.also.append(_deliver(router, req, extra))
    return decision
