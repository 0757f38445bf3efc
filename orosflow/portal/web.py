"""The portal's request plumbing: templates, sign-in state, roles, CSRF and structured errors.

Every page router comes from :func:`page_router` and every API router from :func:`api_router`,
so authentication, role checks and CSRF protection cannot be forgotten on a new route.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
from collections.abc import Callable, Coroutine
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field
from sqlmodel import Session

from models.accounts import Role
from orosflow.core.audit import append_event
from orosflow.core.crypto import load_keyring, lookup_digests
from orosflow.core.settings import PROJECT_ROOT, get_settings
from orosflow.handover.lifecycle import local_text
from orosflow.identity.accounts import Principal, TokenExpired, principal_for_token
from orosflow.portal.sessions import (
    ActiveSession,
    close_session,
    csrf_belongs_to,
    load_session,
    open_session,
)
from orosflow.views import names

log = logging.getLogger("orosflow.portal")

TEMPLATES_DIR = PROJECT_ROOT / "templates" / "portal"
STATIC_DIR = Path(__file__).parent / "static"
SESSION_COOKIE = "orosflow_session"
LOGIN_CSRF_COOKIE = "orosflow_login_csrf"
CSRF_FIELD = "csrf_token"
#: Posts whose input survives a session that ended meanwhile: the sign-in page carries it
#: (in the same browser, never stored) and hands it back to the form after a new sign-in.
RESUMABLE_POSTS = frozenset({"/reports/new"})
KEEP_PREFIX = "keep:"

ROLE_LABELS = {
    Role.COUNSELOR: "Kurator",
    Role.INTAKE: "Mottagningshandläggare",
    Role.AUDITOR: "Granskare",
    Role.ADMIN: "Administratör",
}
#: Where each role lands after signing in.
ROLE_HOME = {
    Role.COUNSELOR: "/my/reports",
    Role.INTAKE: "/intake",
    Role.AUDITOR: "/audit",
    Role.ADMIN: "/admin/users",
}

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.globals.update(role_labels=ROLE_LABELS, role_home=ROLE_HOME, Role=Role)
templates.env.filters["local"] = local_text


def reports_text(count: int) -> str:
    """A count of reports in Swedish, singular or plural: "1 anmälan", "2 anmälningar"."""
    return f"{count} {'anmälan' if count == 1 else 'anmälningar'}"


templates.env.filters["reports"] = reports_text
# Names instead of internal ids on counselors' and intake officers' pages (one place: names.py).
templates.env.filters["unit_name"] = names.unit_name
templates.env.filters["district_name"] = names.district_name
templates.env.filters["actor_name"] = names.actor_name
templates.env.filters["without_rule_codes"] = names.without_rule_codes


# --- errors ------------------------------------------------------------------------------------


class LoginRequired(Exception):
    """No valid session: pages redirect to the sign-in page."""


class PageError(Exception):
    """Rendered as an error page with a Swedish message."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(title)
        self.status, self.title, self.message = status, title, message


class ApiError(Exception):
    """Rendered as ``{"error": {"code", "message", "fields"}}`` (English codes, Swedish text)."""

    def __init__(
        self, status: int, code: str, message: str, fields: list[dict[str, str]] | None = None
    ) -> None:
        super().__init__(code)
        self.status, self.code, self.message, self.fields = status, code, message, fields


class ErrorField(BaseModel):
    field: str = Field(description="Path of the field, e.g. `children.0.personal_number`.")
    code: str = Field(description="Stable English error code.")
    message: str = Field(description="Swedish message for the user.")


class ErrorBody(BaseModel):
    code: str
    message: str
    fields: list[ErrorField] | None = None


class ErrorOut(BaseModel):
    error: ErrorBody


#: Declared on every API operation: the answers any of them can give before the handler runs.
API_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing, unknown or revoked token."},
    403: {"model": ErrorOut, "description": "The token's account has another role."},
    422: {
        "model": ErrorOut,
        "description": "`invalid_request`: a parameter or the body is invalid or unreadable "
        "(`fields` names each one, the body as `body`); nothing is stored.",
    },
}


def not_found_page() -> PageError:
    return PageError(
        404, "Sidan finns inte", "Sidan eller ärendet finns inte, eller så saknar du behörighet."
    )


#: What an attempted address may be recorded as: a reference number or a (sibling-group) UUID.
_RECORDABLE = re.compile(
    r"^(OA-\d{4}-\d{6}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$", re.I
)


#: Purpose of the keyed digest of a refused address (see ``lookup_digests``).
DENIED_ADDRESS_PURPOSE = "access-denied-address"


def recordable_reference(typed: str) -> str:
    """The attempted reference for the audit trail and log. Anything else a person typed into
    the address (it could be a personnummer or a name) is kept only as a keyed digest (HMAC
    with a key from the key store): repeated attempts can be matched, but a plain hash of a
    personnummer was brute-forced over children's birth dates in seconds."""
    if _RECORDABLE.match(typed):
        return typed
    return "hmac:" + lookup_digests(load_keyring(), DENIED_ADDRESS_PURPOSE, typed)[0][:32]


def deny_report_access(
    s: Session, principal: Principal, reference: str, *, via: str, api: bool = False
) -> Exception:
    """Log and audit an attempt to reach a report outside the caller's scope; return the 404.

    The answer is the same as for a report that does not exist, so references cannot be probed.
    """
    attempted = recordable_reference(reference)
    append_event(
        s,
        actor=principal.actor,
        action="access.denied",
        details={"reference": attempted, "via": via, "role": principal.role},
    )
    log.warning(
        "access denied: %s (%s) to %s via %s", principal.actor, principal.role, attempted, via
    )
    if api:
        return ApiError(404, "not_found", "Ärendet finns inte.")
    return not_found_page()


# --- rendering --------------------------------------------------------------------------------


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    """Render a page; the template sees ``user``, ``csrf_token`` and ``request``."""
    session = current_session(request)
    ctx = {
        "user": session.principal if session else None,
        "csrf_token": session.csrf_token if session else getattr(request.state, "login_csrf", ""),
        "csrf_field": CSRF_FIELD,
        "portal_url": get_settings().portal_url,
        # The nav link to /dev/mail: administrators only, and only when it is on.
        "dev_mail": bool(
            session and session.principal.role == Role.ADMIN and get_settings().dev_mail
        ),
    }
    ctx.update(context or {})
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)


def safe_next(target: str | None, default: str = "/") -> str:
    """Only same-site paths: never redirect a signed-in user to another site."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


def client_address(request: Request) -> str:
    """The client's address for sign-in throttling.

    The socket peer, unless it is one of ``OROSFLOW_TRUSTED_PROXIES``: then ``X-Forwarded-For``
    is read from the right, each hop appended by a trusted proxy, and the first address that is
    not a trusted proxy is the client. Anything a client wrote further left is never believed,
    and a malformed hop ends the walk at the last trusted one (so it cannot pick its bucket).
    """
    peer = request.client.host if request.client else "unknown"
    trusted = get_settings().trusted_proxy_networks
    current = _ip(peer)
    if current is None or not _in_networks(current, trusted):
        return peer
    header = ",".join(request.headers.getlist("x-forwarded-for"))
    for hop in reversed([h.strip() for h in header.split(",") if h.strip()]):
        address = _ip(hop)
        if address is None:
            break
        current = address
        if not _in_networks(address, trusted):
            break
    return str(current)


def _ip(text: str) -> IPv4Address | IPv6Address | None:
    """An IP address, also as ``1.2.3.4:port`` or ``[::1]:port``; None if it is none."""
    text = text.strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return ip_address(text)
    except ValueError:
        return None


def _in_networks(address: IPv4Address | IPv6Address, networks: list[Any]) -> bool:
    return any(address.version == n.version and address in n for n in networks)


def secure_cookies() -> bool:
    return get_settings().portal_url.startswith("https://")


def login_page(
    request: Request,
    next: str | None,
    *,
    error: str | None = None,
    username: str = "",
    status: int = 200,
    keep: list[tuple[str, str]] | None = None,
) -> Response:
    """The sign-in form with a fresh double-submit CSRF cookie (there is no session yet)."""
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
            "keep": keep or [],
            "keep_prefix": KEEP_PREFIX,
        },
        status_code=status,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(),
        path="/login",
    )
    return response


def set_session_cookie(response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE, token, httponly=True, samesite="strict", secure=secure_cookies(), path="/"
    )


def sign_in_response(
    request: Request,
    principal: Principal,
    next_: str | None,
    keep: list[tuple[str, str]] | None = None,
    page: tuple[str, dict[str, Any]] | None = None,
) -> Response:
    """Open a signed-in session (ending a half-done one of this browser) and answer: ``page``
    if given, the kept form input handed back, or a redirect to ``next_`` / the role's home."""
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        close_session(old)  # a pending session's id never becomes a signed-in one
    token, csrf = open_session(principal)
    target = safe_next(next_, ROLE_HOME[principal.role])
    request.state.web_session = ActiveSession(principal, csrf)
    response: Response
    if page is not None:
        response = render(request, page[0], {**page[1], "target": target})
    elif keep and target in RESUMABLE_POSTS and principal.role == Role.COUNSELOR:
        # Hand the kept input back to the form, in this browser only; nothing is sent yet.
        response = render(
            request, "resume.html", {"title": "Fortsätt", "target": target, "keep": keep}
        )
    else:
        response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, token)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


def login_redirect(request: Request) -> RedirectResponse:
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(path, safe='')}", status_code=303)


# --- dependencies -----------------------------------------------------------------------------


def current_session(request: Request) -> ActiveSession | None:
    """The request's web session (loaded once per request)."""
    if not hasattr(request.state, "web_session"):
        token = request.cookies.get(SESSION_COOKIE)
        request.state.web_session = load_session(token) if token else None
    return request.state.web_session


def page_principal(request: Request) -> Principal:
    session = current_session(request)
    if session is None:
        raise LoginRequired()
    return session.principal


async def csrf_protect(request: Request) -> None:
    """Refuse a state-changing form post whose token does not match the session's."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    session = current_session(request)
    form = await request.form()
    sent = str(form.get(CSRF_FIELD, ""))
    expected = session.csrf_token if session else ""
    if not expected or not hmac.compare_digest(sent, expected):
        raise PageError(
            403,
            "Formuläret kunde inte skickas",
            "Formuläret saknade en giltig säkerhetskod (CSRF), eller så har sessionen gått ut. "
            "Ladda om sidan och försök igen. Inget har sparats.",
        )


def _role_check(roles: tuple[str, ...], api: bool) -> Callable[..., Principal]:
    def check(principal: Principal) -> Principal:
        if roles and principal.role not in roles:
            if api:
                raise ApiError(403, "forbidden", "Din roll har inte behörighet till detta.")
            raise PageError(
                403, "Ingen behörighet", "Din roll har inte behörighet till den här sidan."
            )
        return principal

    return check


def page_router(*roles: str, **kwargs: Any) -> APIRouter:
    """A router for HTML pages: signed-in users of ``roles`` only, CSRF on every post."""
    check = _role_check(roles, api=False)

    def principal_dep(principal: Principal = Depends(page_principal)) -> Principal:
        return check(principal)

    return APIRouter(
        dependencies=[Depends(principal_dep), Depends(csrf_protect)],
        include_in_schema=False,
        **kwargs,
    )


_bearer = HTTPBearer(auto_error=False, description="API-token från `orosflow users token`.")


def api_principal(
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(401, "unauthenticated", "Ange en API-token: Authorization: Bearer <token>.")
    try:
        principal = principal_for_token(credentials.credentials)
    except TokenExpired as exc:
        raise ApiError(401, exc.code, exc.message) from None
    if principal is None:
        raise ApiError(401, "invalid_token", "API-token är okänd, återkallad eller avstängd.")
    return principal


def api_router(*roles: str, **kwargs: Any) -> APIRouter:
    """A router for the JSON API: bearer token of an active account with one of ``roles``."""
    check = _role_check(roles, api=True)

    def principal_dep(principal: Principal = Depends(api_principal)) -> Principal:
        return check(principal)

    responses = {**API_ERRORS, **kwargs.pop("responses", {})}
    return APIRouter(dependencies=[Depends(principal_dep)], responses=responses, **kwargs)


def role_principal(*roles: str) -> Callable[..., Principal]:
    """Dependency giving a page route the signed-in principal (role already checked)."""

    def dep(request: Request) -> Principal:
        return _role_check(roles, api=False)(page_principal(request))

    return dep


def api_role_principal(*roles: str) -> Callable[..., Principal]:
    """Dependency giving an API route its principal (role already checked)."""

    def dep(principal: Principal = Depends(api_principal)) -> Principal:
        return _role_check(roles, api=True)(principal)

    return dep


#: Route parameters: ``principal: IntakeUser`` gives the signed-in intake officer, and so on.
CounselorUser = Annotated[Principal, Depends(role_principal(Role.COUNSELOR))]
IntakeUser = Annotated[Principal, Depends(role_principal(Role.INTAKE))]
AuditorUser = Annotated[Principal, Depends(role_principal(Role.AUDITOR))]
AdminUser = Annotated[Principal, Depends(role_principal(Role.ADMIN))]
ApiCounselor = Annotated[Principal, Depends(api_role_principal(Role.COUNSELOR))]
ApiIntake = Annotated[Principal, Depends(api_role_principal(Role.INTAKE))]
ApiAuditor = Annotated[Principal, Depends(api_role_principal(Role.AUDITOR))]
ApiAdmin = Annotated[Principal, Depends(api_role_principal(Role.ADMIN))]


# --- exception handlers -----------------------------------------------------------------------

Handler = Callable[[Request, Any], Coroutine[Any, Any, Response]]


async def _login_required(request: Request, exc: LoginRequired) -> Response:
    """Sign in first. A resumable post keeps its input only if it carries the CSRF token of
    this browser's ended session: a post from another site (no cookie, a missing or foreign
    token) is dropped unread, so it cannot pre-fill the counselor's form."""
    if request.method == "POST" and request.url.path in RESUMABLE_POSTS:
        form = await request.form()
        cookie = request.cookies.get(SESSION_COOKIE, "")
        sent = form.get(CSRF_FIELD)
        if isinstance(sent, str) and csrf_belongs_to(cookie, sent):
            keep = [
                (k, v)
                for k, v in form.multi_items()
                if isinstance(v, str) and k not in (CSRF_FIELD, "action")
            ]
            return login_page(request, request.url.path, keep=keep, status=401)
        log.info("post to %s without its session's CSRF token: input dropped", request.url.path)
    return login_redirect(request)


async def _page_error(request: Request, exc: PageError) -> Response:
    return render(
        request, "error.html", {"title": exc.title, "message": exc.message}, status_code=exc.status
    )


async def _api_error(request: Request, exc: ApiError) -> Response:
    body: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.fields is not None:
        body["fields"] = exc.fields
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse({"error": body}, status_code=exc.status, headers=headers)


EXCEPTION_HANDLERS: dict[type[Exception], Handler] = {
    LoginRequired: _login_required,
    PageError: _page_error,
    ApiError: _api_error,
}
