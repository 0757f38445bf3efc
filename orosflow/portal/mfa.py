"""The sign-in's second step: the TOTP code (or a recovery code), and enrolment of the factor.

After the password, :func:`start_step` opens a *pending* session (not signed in: no page but
its step opens, and it ends after ``PENDING_MINUTES``) and shows the code or enrolment form.
Only a correct code turns it into a signed-in session, under a new id. The forms carry the
pending session's CSRF token; the sign-in page itself is not changed.
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from orosflow.identity import mfa
from orosflow.identity.accounts import AccountError, LoginRefused, Principal
from orosflow.portal.sessions import PendingSession, load_pending, open_session
from orosflow.portal.web import (
    CSRF_FIELD,
    KEEP_PREFIX,
    SESSION_COOKIE,
    PageError,
    client_address,
    current_session,
    render,
    safe_next,
    set_session_cookie,
    sign_in_response,
)

pages = APIRouter(include_in_schema=False)
api = APIRouter()  # nothing in the JSON API: bearer tokens take no second factor

_CSRF_FAILED = PageError(
    403,
    "Formuläret kunde inte skickas",
    "Säkerhetskoden saknades eller hade gått ut. Logga in igen. Inget har ändrats.",
)


def start_step(
    request: Request,
    principal: Principal,
    step: str,
    next_: str | None,
    keep: list[tuple[str, str]],
) -> Response:
    """Answer a passed password: a pending session and its step's form (kept input rides
    along in the form, never in the address)."""
    token, csrf = open_session(principal, pending=step)
    request.state.web_session = None  # not signed in, whatever cookie the browser sent
    pending = PendingSession(principal, csrf, step)
    if step == mfa.STEP_CODE:
        response = _code_page(request, pending, next_, keep)
    else:
        response = _enrol_page(request, pending.principal, csrf, next_, keep)
    set_session_cookie(response, token)
    return response


def _pending(request: Request, step: str) -> PendingSession | None:
    token = request.cookies.get(SESSION_COOKIE)
    pending = load_pending(token) if token else None
    return pending if pending is not None and pending.step == step else None


def _keep_of(form: Any) -> list[tuple[str, str]]:
    return [
        (k[len(KEEP_PREFIX) :], v)
        for k, v in form.multi_items()
        if k.startswith(KEEP_PREFIX) and isinstance(v, str)
    ]


def _csrf_ok(form: Any, expected: str) -> bool:
    return bool(expected) and hmac.compare_digest(str(form.get(CSRF_FIELD) or ""), expected)


def _code_page(
    request: Request,
    pending: PendingSession,
    next_: str | None,
    keep: list[tuple[str, str]],
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    request.state.login_csrf = pending.csrf_token
    return render(
        request,
        "login_code.html",
        {
            "title": "Verifiera inloggningen",
            "next": safe_next(next_, ""),
            "keep": keep,
            "keep_prefix": KEEP_PREFIX,
            "error": error,
        },
        status_code=status,
    )


def _enrol_page(
    request: Request,
    principal: Principal,
    csrf: str,
    next_: str | None,
    keep: list[tuple[str, str]],
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    try:
        enrolment = mfa.begin_enrolment(principal.user_id)
    except AccountError as exc:
        raise PageError(409, "Tvåstegsverifiering", exc.message) from None
    if current_session(request) is None:
        request.state.login_csrf = csrf
    return render(
        request,
        "login_enrol.html",
        {
            "title": "Aktivera tvåstegsverifiering",
            "enrolment": enrolment,
            "next": safe_next(next_, ""),
            "keep": keep,
            "keep_prefix": KEEP_PREFIX,
            "error": error,
        },
        status_code=status,
    )


@pages.get("/login/code")
def code_form(request: Request, next: str | None = None) -> Response:
    pending = _pending(request, mfa.STEP_CODE)
    if pending is None:
        return RedirectResponse("/login", status_code=303)
    return _code_page(request, pending, next, [])


@pages.post("/login/code")
async def code_submit(request: Request) -> Response:
    form = await request.form()
    next_ = str(form.get("next") or "") or None
    keep = _keep_of(form)
    pending = await run_in_threadpool(_pending, request, mfa.STEP_CODE)
    if pending is None:
        return RedirectResponse("/login", status_code=303)
    if not _csrf_ok(form, pending.csrf_token):
        raise _CSRF_FAILED
    code = str(form.get("code") or "")
    try:
        principal = await run_in_threadpool(
            mfa.verify_code, pending.principal.user_id, code, client_address(request)
        )
    except LoginRefused as exc:
        return _code_page(request, pending, next_, keep, error=exc.message, status=401)
    return await run_in_threadpool(sign_in_response, request, principal, next_, keep)


@pages.get("/login/enrol")
def enrol_form(request: Request, next: str | None = None) -> Response:
    """Enrolment: during sign-in (required), or signed in without a factor (voluntary)."""
    session = current_session(request)
    if session is not None:
        return _enrol_page(request, session.principal, session.csrf_token, next, [])
    pending = _pending(request, mfa.STEP_ENROL)
    if pending is None:
        return RedirectResponse("/login", status_code=303)
    return _enrol_page(request, pending.principal, pending.csrf_token, next, [])


@pages.post("/login/enrol")
async def enrol_submit(request: Request) -> Response:
    form = await request.form()
    next_ = str(form.get("next") or "") or None
    keep = _keep_of(form)
    session = current_session(request)
    pending = None if session else await run_in_threadpool(_pending, request, mfa.STEP_ENROL)
    if session is None and pending is None:
        return RedirectResponse("/login", status_code=303)
    principal = session.principal if session else pending.principal  # type: ignore[union-attr]
    csrf = session.csrf_token if session else pending.csrf_token  # type: ignore[union-attr]
    if not _csrf_ok(form, csrf):
        raise _CSRF_FAILED
    try:
        codes = await run_in_threadpool(
            mfa.confirm_enrolment,
            principal.user_id,
            str(form.get("code") or ""),
            client_address(request),
        )
    except LoginRefused as exc:
        return _enrol_page(request, principal, csrf, next_, keep, error=exc.message, status=400)
    except AccountError as exc:
        raise PageError(409, "Tvåstegsverifiering", exc.message) from None
    page = ("login_recovery.html", {"title": "Återställningskoder", "codes": codes, "keep": keep})
    if session is not None:
        return render(request, page[0], {**page[1], "target": safe_next(next_, "/")})
    return await run_in_threadpool(sign_in_response, request, principal, next_, None, page)
