"""The portal application: pages for counselors, intake officers and auditors, and the JSON API.

``create_app()`` wires the area routers (``counselor``, ``intake``, ``auditor``, ``admin``);
each area module exports ``pages`` (HTML) and ``api`` (JSON under ``/api/v1``).
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import FastAPI, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from orosflow import redaction
from orosflow.accounts import LoginRefused, identity_provider
from orosflow.portal import admin, auditor, counselor, devmail, intake
from orosflow.portal.sessions import close_session, open_session
from orosflow.portal.web import (
    EXCEPTION_HANDLERS,
    LOGIN_CSRF_COOKIE,
    ROLE_HOME,
    SESSION_COOKIE,
    STATIC_DIR,
    PageError,
    current_session,
    not_found_page,
    render,
    safe_next,
)
from orosflow.settings import get_settings

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
#: Swagger UI loads its bundle from a CDN; only the docs page gets this wider policy.
DOCS_CSP = (
    "default-src 'self'; img-src 'self' data: https://fastapi.tiangolo.com; "
    "style-src 'self' https://cdn.jsdelivr.net; script-src 'self' 'unsafe-inline' "
    "https://cdn.jsdelivr.net; frame-ancestors 'none'"
)


def _secure_cookies() -> bool:
    return get_settings().portal_url.startswith("https://")


def create_app() -> FastAPI:
    redaction.install()
    app = FastAPI(
        title="Orosflow API",
        version="1",
        description=API_DESCRIPTION,
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    for exc_type, handler in EXCEPTION_HANDLERS.items():
        app.add_exception_handler(exc_type, handler)
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]

    @app.middleware("http")
    async def redaction_scope(request: Request, call_next: Any) -> Response:
        """Values decrypted for this request stay masked in logs while it runs."""
        with redaction.scope():
            response: Response = await call_next(request)
        return response

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        docs = request.url.path == "/api/docs"
        response.headers.setdefault("Content-Security-Policy", DOCS_CSP if docs else CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        if _secure_cookies():
            response.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        return response

    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")

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
        return _login_page(request, next)

    @app.post("/login", include_in_schema=False)
    def login(
        request: Request,
        username: str = Form(""),
        password: str = Form(""),
        csrf_token: str = Form(""),
        next: str | None = Form(None),
    ) -> Response:
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not cookie or not secrets.compare_digest(cookie, csrf_token):
            raise PageError(
                403,
                "Inloggningen kunde inte skickas",
                "Säkerhetskoden saknades eller hade gått ut. Ladda om sidan och försök igen.",
            )
        client = request.client.host if request.client else "unknown"
        try:
            principal = identity_provider().authenticate(username, password, client)
        except LoginRefused as exc:
            return _login_page(request, next, error=exc.message, username=username, status=401)
        token, _ = open_session(principal)
        response = RedirectResponse(safe_next(next, ROLE_HOME[principal.role]), status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=_secure_cookies(),
            path="/",
        )
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
        return response

    @app.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        from orosflow.portal.web import csrf_protect

        session = current_session(request)
        if session is not None:
            await csrf_protect(request)
            close_session(request.cookies.get(SESSION_COOKIE, ""))
        response = RedirectResponse("/login?logged_out=1", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    for area in (counselor, intake, auditor, admin, devmail):
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

    return app


def _login_page(
    request: Request,
    next: str | None,
    *,
    error: str | None = None,
    username: str = "",
    status: int = 200,
) -> Response:
    token = secrets.token_urlsafe(32)
    request.state.login_csrf = token
    response = render(
        request,
        "login.html",
        {
            "next": safe_next(next, ""),
            "error": error,
            "username": username,
            "logged_out": request.query_params.get("logged_out") == "1",
        },
        status_code=status,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=_secure_cookies(),
        path="/login",
    )
    return response


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    if request.url.path.startswith("/api/"):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = {404: "Resursen finns inte.", 405: "Metoden är inte tillåten."}.get(
            exc.status_code, str(exc.detail)
        )
        return JSONResponse(
            {"error": {"code": code, "message": message}}, status_code=exc.status_code
        )
    if exc.status_code == 404:
        page = not_found_page()
    else:
        page = PageError(exc.status_code, "Något gick fel", "Begäran kunde inte behandlas.")
    return render(
        request, "error.html", {"title": page.title, "message": page.message}, page.status
    )


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    """Structured 422 that names fields and codes but never echoes the submitted values."""
    fields = [
        {
            "field": ".".join(str(p) for p in err.get("loc", ()) if p != "body"),
            "code": err.get("type", "invalid"),
            "message": "Ogiltigt eller saknat värde.",
        }
        for err in exc.errors()
    ]
    if request.url.path.startswith("/api/"):
        return JSONResponse(
            {
                "error": {
                    "code": "invalid_request",
                    "message": "Begäran är ogiltig.",
                    "fields": fields,
                }
            },
            status_code=422,
        )
    return render(
        request,
        "error.html",
        {"title": "Ogiltig begäran", "message": "Begäran saknade uppgifter eller hade fel format."},
        status_code=400,
    )


app = create_app  # ``uvicorn --factory orosflow.portal.app:app``
