"""Counselor pages and API: the concern form, the receipt, "my reports" and one report's status.

Pages (signed-in counselors, CSRF on every post, no JavaScript):

- ``GET/POST /reports/new``: the form; add/remove rows re-render it, ``action=submit`` sends it
  (400 with an error summary, or 303 to the receipt);
- ``GET /my/receipts/{sibling_group_id}``: reference numbers and, when needed, "Ring nu";
- ``GET /my/reports``, ``GET /my/reports/{reference}``, ``POST /my/reports/{reference}/phone``.

API (``/api/v1``, bearer token of a counselor account): ``POST /reports``, ``GET /reports``,
``GET /reports/{reference}``, ``GET /reports/{reference}/feedback``,
``POST /reports/{reference}/phone-contacts``. Flow runs start in the background after the
response is ready; when Prefect is down the reconciler starts them later.
"""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, time
from typing import Annotated, Any

from fastapi import BackgroundTasks, Body, Depends, Header, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field

from models.accounts import Role
from models.form import ConcernForm
from orosflow.core.clock import utcnow
from orosflow.core.crypto import CryptoError, KeyMismatch
from orosflow.core.db import session_scope
from orosflow.core.legal import age_guidance, age_rule, deadlines, legal_text
from orosflow.core.settings import PROJECT_ROOT, get_settings
from orosflow.handover import trigger
from orosflow.handover.duplicates import DuplicateSuspected, IdempotencyConflict, key_problem
from orosflow.handover.lifecycle import (
    DECLINE_REASONS,
    IllegalTransition,
    LifecycleError,
    local_text,
)
from orosflow.handover.submission import Receipt
from orosflow.handover.validation import STOCKHOLM, FormInvalid
from orosflow.identity import accounts
from orosflow.identity.accounts import Principal
from orosflow.portal import concern_form as cf
from orosflow.portal.web import (
    ApiCounselor,
    ApiError,
    CounselorUser,
    ErrorOut,
    api_router,
    deny_report_access,
    page_router,
    render,
)
from orosflow.views import counselor as counselor_reports

log = logging.getLogger("orosflow.portal.counselor")

pages = page_router(Role.COUNSELOR)
api = api_router(Role.COUNSELOR, tags=["counselor"])


# --- shared helpers ---------------------------------------------------------------------------


async def _start_flows(items: list[tuple[str, str]]) -> None:
    """Start the reports' flow runs; never fails the request (the reconciler retries)."""
    try:
        started = await trigger.start_flow_runs(items)
    except Exception as exc:  # noqa: BLE001 - Prefect down or misconfigured: retried later
        log.warning("flow runs not started (%s); the reconciler retries", type(exc).__name__)
        return
    missing = [rid for rid, run in started.items() if run is None]
    if missing:
        log.info("%d flow run(s) not started now; the reconciler retries", len(missing))


def _start_in_background(background: BackgroundTasks, receipt: Receipt) -> None:
    if not get_settings().flow_runs:  # turned off: the reconciler starts what is queued
        return
    items = [(r.report_id, r.reference) for r in receipt.reports]
    background.add_task(_start_flows, items)


def _deny(principal: Principal, reference: str, *, via: str, api: bool = False) -> Exception:
    """Audit (committed) and log an attempt outside the caller's reports; the 404 to raise."""
    with session_scope() as s:
        return deny_report_access(s, principal, reference, via=via, api=api)


def _when(iso: str | None) -> str:
    """ISO timestamp from ``orosflow.views.counselor`` as Stockholm wall-clock text."""
    return local_text(datetime.fromisoformat(iso)) if iso else "–"


def _law(key: str) -> str:
    """A legal reference as counselors see it: without the "inte verifierad" disclaimer (it
    stays in the data and in the auditor's and admin's views)."""
    return legal_text(key, flag_unverified=False)


def _timeline() -> dict[str, Any]:
    """Deadline figures for "what happens next" (configuration, not hard-coded law)."""
    cfg = deadlines()
    return {
        "acute_minutes": cfg["handover"]["acute_minutes"],
        "not_acute_at": cfg["handover"]["not_acute_next_working_day_at"],
        "phone_minutes": cfg["handover"]["acute_phone_record_minutes"],
        "assessment_days": cfg["social_services"]["preliminary_assessment_days"],
        "feedback_days": cfg["social_services"]["feedback_days"],
        "feedback_verified": cfg["social_services"].get("feedback_days_verified", False),
        "assessment_law": _law("preliminary_assessment"),
        "feedback_law": _law("feedback_to_reporter"),
    }


# --- the form ---------------------------------------------------------------------------------


async def _posted(request: Request) -> list[tuple[str, Any]]:
    """The posted form's fields (already parsed once by the CSRF check; Starlette caches it)."""
    form = await request.form()
    return list(form.multi_items())


Posted = Annotated[list[tuple[str, Any]], Depends(_posted)]


def form_page(
    request: Request,
    raw: cf.Raw,
    *,
    errors: list[cf.PageError] | None = None,
    by_slot: dict[str, str] | None = None,
    focus: str | None = None,
    notice: str | None = None,
    duplicate: DuplicateSuspected | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "counselor/form.html",
        {
            "title": "Ny orosanmälan",
            "v": raw,
            "errors": errors or [],
            "e": by_slot or {},
            "focus": focus,
            "notice": notice,
            "duplicate": duplicate,
            "limits": cf.ROW_LIMITS,
            "labels": cf.ROW_LABELS,
            "titles": cf.ROW_TITLES,
            "single": cf.LABELS,
            "category_groups": cf.category_groups(),
            "not_told": cf.guardians_not_told_labels(),
            "municipalities": cf.municipality_groups(),
            "districts": cf.districts(),
            "districts_options": [(d_id, name) for d_id, name, _ in cf.districts()],
            "consultation_kinds": cf.CONSULTATION_KINDS,
            "reporting_duty": _law("reporting_duty"),
            "adult_short": cf.ADULT_SHORT,
            "age_guidance": [
                age_guidance(age_rule().adult_age, flag_unverified=False),
                age_guidance(99, flag_unverified=False),
            ],
            "health_confidentiality": _law("health_confidentiality"),
            "t": _timeline(),
            "today": utcnow().astimezone(STOCKHOLM).date().isoformat(),
            "idle_minutes": get_settings().session_idle_minutes,
        },
        status_code=status_code,
    )


def _initial(principal: Principal) -> cf.Raw:
    """An empty form with the clinic details the account remembers."""
    return cf.initial(principal, accounts.clinic_details(principal.user_id))


@pages.get("/reports/new")
def new_report(request: Request, principal: CounselorUser) -> Response:
    return form_page(request, _initial(principal))


@pages.get("/my/reports/new")
def new_report_alias(request: Request, principal: CounselorUser) -> Response:
    """The form also here: app.py's ``/reports/{reference}`` link (registered before this
    router) catches ``GET /reports/new`` and sends counselors to ``/my/reports/new``."""
    return form_page(request, _initial(principal))


@pages.post("/reports/new")
def post_report(
    request: Request, principal: CounselorUser, posted: Posted, background: BackgroundTasks
) -> Response:
    """Send the form (``action=submit``) or add/remove a row and show the form again."""
    raw = cf.parse_post(posted, principal)
    action = next((str(v) for k, v in posted if k == "action"), "")
    if action in ("submit", "submit_confirmed"):
        raw = cf.prune_blank_rows(raw)
        token = raw["submission_token"]
        data = cf.to_submission(raw)
        try:
            receipt = counselor_reports.submit_as(
                data,
                principal,
                idempotency_key=None if key_problem(token) else f"web:{token}",
                confirm_duplicate=action == "submit_confirmed",
            )
        except FormInvalid as exc:
            errors, by_slot = cf.page_errors(exc.errors, raw)
            return form_page(request, raw, errors=errors, by_slot=by_slot, status_code=400)
        except DuplicateSuspected as exc:
            return form_page(request, raw, duplicate=exc, status_code=409)
        except CryptoError as exc:  # a misconfigured key: nothing stored, the form kept
            return form_page(request, raw, notice=str(exc), status_code=500)
        except IdempotencyConflict:
            # This form was sent before with other content (edited after a resend): nothing is
            # stored now; a fresh token lets the counselor send it as a new report on purpose.
            return form_page(
                request,
                {**raw, "submission_token": cf.new_submission_token()},
                notice="Det här formuläret har redan skickats en gång, med andra uppgifter. "
                "Inget nytt har sparats. Se ”Mina anmälningar”; vill du skicka uppgifterna "
                "nedan som en ny anmälan, tryck på ”Skicka anmälan” igen.",
                status_code=409,
            )
        if not receipt.replayed:  # a resend shows the first receipt; its flows already run
            _start_in_background(background, receipt)
            # "Sparas till nästa gång": the accepted clinic details fill the next form.
            accounts.remember_clinic_details(principal.user_id, cf.remembered_details(data))
        return RedirectResponse(f"/my/receipts/{receipt.sibling_group_id}", status_code=303)
    result = cf.apply_action(raw, action)
    if result is None:  # e.g. Enter pressed in a text field: the hidden default button
        return form_page(
            request,
            raw,
            notice="Anmälan är inte skickad än. Fyll i formuläret och tryck på "
            "”Skicka anmälan” längst ned när du är klar.",
        )
    return form_page(request, result.raw, focus=result.focus)


# --- receipt ----------------------------------------------------------------------------------


@pages.get("/my/receipts/{sibling_group_id}")
def receipt_page(request: Request, sibling_group_id: str, principal: CounselorUser) -> Response:
    view = counselor_reports.receipt_view(sibling_group_id, principal)
    if view is None:
        raise _deny(principal, sibling_group_id, via="receipt")
    return render(
        request,
        "counselor/receipt.html",
        {
            "title": "Kvitto – anmälan sparad",
            "r": view,
            "submitted": local_text(view.submitted_at),
            "when": local_text,
            "call_reason": counselor_reports.call_reason,
            "notes": {
                row.reference: counselor_reports.journal_note(view, row) for row in view.rows
            },
            "t": _timeline(),
        },
    )


# --- my reports -------------------------------------------------------------------------------


@pages.get("/my/reports")
def my_reports_page(request: Request, principal: CounselorUser) -> Response:
    return render(
        request,
        "counselor/my_reports.html",
        {
            "title": "Mina anmälningar",
            "reports": counselor_reports.my_reports(principal),
            "when": _when,
        },
    )


DONE_TEXT = {"phone": "Telefonkontakten är registrerad."}
PHONE_LABELS = {
    "phone.answered_by": "Vem svarade?",
    "phone.called_date": "Datum för samtalet",
    "phone.called_time": "Klockslag",
    "phone.unit_id": "Vilken enhet ringde du?",
}
_PHONE_ERROR_FIELD = {
    "answered_by_invalid": "phone.answered_by",
    "unknown_unit": "phone.unit_id",
}


def _unit_to_call(st: dict[str, Any]) -> str:
    """The unit the phone form preselects: the first the routine says to call and no call is
    recorded to yet; else the first phone-required recipient ("" only when there is none)."""
    called = {c["unit_id"] for c in st["phone"]["recorded"]}
    targets = [c["unit_id"] for c in st["phone"]["to_call"]]
    targets += [h["unit_id"] for h in st["handovers"] if h["phone_required"]]
    return next((u for u in targets if u not in called), targets[0] if targets else "")


def _status_page(
    request: Request,
    reference: str,
    principal: Principal,
    *,
    done: str | None = None,
    phone_input: dict[str, str] | None = None,
    phone_errors: list[tuple[str, str]] | None = None,
    status_code: int = 200,
) -> Response:
    st = counselor_reports.own_status(reference, principal)
    if st is None:
        raise _deny(principal, reference, via="status")
    feedback = (
        counselor_reports.own_feedback(st["reference"], principal)
        if st["feedback"]["received"]
        else []
    )
    now = utcnow().astimezone(STOCKHOLM)
    errors = [
        {"field": path.replace(".", "-"), "label": PHONE_LABELS.get(path, "Samtal"), "message": m}
        for path, m in phone_errors or []
    ]
    return render(
        request,
        "counselor/report.html",
        {
            "title": f"Anmälan {st['reference']}",
            "st": st,
            "feedback": feedback or [],
            "when": _when,
            "done": DONE_TEXT.get(done or ""),
            "errors": errors,
            "e": dict(phone_errors or []),
            "phone_labels": PHONE_LABELS,
            "p": phone_input
            or {
                "answered_by": "",
                "called_date": now.date().isoformat(),
                "called_time": now.strftime("%H:%M"),
                "unit_id": _unit_to_call(st),
            },
            "units": list(
                dict.fromkeys(
                    [(c["unit_id"], c["unit_name"]) for c in st["phone"]["to_call"]]
                    + [(h["unit_id"], h["unit_name"]) for h in st["handovers"]]
                )
            ),
            "closed": st["state"] in ("closed", "erased"),
            "decline_reasons": DECLINE_REASONS,
        },
        status_code=status_code,
    )


@pages.get("/my/reports/{reference}")
def report_page(
    request: Request, reference: str, principal: CounselorUser, done: str | None = None
) -> Response:
    return _status_page(request, reference, principal, done=done)


def _local_moment(day: str, clock: str) -> datetime:
    """Date and time as typed (Stockholm) to an aware datetime; ValueError if malformed."""
    return datetime.combine(date.fromisoformat(day), time.fromisoformat(clock), tzinfo=STOCKHOLM)


@pages.post("/my/reports/{reference}/phone")
def phone_page(
    request: Request, reference: str, principal: CounselorUser, posted: Posted
) -> Response:
    """Record the phone call the counselor made to social services."""
    fields = {k: str(v) for k, v in posted if k.startswith("phone-")}
    p = {
        name: fields.get(f"phone-{name}", "").strip()
        for name in ("answered_by", "called_date", "called_time", "unit_id")
    }
    errors: list[tuple[str, str]] = []
    at: datetime | None = None
    try:
        at = _local_moment(p["called_date"], p["called_time"])
    except ValueError:
        errors.append(
            ("phone.called_date", "Ange datum (ÅÅÅÅ-MM-DD) och klockslag (TT:MM) för samtalet.")
        )
    if at is not None:
        try:
            result = counselor_reports.record_phone(
                reference, principal, answered_by=p["answered_by"], at=at, unit_id=p["unit_id"]
            )
        except LifecycleError as exc:
            errors.append((_PHONE_ERROR_FIELD.get(exc.code, "phone.called_date"), exc.message))
        else:
            if result is None:
                raise _deny(principal, reference, via="phone")
            return RedirectResponse(
                f"/my/reports/{result.reference}?done=phone#phone", status_code=303
            )
    return _status_page(
        request, reference, principal, phone_input=p, phone_errors=errors, status_code=400
    )


# --- JSON API ---------------------------------------------------------------------------------


class CallNowOut(BaseModel):
    unit_name: str
    phone: str | None
    rule: str = Field(description="Routing rule id, e.g. `R-ACUTE-PHONE`.")
    explanation: str


class RecipientOut(BaseModel):
    unit_id: str
    unit_name: str
    opens_at: str | None = Field(
        description="When the unit next reads written reports (ISO 8601 with offset); null "
        "when it was open at submission. The confirmation deadline counts from here."
    )
    opens_text: str | None = Field(
        description='The same in Swedish words, e.g. "läses tidigast måndag 28 december kl. 08:00".'
    )


class ReceiptItemOut(BaseModel):
    report_id: str
    reference: str = Field(description="Reference number, `OA-<year>-<6 digits>`.")
    child_index: int = Field(description="Position of the child in the submitted `children`.")
    call_now: CallNowOut | None = Field(
        description="Set when the counselor must phone now (acute, out of hours, protected "
        "identity, unknown Stockholm district …)."
    )
    calls: list[CallNowOut] = Field(
        default_factory=list,
        description="Every unit to phone now, further recipients included; `phone` is `112` "
        "when the socialjour is closed (ask SOS Alarm for the socialjour).",
    )
    recipients: list[RecipientOut] = Field(
        default_factory=list,
        description="Where the written report goes, decided once at submission: the flow "
        "delivers exactly this.",
    )


class ReceiptOut(BaseModel):
    """One report per child, linked by the sibling group id."""

    sibling_group_id: str
    submitted_at: str
    urgency: str
    reports: list[ReceiptItemOut]
    message: str = Field(description="Swedish summary for the counselor.")


class HandoverOut(BaseModel):
    handover_id: str
    position: int
    attempt: int
    unit_id: str
    unit_name: str
    unit_kind: str
    municipality: str
    status: str
    status_text: str
    rule: str
    phone_required: bool
    phone: str | None
    notified_at: str | None
    opens_at: str | None = Field(
        None,
        description="When the unit next reads written reports; the deadline counts from then "
        "(null: the unit was open when the report was routed).",
    )
    opens_at_text: str | None = Field(
        None, description='The same in Swedish words: "läses tidigast måndag 28 december …".'
    )
    deadline_at: str | None = Field(description="When the unit must have confirmed receipt.")
    overdue: bool
    escalation_step: int
    escalated_from: str | None
    rerouted_from: str | None
    confirmed_at: str | None
    confirmed_by: str | None
    declined_at: str | None
    decline_reason: str | None


class PhoneRecordOut(BaseModel):
    unit_id: str | None
    unit_name: str | None = Field(None, description="The unit called, by name.")
    answered_by: str
    called_at: str | None
    recorded_by: str


class PhoneTargetOut(BaseModel):
    unit_id: str
    unit_name: str
    phone: str | None


class PhoneOut(BaseModel):
    required: bool
    due_at: str | None
    to_call: list[PhoneTargetOut] = Field(
        default_factory=list, description="The units the routine says to phone."
    )
    recorded: list[PhoneRecordOut]
    overdue: bool


class FeedbackReceivedOut(BaseModel):
    unit_id: str
    unit_name: str
    recorded_at: str | None


class FeedbackOut(BaseModel):
    due_at: str | None
    deadline_verified: bool = Field(description="False: the legal deadline is not verified.")
    received: list[FeedbackReceivedOut]
    overdue: bool


class ReportStatusOut(BaseModel):
    """Metadata only (times in ISO 8601, Europe/Stockholm); no child data."""

    reference: str
    state: str
    state_text: str
    state_words: str = Field("", description="The state in Swedish words for the counselor.")
    phone_step: str = Field("", description="The phone step in Swedish words (done or to do).")
    urgency: str
    submitted_at: str | None
    handed_over_at: str | None
    handovers: list[HandoverOut]
    phone: PhoneOut
    feedback: FeedbackOut
    overdue: bool
    warnings: list[str] = Field(description="Swedish warnings (overdue confirmation etc.).")


class FeedbackItemOut(BaseModel):
    feedback_id: str
    unit_id: str
    outcome: str = Field(description="`opened`, `not_opened` or `already_ongoing`.")
    outcome_text: str
    decided_on: str
    recorded_at: str
    recorded_by: str


class PhoneContactIn(BaseModel):
    answered_by: str = Field(description="Who answered at social services.", max_length=120)
    called_at: datetime = Field(description="When the call was made, with time zone.")
    unit_id: str | None = Field(default=None, description="Unit called, e.g. `sdf-sodermalm`.")


class ActionOut(BaseModel):
    reference: str
    changed: bool = Field(description="False when the same call was already recorded.")
    message: str


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """The model's JSON schema with ``$defs`` inlined, so it is valid inside the OpenAPI doc."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


def _example() -> dict[str, Any] | None:
    try:
        data = json.loads((PROJECT_ROOT / "examples" / "report.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _submit_schema() -> dict[str, Any]:
    """The form's schema plus the one field that is not part of the form."""
    schema = _inline_refs(ConcernForm.model_json_schema())
    schema["properties"]["confirm_duplicate"] = {
        "type": "boolean",
        "default": False,
        "description": "Send anyway although the same child was reported by you within 24 h.",
    }
    return schema


_FORM_BODY: dict[str, Any] = {"schema": _submit_schema()}
if (_ex := _example()) is not None:
    _FORM_BODY["example"] = _ex

_AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing, unknown or revoked token."},
    403: {"model": ErrorOut, "description": "The token's account is not a counselor."},
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No such report, or not one of the caller's."},
}


@api.post(
    "/reports",
    status_code=201,
    response_model=ReceiptOut,
    summary="Submit a concern report (one report per child)",
    description="The body is the concern form (`ConcernForm`). The reporter's e-mail must be "
    "the token account's e-mail (it is filled in when left out). On success the reports are "
    "stored before the answer is sent; flow runs start in the background. Errors: 422 "
    "`form_invalid` lists every field error with a Swedish message; nothing is stored.\n\n"
    "Send an `Idempotency-Key` header to make retries safe: the same key and body give the "
    "first receipt again (header `Idempotent-Replayed: true`), the same key with another body "
    "409 `idempotency_key_reused`. A report for a child (same personnummer) that the same "
    "counselor reported within 24 hours gives 409 `duplicate_suspected` naming the earlier "
    'reference, unless the body has `"confirm_duplicate": true`. Bodies over 1 MB: 413.',
    responses={
        **_AUTH_ERRORS,
        409: {
            "model": ErrorOut,
            "description": "`duplicate_suspected` (fields name the children and the earlier "
            "references) or `idempotency_key_reused`; nothing is stored.",
        },
        413: {"model": ErrorOut, "description": "`body_too_large`: over 1 MB."},
        422: {"model": ErrorOut, "description": "`form_invalid`: the form has errors."},
    },
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": _FORM_BODY}}},
)
def submit_api(
    principal: ApiCounselor,
    background: BackgroundTasks,
    response: Response,
    body: Annotated[Any, Body()] = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Any unique value per report (a UUID): a retry with the same key and "
            "body gets the first receipt back, nothing is stored twice. Kept for 24 hours.",
        ),
    ] = None,
) -> dict[str, Any]:
    confirm = False
    if isinstance(body, dict) and "confirm_duplicate" in body:
        body = dict(body)
        confirm = body.pop("confirm_duplicate")
        if not isinstance(confirm, bool):
            raise ApiError(
                422,
                "form_invalid",
                "Formuläret har 1 fel; inget har sparats.",
                [
                    {
                        "field": "confirm_duplicate",
                        "code": "bool_type",
                        "message": "Ange true eller false.",
                    }
                ],
            )
    if idempotency_key is not None and (problem := key_problem(idempotency_key)):
        raise ApiError(422, "idempotency_key_invalid", problem)
    try:
        receipt = counselor_reports.submit_as(
            body, principal, idempotency_key=idempotency_key, confirm_duplicate=confirm
        )
    except FormInvalid as exc:
        raise ApiError(
            422,
            "form_invalid",
            f"Formuläret har {len(exc.errors)} fel; inget har sparats.",
            exc.as_json(),
        ) from None
    except IdempotencyConflict as exc:
        raise ApiError(409, exc.code, exc.message) from None
    except CryptoError as exc:  # the server's key is misconfigured: nothing was stored
        code = "server_key_mismatch" if isinstance(exc, KeyMismatch) else "server_key_invalid"
        raise ApiError(500, code, str(exc)) from None
    except DuplicateSuspected as exc:
        raise ApiError(
            409,
            exc.code,
            f'{exc.message} Inget har sparats; skicka igen med "confirm_duplicate": true '
            "om det är en ny anmälan.",
            [
                {
                    "field": f"children.{index}.personal_number",
                    "code": exc.code,
                    "message": f"Du skickade en anmälan om det här barnet nyss ({reference}).",
                }
                for index, reference in exc.matches
            ],
        ) from None
    if receipt.replayed:
        response.headers["Idempotent-Replayed"] = "true"  # the first answer; no new flow runs
    else:
        _start_in_background(background, receipt)
    return receipt.as_json()


@api.get(
    "/reports",
    response_model=list[ReportStatusOut],
    summary="My reports, newest first",
    responses=_AUTH_ERRORS,
)
def my_reports_api(principal: ApiCounselor) -> list[dict[str, Any]]:
    return counselor_reports.my_reports(principal)


@api.get(
    "/reports/{reference}",
    response_model=ReportStatusOut,
    summary="Status of one of my reports",
    responses={**_AUTH_ERRORS, **_NOT_FOUND},
)
def report_api(reference: str, principal: ApiCounselor) -> dict[str, Any]:
    st = counselor_reports.own_status(reference, principal)
    if st is None:
        raise _deny(principal, reference, via="api-status", api=True)
    return st


@api.get(
    "/reports/{reference}/feedback",
    response_model=list[FeedbackItemOut],
    summary="Feedback from social services on one of my reports",
    description="Feedback is confidential: every call is recorded in the audit log.",
    responses={**_AUTH_ERRORS, **_NOT_FOUND},
)
def feedback_api(reference: str, principal: ApiCounselor) -> list[dict[str, Any]]:
    items = counselor_reports.own_feedback(reference, principal)
    if items is None:
        raise _deny(principal, reference, via="api-feedback", api=True)
    return items


@api.post(
    "/reports/{reference}/phone-contacts",
    status_code=201,
    response_model=ActionOut,
    summary="Record my phone call to social services about a report",
    responses={
        **_AUTH_ERRORS,
        **_NOT_FOUND,
        409: {"model": ErrorOut, "description": "The report is closed or erased."},
        422: {"model": ErrorOut, "description": "Refused input (time in the future …)."},
    },
)
def phone_api(reference: str, body: PhoneContactIn, principal: ApiCounselor) -> dict[str, Any]:
    try:
        result = counselor_reports.record_phone(
            reference,
            principal,
            answered_by=body.answered_by,
            at=body.called_at,
            unit_id=body.unit_id,
        )
    except IllegalTransition as exc:
        raise ApiError(409, exc.code, exc.message) from None
    except LifecycleError as exc:
        raise ApiError(422, exc.code, exc.message) from None
    if result is None:
        raise _deny(principal, reference, via="api-phone", api=True)
    return {"reference": result.reference, "changed": result.changed, "message": result.message}
