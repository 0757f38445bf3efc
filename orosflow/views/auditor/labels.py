"""Swedish labels and short texts the auditor's pages, API and exports share: urgencies, audit
actions, rule descriptions, mail kinds, municipalities, categories and durations."""

from __future__ import annotations

import re

from models.form import categories as form_categories
from orosflow.core.settings import get_settings
from routing import RULES, UnknownCodeError, get_router

UNKNOWN_CATEGORY = "unknown"

URGENCY_LABELS: dict[str, str] = {"acute": "Akut", "not_acute": "Inte akut"}

#: Swedish labels of the audit actions the code base writes; unknown actions show their code.
ACTION_LABELS: dict[str, str] = {
    "report.received": "Anmälan mottagen och sparad krypterad",
    "report.status": "Anmälans status ändrad",
    "report.escalated": "Anmälan eskalerad (telefonkontakt saknas)",
    "report.erased": "Anmälans innehåll raderat (gallring)",
    "flow_run.created": "Flödeskörning skapad i Prefect",
    "flow_run.attached": "Flödeskörning kopplad till anmälan",
    "content.read": "Anmälans innehåll läst",
    "handover.created": "Överlämning skapad (mottagare vald)",
    "handover.notified": "Mottagaren aviserad via e-post",
    "handover.confirmed": "Mottagandet bekräftat",
    "handover.escalated": "Överlämningen eskalerad",
    "handover.declined": "Mottagaren avböjde",
    "handover.unresolved": "Överlämningen misslyckades (ingen kanal)",
    "handover.fail_closed": "Ingen nåbar mottagare – kurator och drift larmade",
    "handover.reroute_failed": "Omdirigering misslyckades",
    "mail.sent": "E-post skickad",
    "mail.undeliverable": "E-post kunde inte skickas",
    "phone.recorded": "Telefonkontakt registrerad",
    "feedback.recorded": "Återkoppling registrerad",
    "feedback.corrected": "Återkoppling rättad (tidigare och nytt utfall i detaljerna)",
    "access.denied": "Åtkomst nekad",
    "audit.exported": "Granskningsdata exporterad",
}

#: Rules that are not routing rules (those are in ``routing.RULES``): intake and lifecycle.
OTHER_RULES: dict[str, str] = {
    "R-INTAKE": "Anmälan validerades och sparades krypterad innan kuratorn fick kvitto.",
    "L-NOTIFY": "Mottagaren aviseras via e-post utan personuppgifter; fristen för "
    "bekräftelse börjar löpa.",
    "L-FAIL": "Mottagaren saknar kanal; överlämningen misslyckas.",
    "L-ROUTE": "Anmälan har dirigerats till sina mottagare.",
    "L-CONFIRM": "Den mottagande enheten bekräftar mottagandet; överlämningen är klar.",
    "L-CONFIRM-VIA-ESCALATION": "Eskaleringsmottagaren bekräftade; den ursprungliga "
    "överlämningen stängs.",
    "L-ESCALATE-REMIND": "Ingen bekräftelse inom fristen: påminnelse till enheten.",
    "L-ESCALATE-SOCIALJOUR": "Fortfarande obekräftad: ny överlämning till socialjouren "
    "(eller till mottagningen när enheten redan var socialjouren).",
    "L-ESCALATE-COUNSELOR": "Fortfarande obekräftad: kuratorn ombeds ringa socialtjänsten.",
    "L-ESCALATE-PHONE": "Akut anmälan utan registrerad telefonkontakt: kuratorn påminns.",
    "L-DECLINE-REROUTE": "Enheten avböjde; anmälan skickas vidare till rätt mottagare.",
    "L-FAIL-CLOSED": "Ingen nåbar mottagare: kuratorn och driften larmas.",
    "L-PHONE": "Kuratorns telefonkontakt med socialtjänsten registrerad.",
    "L-FEEDBACK": "Socialtjänsten har lämnat återkoppling (innehållet visas inte här).",
    "L-FEEDBACK-CORRECT": "Enheten rättade sin återkoppling; båda uppgifterna finns kvar och "
    "kuratorn får besked.",
    "L-CLOSE": "Ärendet är avslutat.",
}

MAIL_KIND_LABELS: dict[str, str] = {
    "reminder": "påminnelse till enheten",
    "counselor_phone": "uppmaning till kuratorn att ringa",
    "phone_missing": "påminnelse om telefonkontakt",
    "feedback_notice": "besked till kuratorn om återkoppling",
    "rerouted": "besked till kuratorn om omdirigering",
    "unresolved_counselor": "larm till kuratorn (ingen mottagare)",
    "unresolved_operator": "larm till driften (ingen mottagare)",
}


def rule_text(rule: str | None) -> str | None:
    """The general Swedish description of a rule id, or ``None`` when unknown."""
    if not rule:
        return None
    if rule in RULES:
        return RULES[rule]
    if rule in OTHER_RULES:
        return OTHER_RULES[rule]
    match = re.fullmatch(r"RET-(\d+)D", rule)
    if match:
        return f"Gallring: innehållet raderas {match.group(1)} dagar efter inlämning."
    return None


def municipality_label(code: str) -> str:
    """``"0182 Nacka"``; the bare code when the directory does not know it."""
    try:
        return f"{code} {get_router().municipality_name(code)}"
    except (UnknownCodeError, KeyError, ValueError):
        return code


def category_label(category_id: str) -> str:
    if category_id == UNKNOWN_CATEGORY:
        return "okänd"
    known = form_categories().get(category_id)
    return known.label if known else category_id


def duration_text(minutes: float | None) -> str:
    """Swedish short form of a duration: ``"29 s"``, ``"45 min"``, ``"2 h 5 min"``,
    ``"3 d 4 h"``. Under a minute in seconds: a confirmation after 29 s is not "0 min"."""
    if minutes is None:
        return "–"
    seconds = round(minutes * 60)
    if seconds < 60:
        return f"{seconds} s"
    total = round(minutes)
    if total < 60:
        return f"{total} min"
    hours, mins = divmod(total, 60)
    if hours < 24:
        return f"{hours} h {mins} min" if mins else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def category_ids(raw: str | None) -> list[str]:
    """Category codes of a report; empty for old rows stored before codes were kept."""
    return [c.strip() for c in (raw or "").split(",") if c.strip()]


def flow_run_url(flow_run_id: str | None) -> str | None:
    if not flow_run_id:
        return None
    return f"{get_settings().prefect_ui_url.rstrip('/')}/runs/flow-run/{flow_run_id}"
