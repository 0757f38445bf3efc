"""Request body limit: a body over ``MAX_BODY_BYTES`` is answered 413 before anything parses it.

A 10 MB JSON body was once parsed in full. The largest real form (12 children, every text at
its maximum, every character escaped) stays well below 1 MB, so the limit only stops abuse.
A pure ASGI middleware, so it sees the body before FastAPI, Starlette's form parser or the
CSRF check read it: a declared ``Content-Length`` over the limit is refused unread, and a body
without one (chunked) is read only up to the limit. The answer is the API's error shape for
``/api/`` paths and a Swedish page otherwise; neither repeats anything that was sent.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models.accounts import Role
from orosflow.core.redaction import redact_path

log = logging.getLogger("orosflow.portal.limits")

MAX_BODY_BYTES = 1024 * 1024
API_MESSAGE = (
    "Begäran är för stor: högst 1 MB tas emot. Inget har sparats. Korta de längsta texterna "
    "eller skicka färre uppgifter i taget."
)
PAGE_TITLE = "Formuläret är för stort"
PAGE_MESSAGE = (
    "Det som skickades var större än 1 MB och kunde därför inte läsas; inget har sparats. "
    "Korta de längsta texterna och skicka igen."
)


class BodyLimit:
    """Refuse request bodies larger than ``limit`` bytes with 413."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            await self._refuse(scope, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(scope, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect as usual

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        path = scope.get("path", "")
        log.warning("request body over %d bytes refused (413) on %s", self.limit, redact_path(path))
        response: Response
        if path.startswith("/api/"):
            response = JSONResponse(
                {"error": {"code": "body_too_large", "message": API_MESSAGE}}, status_code=413
            )
        else:
            response = _page(scope)
        response.headers["Connection"] = "close"  # the unread rest of the body is not wanted

        async def no_body() -> Message:
            return {"type": "http.disconnect"}

        await response(scope, no_body, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


#: Over the limit the concern form is not read at all, so nothing of it can be handed back:
#: the counselor gets the form again (not an error page) with this notice.
FORM_NOTICE = (
    "Formuläret var större än 1 MB och kunde därför inte läsas. Inget har sparats och "
    "uppgifterna kunde inte sparas i formuläret. Fyll i det igen med kortare texter "
    "(de längsta fälten tar högst 20 000 tecken)."
)


def _page(scope: Scope) -> Response:
    """The concern form with a notice for a signed-in counselor posting it; otherwise the
    portal's error page (the Swedish layout) when it renders, plain HTML if not even that."""
    from orosflow.portal.web import RESUMABLE_POSTS, current_session, render

    request = Request(scope)
    try:
        session = current_session(request)
        counselor = session is not None and session.principal.role == Role.COUNSELOR
        if session is not None and counselor and scope.get("path") in RESUMABLE_POSTS:
            from orosflow.portal import concern_form as cf
            from orosflow.portal.counselor import form_page

            initial = cf.initial(session.principal)
            return form_page(request, initial, notice=FORM_NOTICE, status_code=413)
        return render(request, "error.html", {"title": PAGE_TITLE, "message": PAGE_MESSAGE}, 413)
    except Exception:  # noqa: BLE001 - the 413 must go out even if the page cannot be drawn
        return HTMLResponse(
            f'<!doctype html><html lang="sv"><meta charset="utf-8"><title>{PAGE_TITLE}</title>'
            f"<h1>{PAGE_TITLE}</h1><p>{PAGE_MESSAGE}</p></html>",
            status_code=413,
        )
