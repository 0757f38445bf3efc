"""Routing rules: who receives a child-concern report, and a Swedish explanation of why.

Each rule has a stable id (stored with the handover, so auditors can find the rule later)
and renders its explanation with the actual municipality and unit names. Order of rules:

1. Which municipality is responsible (first that applies):
   ``R-UNACCOMPANIED-ASSIGNED`` (unaccompanied minor with a known anvisningskommun),
   ``R-UNACCOMPANIED-ARRIVAL`` (else the ankomstkommun), ``R-RESIDENCE`` (residence
   municipality, any of the 290, also across county borders), ``R-STAYING-FALLBACK``
   (residence unknown: where the child is staying), ``R-CLINIC-FALLBACK`` (else the clinic's
   municipality). With protected identity the stated municipality is used under
   ``R-PROTECTED-IDENTITY``.
2. Which unit in it: the intake unit; for Stockholm city (0180) the district administration
   (``R-STOCKHOLM-DISTRICT``). Unknown district (``R-STOCKHOLM-DISTRICT-UNKNOWN``): the city's
   city-wide intake (the e-service that forwards to the right district), phone required — a
   guessed district risks the wrong receiver and a late protection assessment, and the
   socialjour is for out-of-hours and acute matters only. With protected identity the district
   is never used nor named; the city-wide intake receives the report.
3. When: outside the unit's office hours (weekends, public holidays, observed eves)
   ``R-OUT-OF-HOURS`` sends it to the municipality's socialjour, phone required. Acute in
   office hours: ``R-ACUTE-PHONE``, the intake unit by phone first with the number, written
   report after. (The socialjour is not chosen for acute reports in office hours: the known
   jours open only in the afternoon, e.g. Västerås 16:30, Södertälje 16:00.)
4. Further recipients (``Decision.also``): ``R-ACUTE-STAYING`` (acute, and the child stays
   in another municipality: it carries the acute responsibility) and ``R-PLACED-BY`` (the
   placing municipality keeps responsibility). Each gets the same time-of-day treatment.

The primary decision's ``rule`` is the rule that settled its unit, by precedence
OUT-OF-HOURS > ACUTE-PHONE > PROTECTED-IDENTITY > STOCKHOLM-DISTRICT(-UNKNOWN) > step 1;
an extra recipient's ``rule`` is the rule that added it. Every applied rule id is listed at
the end of the explanation. Explanations never contain an address, and never the district
when the identity is protected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from routing.directory import STOCKHOLM_CITY
from routing.errors import UnknownCodeError
from routing.hours import describe_moment, require_aware
from routing.models import Decision, District, RoutingRequest

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
    "R-OUT-OF-HOURS": "Utanför kontorstid (kvällar, helger, helgdagar, lediga aftnar): "
    "kommunens socialjour, telefonkontakt krävs.",
    "R-ACUTE-PHONE": "Akut ärende: ring först (numret anges), skriftlig anmälan följer.",
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


def _deliver(router: Router, req: RoutingRequest, rec: _Recipient) -> Decision:
    """Step 3: office unit in office hours, else the socialjour; acute means phone first."""
    acute = req.urgency == "acute"
    steps = list(rec.steps)
    phone_required = rec.phone_required
    office = router.unit(rec.office_unit)
    if router.is_open(office.id, req.at):
        chosen = office
        if acute:
            phone_required = True
    else:
        chosen = router.socialjour_for(rec.code)
        phone_required = True
        schedule = router.schedule_text(office.id)
        steps.append(
            (
                "R-OUT-OF-HOURS",
                f"Anmälan görs {describe_moment(req.at, router.calendar)}, utanför kontorstiden "
                f"för {office.name} ({schedule}). Skriftliga anmälningar läses bara under "
                f"kontorstid, så mottagare är {chosen.name}.",
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
        if chosen.hours is not None and not router.is_open(chosen.id, req.at):
            steps.append(
                (
                    None,
                    f"Enligt katalogen är {chosen.name} inte bemannad vid denna tid "
                    f"({router.schedule_text(chosen.id)}); ring 112 och be att få kontakt med "
                    "socialjouren.",
                )
            )
    channel = router.channel(chosen.id)
    phone = channel.phone if channel else None
    phone_text = (
        f" på {phone}"
        if phone
        else " (telefonnummer saknas i kanalfilen; ta reda på numret via kommunens webbplats)"
    )
    if acute:
        steps.append(
            (
                "R-ACUTE-PHONE",
                f"Akut ärende: ring först {chosen.name}{phone_text}; den skriftliga anmälan "
                "skickas efteråt. Vid fara för liv eller hälsa: ring 112 först.",
            )
        )
    elif phone_required:
        steps.append(
            (
                None,
                f"Telefonkontakt krävs: ring {chosen.name}{phone_text} och dokumentera samtalet.",
            )
        )
    if channel is None or not channel.usable:
        steps.append((None, f"Ingen kontaktkanal är konfigurerad för {chosen.name}."))
    elif not channel.verified:
        steps.append((None, "Kontaktuppgifterna är inte verifierade."))

    applied = [rule for rule, _ in steps if rule is not None]
    if rec.fixed_rule is not None:
        rule = rec.fixed_rule
    else:
        rule = next((r for r in _PRECEDENCE if r in applied), applied[0])
    ids = list(dict.fromkeys(applied))
    explanation = " ".join(text for _, text in steps) + f" Tillämpade regler: {', '.join(ids)}."
    return Decision(
        municipality=rec.code,
        municipality_name=router.municipality_name(rec.code),
        unit_kind=chosen.kind,
        unit_id=chosen.id,
        unit_name=chosen.name,
        phone_required=phone_required,
        phone=phone,
        email=channel.email if channel else None,
        portal_group=channel.portal_group if channel else None,
        channel_verified=bool(channel and channel.verified),
        rule=rule,
        explanation=explanation,
        directory_version=router.directory_version,
    )


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
    also: list[Decision] = []
    for extra in _extras(router, req, primary.code):
        if req.protected_identity:
            _protected_note(extra)
        _choose_office(router, req, extra, None)
        also.append(_deliver(router, req, extra))
    decision.also = also
    return decision
