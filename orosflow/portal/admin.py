"""Administrator pages: accounts — create, disable, reset the second factor, bind units.

Each action calls the function ``orosflow users`` calls (:mod:`orosflow.identity.accounts`),
so the rules and the audit events are the same on both; every post carries the session's
CSRF token (``page_router``).
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from models.accounts import Role
from orosflow.core.settings import get_settings
from orosflow.identity import accounts
from orosflow.identity.accounts import AccountError
from orosflow.portal.web import (
    AdminUser,
    ApiAdmin,
    ApiError,
    ErrorOut,
    PageError,
    api_router,
    page_router,
    render,
)

pages = page_router(Role.ADMIN, prefix="/admin")
api = api_router(Role.ADMIN, prefix="/admin", tags=["admin"])

#: What a finished action says (``?done=…&account=…``); the account name is shown as is.
_DONE = {
    "disabled": "Kontot {u} är avstängt; dess sessioner och API-token är avslutade.",
    "mfa_reset": "Tvåstegsverifieringen för {u} är borttagen och dess sessioner avslutade; "
    "kontot registrerar en ny vid nästa inloggning.",
    "units": "Enheterna för {u} är sparade.",
}
_FORM_FIELDS = ("username", "display_name", "role", "email", "units", "sign_in", "external_id")


def _users_page(
    request: Request,
    *,
    message: str | None = None,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    return render(
        request,
        "admin/users.html",
        {
            "title": "Konton",
            "users": accounts.list_users(),
            "message": message,
            "error": error,
            "form": form or {"sign_in": "password"},
            "roles": Role.ALL,
        },
        status_code=status,
    )


def _split_units(text: str) -> list[str]:
    return [u for u in re.split(r"[\s,]+", text.strip()) if u]


@pages.get("/users")
def users_page(request: Request, done: str | None = None, account: str | None = None) -> Response:
    known = {u["username"] for u in accounts.list_users()}
    # Only a real account's name is repeated: the address is not a place for arbitrary text.
    message = _DONE[done].format(u=account) if done in _DONE and account in known else None
    return _users_page(request, message=message)


@pages.post("/users")
async def create_page(request: Request, principal: AdminUser) -> Response:
    """Create an account: with a one-time password shown once on the answer, or bound to an
    identity of the organisation's IdP (``external_id``) and no password at all."""
    raw = await request.form()
    form = {k: str(raw.get(k) or "").strip() for k in _FORM_FIELDS}
    external = form["sign_in"] == "external"
    password = None if external else secrets.token_urlsafe(12)  # 16 characters
    try:
        created = accounts.add_user(
            form["username"],
            display_name=form["display_name"] or form["username"],
            role=form["role"],
            password=password,
            email=form["email"] or None,
            units=_split_units(form["units"]),
            external_id=form["external_id"] if external else None,
            actor=principal.actor,
        )
    except AccountError as exc:
        return _users_page(request, error=exc.message, form=form, status=400)
    return render(
        request,
        "admin/created.html",
        {
            "title": "Kontot är skapat",
            "created": created,
            "password": password,
            "external_id": form["external_id"] if external else None,
            "require_mfa": get_settings().require_mfa,
        },
    )


@pages.post("/users/{username}/disable")
def disable_page(username: str, principal: AdminUser) -> Response:
    if username == principal.username:
        raise PageError(400, "Kan inte stänga av", "Du kan inte stänga av ditt eget konto.")
    try:
        accounts.disable_user(username, actor=principal.actor)
    except AccountError:
        # Not exc.message: the answer never repeats what was sent.
        raise PageError(404, "Kontot finns inte", "Det finns inget sådant konto.") from None
    return RedirectResponse(f"/admin/users?done=disabled&account={username}", status_code=303)


@pages.post("/users/{username}/mfa-reset")
def mfa_reset_page(username: str, principal: AdminUser) -> Response:
    try:
        accounts.reset_mfa(username, actor=principal.actor)
    except AccountError:
        raise PageError(404, "Kontot finns inte", "Det finns inget sådant konto.") from None
    return RedirectResponse(f"/admin/users?done=mfa_reset&account={username}", status_code=303)


@pages.post("/users/{username}/units")
async def units_page(username: str, request: Request, principal: AdminUser) -> Response:
    raw = await request.form()
    try:
        accounts.set_units(
            username, _split_units(str(raw.get("units") or "")), actor=principal.actor
        )
    except AccountError as exc:
        if exc.code == "user_unknown":
            raise PageError(404, "Kontot finns inte", "Det finns inget sådant konto.") from None
        return _users_page(request, error=f"{username}: {exc.message}", status=400)
    return RedirectResponse(f"/admin/users?done=units&account={username}", status_code=303)


@api.get("/users", summary="List accounts")
def users_api() -> list[dict[str, Any]]:
    return accounts.list_users()


@api.post(
    "/users/{username}/disable",
    summary="Disable an account and revoke its tokens",
    responses={404: {"model": ErrorOut, "description": "No such account."}},
)
def disable_api(username: str, principal: ApiAdmin) -> dict[str, str]:
    try:
        accounts.disable_user(username, actor=principal.actor)
    except AccountError as exc:
        raise ApiError(404, exc.code, "Det finns inget sådant konto.") from None
    return {"username": username, "status": "disabled"}
