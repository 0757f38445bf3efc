"""Sign-in through the organisation's IdP: ``/login/oidc`` (to the IdP) and its callback.

Only routed when ``OROSFLOW_OIDC_ISSUER`` is set. The flow's work is in
:mod:`orosflow.identity.oidc`; here are the cookies and pages:

- ``orosflow_oidc`` binds a flow to the browser that started it. It is SameSite=Lax (the IdP's
  redirect back is a cross-site navigation, which a Strict cookie would not survive), HttpOnly
  and limited to ``/login/oidc``.
- After the callback the session cookie is Strict like every session's; since a Strict cookie is
  not sent on the rest of a navigation that began at the IdP, the callback answers with a page
  that continues (meta refresh and a link) instead of a redirect.
- ``orosflow_idp`` (Strict, path ``/logout``) marks a session from the IdP, so signing out also
  ends the IdP's session (RP-initiated logout) where the IdP offers it.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from orosflow.core.settings import get_settings
from orosflow.identity import oidc
from orosflow.identity.accounts import Principal
from orosflow.portal.sessions import ActiveSession, open_session
from orosflow.portal.web import (
    ROLE_HOME,
    SESSION_COOKIE,
    login_page,
    render,
    safe_next,
    secure_cookies,
    templates,
)

FLOW_COOKIE = "orosflow_oidc"
IDP_COOKIE = "orosflow_idp"

router = APIRouter(include_in_schema=False)


def enabled() -> bool:
    """Whether sign-in through the IdP is configured (the login page shows its button)."""
    return bool(get_settings().oidc_issuer.strip())


templates.env.globals["oidc_sign_in"] = enabled


def check_config() -> None:
    """Read the settings once at start, so a broken group map stops the portal there."""
    if enabled():
        oidc.oidc_config()


@router.get("/login/oidc")
def start(request: Request, next: str | None = None) -> Response:
    """To the IdP: a new flow (state, nonce, PKCE) bound to this browser by a cookie."""
    cfg = oidc.oidc_config()
    assert cfg is not None
    try:
        started = oidc.begin(cfg, safe_next(next, ""))
    except oidc.OidcRefused as exc:
        return login_page(request, next, error=exc.message, status=503)
    response = RedirectResponse(started.authorization_url, status_code=303)
    response.set_cookie(
        FLOW_COOKIE,
        started.cookie,
        max_age=int(oidc.FLOW_TTL.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=secure_cookies(),
        path="/login/oidc",
    )
    return response


@router.get(oidc.CALLBACK_PATH)
async def callback(request: Request) -> Response:
    """Back from the IdP: check everything, open a session, continue to the role's page."""
    cfg = oidc.oidc_config()
    assert cfg is not None
    params = {
        k: v for k, v in request.query_params.items() if k in ("code", "state", "error", "iss")
    }
    cookie = request.cookies.get(FLOW_COOKIE, "")
    try:
        signed_in = await run_in_threadpool(oidc.complete, cfg, cookie, params)
    except oidc.OidcRefused as exc:
        response = login_page(request, None, error=exc.message, status=401)
        response.delete_cookie(FLOW_COOKIE, path="/login/oidc")
        return response
    principal: Principal = signed_in.principal
    token, csrf = await run_in_threadpool(open_session, principal)
    target = safe_next(signed_in.next_path, ROLE_HOME[principal.role])
    request.state.web_session = ActiveSession(principal, csrf)
    response = render(request, "oidc_continue.html", {"title": "Inloggad", "target": target})
    response.set_cookie(
        SESSION_COOKIE, token, httponly=True, samesite="strict", secure=secure_cookies(), path="/"
    )
    response.set_cookie(
        IDP_COOKIE, "1", httponly=True, samesite="strict", secure=secure_cookies(), path="/logout"
    )
    response.delete_cookie(FLOW_COOKIE, path="/login/oidc")
    return response


def after_logout(request: Request, principal: Principal | None) -> str | None:
    """Audit a sign-out; the IdP's end-session address when the session came from it."""
    via = "oidc" if request.cookies.get(IDP_COOKIE) else "local"
    if principal is not None:
        oidc.record_logout(principal, via)
    if via != "oidc" or not enabled():
        return None
    cfg = oidc.oidc_config()
    return oidc.end_session_url(cfg) if cfg else None


def idp_logout_page(request: Request, url: str) -> Response:
    """Signed out here; on to the IdP's end-session page (which returns to the sign-in page)."""
    request.state.web_session = None
    return render(
        request,
        "oidc_continue.html",
        {
            "title": "Du är utloggad",
            "message": "Du är utloggad från Orosflow. Inloggningen hos organisationens "
            "identitetsleverantör avslutas också.",
            "target": url,
            "link_text": "Avsluta inloggningen hos organisationen",
        },
    )
