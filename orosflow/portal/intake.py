"""Social services' intake officers: the inbox, opening a report, confirm / decline / feedback,
a print view, and the same actions as a JSON API under ``/api/v1/inbox``.

The access rule and every query live in :mod:`orosflow.views.intake`; this module only turns
its answers into pages and JSON. A report outside the officer's units raises
:class:`orosflow.views.intake.NotVisible`, answered here with the same 404 as a reference that
does not exist, after :func:`deny_report_access` has audited and logged the attempt (in its own
transaction, so the record survives the error response).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field

from models.accounts import Role
from orosflow.core.clock import utcnow
from orosflow.core.db import session_scope
from orosflow.core.legal import legal_text
from orosflow.handover.lifecycle import (
    DECLINE_REASONS,
    FEEDBACK_OUTCOMES,
    ActionResult,
    IllegalTransition,
    LifecycleError,
)
from orosflow.identity.accounts import Principal
from orosflow.portal.pdf import html_to_pdf
from orosflow.portal.web import (
    ApiError,
    ApiIntake,
    ErrorOut,
    IntakeUser,
    PageError,
    api_router,
    deny_report_access,
    page_router,
    render,
    templates,
)
from orosflow.views import intake as inbox
from orosflow.views.intake import (
    ActionOut,
    InboxFilter,
    InboxList,
    NotVisible,
    ReportView,
)

pages = page_router(Role.INTAKE, prefix="/intake")
api = api_router(Role.INTAKE, prefix="/inbox", tags=["intake"])

#: The legal.toml entry the print view and the PDF are marked with (rendered with its
#: verified flag: an unverified paragraph says so).
CONFIDENTIALITY = "social_services_confidentiality"
#: The audit purpose of a PDF download (a ``content.read`` like opening the report).
PDF_PURPOSE = "pdf"

#: Notices after a successful action (303 → ``?done=<code>``; no personal data in the URL).
NOTICES: dict[str, str] = {
    "confirmed": "Mottagandet är bekräftat. Kuratorn ser nu att anmälan är överlämnad.",
    "declined": "Du har avböjt anmälan. Den skickas nu till en annan mottagare och kuratorn "
    "får besked.",
    "declined_unresolved": "Du har avböjt anmälan, men ingen annan mottagare kunde fastställas. "
    "Kuratorn och driften har larmats.",
    "feedback": "Återkopplingen är registrerad. Kuratorn får besked om att den finns att läsa "
    "i portalen.",
    "feedback_corrected": "Återkopplingen är rättad. Kuratorn får besked om att den finns att "
    "läsa i portalen.",
}
#: Which form field a refused action points at (the rest point at the action's section).
ERROR_FIELDS: dict[str, tuple[str, str]] = {
    "outcome_invalid": ("outcome", "Utfall"),
    "date_future": ("decided_on", "Datum för beslutet"),
    "date_too_early": ("decided_on", "Datum för beslutet"),
    "date_invalid": ("decided_on", "Datum för beslutet"),
    "reason_invalid": ("reason", "Orsak"),
    "unknown_unit": ("right_unit_id", "Rätt mottagare"),
    "right_unit_same": ("right_unit_id", "Rätt mottagare"),
}
SECTIONS: dict[str, tuple[str, str]] = {
    "confirm": ("confirm", "Bekräfta mottagandet"),
    "decline": ("decline", "Avböj"),
    "feedback": ("feedback", "Återkoppling"),
    "correct": ("correct", "Rätta återkopplingen"),
}


def _deny(principal: Principal, missing: NotVisible, *, via: str, api: bool = False) -> Exception:
    """Audit the refused attempt in a transaction of its own; returns the 404 to raise."""
    with session_scope() as s:
        return deny_report_access(s, principal, missing.reference, via=via, api=api)


# --- pages ------------------------------------------------------------------------------------


@pages.get("")
def inbox_page(
    request: Request, principal: IntakeUser, status: str | None = Query(None)
) -> Response:
    listing = inbox.inbox(principal, inbox.parse_filter(status))
    return render(
        request,
        "intake/inbox.html",
        {
            "title": "Inkorg",
            "listing": listing,
            "filters": inbox.FILTER_LABELS,
            "units": inbox.unit_names(principal),
        },
    )


def _report_page(
    request: Request,
    principal: Principal,
    reference: str,
    *,
    via: str,
    done: str | None = None,
    errors: list[dict[str, str]] | None = None,
    values: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    try:
        view = inbox.open_report(principal, reference, purpose="intake-open")
    except NotVisible as missing:
        raise _deny(principal, missing, via=via) from None
    errors = errors or []
    return render(
        request,
        "intake/report.html",
        {
            "title": f"Anmälan {view.reference}",
            "view": view,
            "form": view.content,
            "notice": NOTICES.get(done or ""),
            "errors": errors,
            "errors_by_field": {e["field"]: e["message"] for e in errors},
            "values": values or {},
            "outcomes": FEEDBACK_OUTCOMES,
            "reasons": DECLINE_REASONS,
            "unit_choices": inbox.decline_choices(principal, exclude=view.handover.unit_id)
            if view.can_decline
            else [],
            "consultation_labels": inbox.CONSULTATION_LABELS,
            "municipality_name": inbox.municipality_name,
            "today": inbox.today().isoformat(),
        },
        status_code=status_code,
    )


@pages.get("/reports/{reference}")
def report_page(
    request: Request, reference: str, principal: IntakeUser, done: str | None = None
) -> Response:
    return _report_page(request, principal, reference, via="page", done=done)


def _refused(
    request: Request,
    principal: Principal,
    reference: str,
    action: str,
    exc: LifecycleError,
    values: dict[str, Any] | None = None,
) -> Response:
    """Re-render the report with the Swedish reason at the top (nothing was changed)."""
    field, label = ERROR_FIELDS.get(exc.code) or SECTIONS[action]
    if action == "correct" and field in ("outcome", "decided_on"):
        field = f"correct_{field}"  # the correction form's own fields
    status = 409 if isinstance(exc, IllegalTransition) else 400
    return _report_page(
        request,
        principal,
        reference,
        via=f"{action}-form",
        errors=[{"field": field, "label": label, "message": exc.message}],
        values=values,
        status_code=status,
    )


def _done(reference: str, code: str) -> RedirectResponse:
    return RedirectResponse(f"/intake/reports/{reference}?done={code}", status_code=303)


@pages.post("/reports/{reference}/confirm")
def confirm_page(request: Request, reference: str, principal: IntakeUser) -> Response:
    try:
        result = inbox.confirm(principal, reference)
    except NotVisible as missing:
        raise _deny(principal, missing, via="confirm-form") from None
    except LifecycleError as exc:
        return _refused(request, principal, reference, "confirm", exc)
    if not result.changed:  # a second confirmation: say so, as an error, nothing changed
        repeat = IllegalTransition("already_confirmed", result.message)
        return _refused(request, principal, reference, "confirm", repeat)
    return _done(result.reference, "confirmed")


@pages.post("/reports/{reference}/decline")
def decline_page(
    request: Request,
    reference: str,
    principal: IntakeUser,
    reason: str = Form(""),
    right_unit_id: str = Form(""),
) -> Response:
    values = {"reason": reason, "right_unit_id": right_unit_id}
    try:
        result = inbox.decline(principal, reference, reason, right_unit_id.strip() or None)
    except NotVisible as missing:
        raise _deny(principal, missing, via="decline-form") from None
    except LifecycleError as exc:
        if exc.code == "reason_invalid":
            exc = LifecycleError(exc.code, "Välj varför enheten avböjer anmälan.")
        return _refused(request, principal, reference, "decline", exc, values)
    unresolved = bool(result.details.get("failed_closed"))
    return _done(result.reference, "declined_unresolved" if unresolved else "declined")


@pages.post("/reports/{reference}/feedback")
def feedback_page(
    request: Request,
    reference: str,
    principal: IntakeUser,
    outcome: str = Form(""),
    decided_on: str = Form(""),
) -> Response:
    return _feedback_form(request, reference, principal, outcome, decided_on, correct=False)


@pages.post("/reports/{reference}/feedback/correct")
def correct_feedback_page(
    request: Request,
    reference: str,
    principal: IntakeUser,
    outcome: str = Form(""),
    decided_on: str = Form(""),
) -> Response:
    """The explicit correction of recorded feedback (audited as ``feedback.corrected``)."""
    return _feedback_form(request, reference, principal, outcome, decided_on, correct=True)


def _feedback_form(
    request: Request,
    reference: str,
    principal: Principal,
    outcome: str,
    decided_on: str,
    *,
    correct: bool,
) -> Response:
    """Feedback and its correction take the same form fields and refuse the same way."""
    form, prefix = ("correct", "correct_") if correct else ("feedback", "")
    values = {f"{prefix}outcome": outcome, f"{prefix}decided_on": decided_on}
    try:
        day = date.fromisoformat(decided_on.strip()) if decided_on.strip() else None
    except ValueError:
        bad = LifecycleError("date_invalid", "Ange datumet som ÅÅÅÅ-MM-DD, t.ex. 2026-11-23.")
        return _refused(request, principal, reference, form, bad, values)
    record = inbox.correct_feedback if correct else inbox.record_feedback
    try:
        result = record(principal, reference, outcome, day)
    except NotVisible as missing:
        raise _deny(principal, missing, via=f"{form}-form") from None
    except LifecycleError as exc:
        if exc.code == "outcome_invalid":
            exc = LifecycleError(exc.code, "Välj vad socialtjänsten har beslutat.")
        return _refused(request, principal, reference, form, exc, values)
    if not result.changed:
        repeat = IllegalTransition("feedback_repeat", result.message)
        return _refused(request, principal, reference, form, repeat, values)
    return _done(result.reference, "feedback_corrected" if correct else "feedback")


def _print_context(view: ReportView, principal: Principal, *, pdf: bool) -> dict[str, Any]:
    """What the print view and the PDF are made from (one template, the same content)."""
    return {
        "title": f"{'Orosanmälan' if pdf else 'Utskrift'} {view.reference}",
        "view": view,
        "form": view.content,
        "printed_at": utcnow(),
        "pdf": pdf,
        "user": principal,
        "confidentiality": legal_text(CONFIDENTIALITY),
        "consultation_labels": inbox.CONSULTATION_LABELS,
        "municipality_name": inbox.municipality_name,
    }


@pages.get("/reports/{reference}/print")
def print_page(request: Request, reference: str, principal: IntakeUser) -> Response:
    try:
        view = inbox.open_report(principal, reference, purpose="print")
    except NotVisible as missing:
        raise _deny(principal, missing, via="print") from None
    return render(request, "intake/print.html", _print_context(view, principal, pdf=False))


def _report_pdf(principal: Principal, reference: str, *, via: str, api: bool) -> Response:
    """The print view as a tagged PDF for the case file. Opening it is the audited content read
    (``content.read``, purpose ``pdf``); a unit that declined the report gets no PDF (its
    attempt is already ``access.denied`` on record), another unit's report is a 404."""
    try:
        view = inbox.open_report(principal, reference, purpose=PDF_PURPOSE)
    except NotVisible as missing:
        raise _deny(principal, missing, via=via, api=api) from None
    if view.withheld:
        if api:
            raise ApiError(403, "content_withheld", view.content_notice or "")
        raise PageError(403, "Ingen PDF", view.content_notice or "")
    html = templates.get_template("intake/print.html").render(
        _print_context(view, principal, pdf=True)
    )
    return Response(
        html_to_pdf(html),
        media_type="application/pdf",
        # The reference only: no personal data in a file name that lands in Downloads.
        headers={
            "Content-Disposition": f'attachment; filename="orosanmalan-{view.reference}.pdf"',
            "Cache-Control": "no-store",
        },
    )


@pages.get("/reports/{reference}/pdf")
def pdf_page(reference: str, principal: IntakeUser) -> Response:
    return _report_pdf(principal, reference, via="pdf", api=False)


# --- JSON API ---------------------------------------------------------------------------------


class FeedbackIn(BaseModel):
    outcome: str = Field(
        description="What social services decided.",
        json_schema_extra={"enum": list(FEEDBACK_OUTCOMES)},
        examples=["opened"],
    )
    decided_on: date | None = Field(
        default=None, description="Date of the decision; defaults to today (Europe/Stockholm)."
    )


class DeclineIn(BaseModel):
    reason: str = Field(
        description="Why the unit is not the right receiver (a code, never free text).",
        json_schema_extra={"enum": list(DECLINE_REASONS)},
        examples=["wrong_district"],
    )
    right_unit_id: str | None = Field(
        default=None, description="The right receiving unit's id, if known (e.g. intake-0182)."
    )


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "No or invalid API token."},
    403: {"model": ErrorOut, "description": "The token's account is not an intake officer."},
    404: {
        "model": ErrorOut,
        "description": "No such report among those routed to the caller's units.",
    },
}
ACTION_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    409: {
        "model": ErrorOut,
        "description": "Not allowed in the current state (code illegal_transition etc.).",
    },
    422: {
        "model": ErrorOut,
        "description": "Invalid input (unknown outcome or reason code, bad date).",
    },
}


def _api_error(exc: LifecycleError) -> ApiError:
    if isinstance(exc, IllegalTransition):
        return ApiError(409, exc.code, exc.message)
    return ApiError(422, exc.code, exc.message)


def _action(result: ActionResult) -> ActionOut:
    return ActionOut(**inbox.action_out(result))


@api.get(
    "",
    summary="The inbox: reports routed to the caller's units (metadata only)",
    response_model=InboxList,
    responses=ERROR_RESPONSES,
)
def inbox_api(principal: ApiIntake, status: InboxFilter = inbox.DEFAULT_FILTER) -> InboxList:
    return inbox.inbox(principal, status)


@api.get(
    "/{reference}",
    summary="Open a report: metadata and content (the read is audited)",
    response_model=ReportView,
    responses=ERROR_RESPONSES,
)
def open_api(reference: str, principal: ApiIntake) -> ReportView:
    try:
        return inbox.open_report(principal, reference, purpose="api-open")
    except NotVisible as missing:
        raise _deny(principal, missing, via="api", api=True) from None


@api.post(
    "/{reference}/confirm",
    summary="Confirm receipt (a repeat returns changed=false and changes nothing)",
    response_model=ActionOut,
    responses=ACTION_RESPONSES,
)
def confirm_api(reference: str, principal: ApiIntake) -> ActionOut:
    try:
        return _action(inbox.confirm(principal, reference))
    except NotVisible as missing:
        raise _deny(principal, missing, via="api-confirm", api=True) from None
    except LifecycleError as exc:
        raise _api_error(exc) from None


@api.post(
    "/{reference}/feedback",
    summary="Record feedback: investigation opened, not opened or already ongoing",
    response_model=ActionOut,
    responses=ACTION_RESPONSES,
)
def feedback_api(reference: str, body: FeedbackIn, principal: ApiIntake) -> ActionOut:
    try:
        return _action(inbox.record_feedback(principal, reference, body.outcome, body.decided_on))
    except NotVisible as missing:
        raise _deny(principal, missing, via="api-feedback", api=True) from None
    except LifecycleError as exc:
        raise _api_error(exc) from None


@api.post(
    "/{reference}/feedback/correction",
    summary="Correct recorded feedback (audited as feedback.corrected; both entries stay)",
    response_model=ActionOut,
    responses=ACTION_RESPONSES,
)
def correct_feedback_api(reference: str, body: FeedbackIn, principal: ApiIntake) -> ActionOut:
    try:
        return _action(inbox.correct_feedback(principal, reference, body.outcome, body.decided_on))
    except NotVisible as missing:
        raise _deny(principal, missing, via="api-correct", api=True) from None
    except LifecycleError as exc:
        raise _api_error(exc) from None


@api.post(
    "/{reference}/decline",
    summary="Decline as the wrong receiver; the report is re-routed at once",
    response_model=ActionOut,
    responses=ACTION_RESPONSES,
)
def decline_api(reference: str, body: DeclineIn, principal: ApiIntake) -> ActionOut:
    try:
        result = inbox.decline(principal, reference, body.reason, body.right_unit_id)
    except NotVisible as missing:
        raise _deny(principal, missing, via="api-decline", api=True) from None
    except LifecycleError as exc:
        raise _api_error(exc) from None
    return _action(result)


@api.get(
    "/{reference}/pdf",
    summary="The report as a tagged PDF (PDF/UA-1) for the case file; the read is audited",
    response_class=Response,
    responses={
        **ERROR_RESPONSES,
        200: {"content": {"application/pdf": {}}, "description": "The PDF."},
        403: {"model": ErrorOut, "description": "The caller's unit declined the report."},
    },
)
def pdf_api(reference: str, principal: ApiIntake) -> Response:
    return _report_pdf(principal, reference, via="api-pdf", api=True)
