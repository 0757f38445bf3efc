"""The portal application: pages for counselors, intake officers and auditors, and the JSON API.

``create_app()`` wires the area routers (``counselor``, ``intake``, ``auditor``, ``admin``);
each area module exports ``pages`` (HTML) and ``api`` (JSON under ``/api/v1``).
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from orosflow.core import heap, redaction, write_turn
from orosflow.core.crypto import KeyConfigError, check_key_settings
from orosflow.core.settings import get_settings
from orosflow.handover import warm
from orosflow.handover.lifecycle import REPORT_LABELS
from orosflow.handover.validation import translate_error
from orosflow.identity.accounts import LoginRefused, identity_provider
from orosflow.identity.mfa import step_after_password as mfa_step_after_password
from orosflow.portal import admin, auditor, counselor, devmail, intake, mfa, oidc_login
from orosflow.portal.access_log import AccessLog, register_app_words
from orosflow.portal.limits import BodyLimit
from orosflow.portal.sessions import close_session
from orosflow.portal.web import (
    CSRF_FIELD,
    EXCEPTION_HANDLERS,
    KEEP_PREFIX,
    LOGIN_CSRF_COOKIE,
    ROLE_HOME,
    SESSION_COOKIE,
    STATIC_DIR,
    PageError,
    client_address,
    current_session,
    login_page,
    not_found_page,
    render,
    secure_cookies,
    sign_in_response,
)
from orosflow.views.intake import InboxFilter

API_DESCRIPTION = """\
JSON API for clinics' systems and social services: submit concern reports, read the inbox,
confirm receipt, record feedback, and export audit metadata.

Authenticate with `Authorization: Bearer <token>`; an administrator issues tokens with
`orosflow users token <username> --name <system>`. Errors are
`{"error": {"code": "...", "message": "...", "fields": [...]}}` with stable English codes and
Swedish messages. Personal data is only ever in request and response bodies, never in URLs.
"""

#: Content-Security-Policy for pages: no inline script, no third-party origins, no framing.
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
#: Swagger UI's assets (script, style, icon) as the fastapi-offline package ships them: the API
#: docs work without the internet (most municipal networks) and under the pages' own CSP.
API_DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"
#: ``/api/docs``: Swagger UI from the portal's own origin, started by ``static/api-docs.js``
#: (no inline script, so the same CSP as every page applies).
API_DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Orosflow API</title>
<link rel="stylesheet" href="/static/api-docs/swagger-ui.css">
<link rel="icon" href="/static/api-docs/favicon.png">
</head>
<body>
<div id="swagger-ui" data-openapi-url="/api/openapi.json"></div>
<script src="/static/api-docs/swagger-ui-bundle.js"></script>
<script src="/static/api-docs.js"></script>
</body>
</html>
"""


def _check_keys() -> None:
    """Refuse to start on an invalid master key with a Swedish message, not a traceback
    (also when run as ``uvicorn --factory orosflow.portal.app:app``)."""
    try:
        check_key_settings()
    except KeyConfigError as exc:
        print(f"Portalen kan inte starta: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


@asynccontextmanager
async def _lifespan(_app: FastAPI) -> AsyncIterator[None]:
    """Before the first request: load what a receipt needs, so that the first counselor does
    not wait for it (1 s measured) and no write transaction holds the lock meanwhile."""
    await run_in_threadpool(warm.warm, trigger=get_settings().flow_runs)
    heap.freeze_startup_objects()  # a full collection would walk them in some receipt
    yield


def create_app() -> FastAPI:
    redaction.install()
    _check_keys()
    write_turn.people_first()  # a counselor's receipt writes before background work
    app = FastAPI(
        lifespan=_lifespan,
        title="Orosflow API",
        version="1",
        description=API_DESCRIPTION,
        docs_url=None,  # our own page below: assets from a package, not a CDN
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    for exc_type, handler in EXCEPTION_HANDLERS.items():
        app.add_exception_handler(exc_type, handler)
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]

    # Inside the security headers (added before them), outside everything that reads a body.
    app.add_middleware(BodyLimit)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        """Security headers on every response; values decrypted for the request stay masked in
        logs while it runs (redaction scope)."""
        with redaction.scope():
            response: Response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        if secure_cookies():
            response.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        return response

    # Before /static, which would otherwise match these paths too.
    app.mount(
        "/static/api-docs", StaticFiles(directory=str(API_DOCS_ASSETS)), name="api-docs-assets"
    )
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")

    @app.get("/api/docs", include_in_schema=False)
    def api_docs() -> HTMLResponse:
        return HTMLResponse(API_DOCS_PAGE)

    @app.get("/", include_in_schema=False)
    def home(request: Request) -> Response:
        session = current_session(request)
        if session is None:
            return RedirectResponse("/login", status_code=303)
        return RedirectResponse(ROLE_HOME[session.principal.role], status_code=303)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/login", include_in_schema=False)
    def login_form(request: Request, next: str | None = None) -> Response:
        return login_page(request, next)

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = await request.form()
        field = lambda name: str(form.get(name) or "")  # noqa: E731
        username, next_ = field("username"), field("next") or None
        keep = [
            (k[len(KEEP_PREFIX) :], v)
            for k, v in form.multi_items()
            if k.startswith(KEEP_PREFIX) and isinstance(v, str)
        ]
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not cookie or not secrets.compare_digest(cookie, field(CSRF_FIELD)):
            raise PageError(
                403,
                "Inloggningen kunde inte skickas",
                "Säkerhetskoden saknades eller hade gått ut. Ladda om sidan och försök igen.",
            )
        client = client_address(request)
        try:
            principal = await run_in_threadpool(
                identity_provider().authenticate, username, field("password"), client
            )
        except LoginRefused as exc:
            return login_page(
                request, next_, error=exc.message, username=username, status=401, keep=keep
            )
        step = await run_in_threadpool(mfa_step_after_password, principal)
        if step is not None:  # the password passed; the session is not signed in yet
            return await run_in_threadpool(mfa.start_step, request, principal, step, next_, keep)
        return await run_in_threadpool(sign_in_response, request, principal, next_, keep)

    @app.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        from orosflow.portal.web import csrf_protect

        session = current_session(request)
        if session is not None:
            await csrf_protect(request)
            close_session(request.cookies.get(SESSION_COOKIE, ""))
        # Audited; a session from the organisation's IdP also ends there (a page, not a
        # redirect: CSP form-action 'self' stops a form post redirected to another site).
        idp_logout = await run_in_threadpool(
            oidc_login.after_logout, request, session.principal if session else None
        )
        if idp_logout:
            response: Response = oidc_login.idp_logout_page(request, idp_logout)
        else:
            response = RedirectResponse("/login?logged_out=1", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        response.delete_cookie(oidc_login.IDP_COOKIE, path="/logout")
        return response

    if oidc_login.enabled():
        oidc_login.check_config()
        app.include_router(oidc_login.router)

    # The dev mail view is not even routed unless OROSFLOW_DEV_MAIL is on.
    areas = (counselor, intake, auditor, admin, mfa, *((devmail,) if devmail.enabled() else ()))
    for area in areas:
        app.include_router(area.pages)
        app.include_router(area.api, prefix="/api/v1")

    # After the area routers, so that /reports/new (the form) is matched first.
    @app.get("/reports/{reference}", include_in_schema=False)
    def report_link(request: Request, reference: str) -> Response:
        """The link in notification e-mails: each role sees the report in its own view."""
        session = current_session(request)
        if session is None:
            from orosflow.portal.web import login_redirect

            return login_redirect(request)
        role = session.principal.role
        target = {
            "counselor": f"/my/reports/{reference}",
            "intake": f"/intake/reports/{reference}",
            "auditor": f"/audit/reports/{reference}",
        }.get(role)
        if target is None:
            raise not_found_page()
        return RedirectResponse(target, status_code=303)

    # Outermost (added last): times and logs every request, with the address masked.
    app.add_middleware(AccessLog)
    routers = [r for area in areas for r in (area.pages, area.api)] + [oidc_login.router]
    register_app_words(app, routers, _ADDRESS_WORDS)
    return app


#: Filter values the portal's addresses carry besides its route words (kept in the access log).
_ADDRESS_WORDS = {
    *(f.value for f in InboxFilter),
    *REPORT_LABELS,
    "acute",
    "not_acute",
    "logged_out",
}


#: Swedish text per status for the API's errors that FastAPI or Starlette raise themselves;
#: their English ``detail`` is never passed on.
_HTTP_ERRORS: dict[int, tuple[str, str]] = {
    404: ("not_found", "Resursen finns inte."),
    405: ("method_not_allowed", "Metoden är inte tillåten för den här adressen."),
}
#: FastAPI answers 400 "There was an error parsing the body" when the body is not UTF-8 or is
#: nested too deeply for the JSON parser; the API answers that as the 422 for unreadable JSON.
_BODY_UNREADABLE = {
    "field": "body",
    "code": "body_unreadable",
    "message": "Innehållet kunde inte läsas: skicka giltig JSON i UTF-8 som inte är nästlad "
    "djupare än formuläret.",
}
_JSON_INVALID = {
    "field": "body",
    "code": "json_invalid",
    "message": "Innehållet är inte giltig JSON.",
}


def _invalid_request(fields: list[dict[str, str]]) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": "invalid_request", "message": "Begäran är ogiltig.", "fields": fields}},
        status_code=422,
    )


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """Swedish answers for the framework's own errors; headers such as ``Allow`` are kept."""
    if request.url.path.startswith("/api/"):
        if exc.status_code == 400:
            return _invalid_request([_BODY_UNREADABLE])
        code, message = _HTTP_ERRORS.get(
            exc.status_code, ("http_error", "Begäran kunde inte behandlas.")
        )
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
        return JSONResponse(
            {"error": {"code": code, "message": message}},
            status_code=exc.status_code,
            headers=headers,
        )
    if exc.status_code == 404:
        page = not_found_page()
    else:
        page = PageError(exc.status_code, "Något gick fel", "Begäran kunde inte behandlas.")
    response = render(
        request, "error.html", {"title": page.title, "message": page.message}, page.status
    )
    response.headers.update(exc.headers or {})
    return response


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> str:
    """Every method the path answers to. Starlette's ``Allow`` names only the first matching
    route's, and FastAPI has one route per method (GET and POST /reports)."""
    routes = request.app.router.routes
    allowed = [
        method
        for method in _METHODS
        if any(r.matches({**request.scope, "method": method})[0] == Match.FULL for r in routes)
    ]
    return ", ".join(allowed)


def _api_field(err: dict[str, Any]) -> dict[str, str]:
    """One request error as ``{field, code, message}``: a path the schema defines (an unknown
    key is named by its parent, as it may be anything a person typed) and Swedish text."""
    if err.get("type") == "json_invalid":  # its loc is ("body", <byte offset>)
        return _JSON_INVALID
    loc = tuple(err.get("loc", ()))
    if loc[:1] == ("body",):
        loc = loc[1:]
    translated = translate_error({**err, "loc": loc})
    return {
        "field": translated.field or "body",
        "code": translated.code,
        "message": translated.message,
    }


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    """Structured 422 that names fields and codes but never echoes the submitted values."""
    if request.url.path.startswith("/api/"):
        return _invalid_request([_api_field(err) for err in exc.errors()])
    return render(
        request,
        "error.html",
        {"title": "Ogiltig begäran", "message": "Begäran saknade uppgifter eller hade fel format."},
        status_code=400,
    )


app = create_app  # ``uvicorn --factory orosflow.portal.app:app``
