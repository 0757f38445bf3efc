"""Administrator pages: the account list and disabling an account (creation is by CLI)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from models.accounts import Role
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


@pages.get("/users")
def users_page(request: Request, done: str | None = None) -> Response:
    return render(
        request,
        "admin/users.html",
        {"title": "Konton", "users": accounts.list_users(), "done": done},
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
    return RedirectResponse(f"/admin/users?done={username}", status_code=303)


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
