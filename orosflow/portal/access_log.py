"""The portal's access log: one line per request with method, address, status and the time to
answer in ms (background work after the answer apart).

The address is logged through :func:`orosflow.core.redaction.redact_path`, so a personnummer
or a name typed into it never reaches the log: only reference numbers, UUIDs and the portal's
own words (registered here from its routes) stay. Uvicorn's own access log is off under
``orosflow portal`` (it has no timing); :data:`LOG_CONFIG` is the one log configuration the
portal process runs with.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Iterable
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.config import LOGGING_CONFIG

from orosflow.core import redaction

log = logging.getLogger("orosflow.access")
#: Work after the answer is shown from this many ms (the background tasks, not the unwinding).
AFTER_MS_SHOWN = 10

#: Uvicorn's configuration plus our loggers on stderr (``serve`` writes it to var/log/portal.log).
LOG_CONFIG: dict = copy.deepcopy(LOGGING_CONFIG)
LOG_CONFIG["formatters"]["orosflow"] = {
    "format": "%(asctime)s %(levelname)s %(name)s: %(message)s",
}
LOG_CONFIG["handlers"]["orosflow"] = {
    "formatter": "orosflow",
    "class": "logging.StreamHandler",
    "stream": "ext://sys.stderr",
}
LOG_CONFIG["loggers"]["orosflow"] = {"handlers": ["orosflow"], "level": "INFO", "propagate": False}


class AccessLog:
    """Pure ASGI middleware: logs each HTTP request once it has been answered (or failed)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: an exception is answered 500 outside us
        answered: float | None = None

        async def send_noting_status(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                answered = time.perf_counter()

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            query = scope.get("query_string", b"").decode("latin-1")
            address = scope.get("path", "") + (f"?{query}" if query else "")
            ended = time.perf_counter()
            # The client's wait; background work after the answer (starting a report's flow
            # runs) is shown apart.
            after_ms = (ended - answered) * 1000 if answered else 0.0
            log.info(
                "%s %s %d %.0f ms%s",
                scope.get("method", "?"),
                redaction.redact_path(address),
                status,
                ((answered or ended) - started) * 1000,
                f" (+{after_ms:.0f} ms after the answer)" if after_ms >= AFTER_MS_SHOWN else "",
            )


def _query_names(dependant: Dependant) -> set[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def register_app_words(
    app: FastAPI, routers: Iterable[APIRouter] = (), extra: Iterable[str] = ()
) -> None:
    """Tell the redactor which words the app's own addresses are made of: the literal segments
    of its routes (its own and those of ``routers``, included in it), their query parameter
    names, the static files, and ``extra`` (filter values)."""
    words: set[str] = set(extra)
    routes = [*app.routes, *(r for router in routers for r in router.routes)]
    for route in routes:
        path = getattr(route, "path", None) or ""
        words.update(seg for seg in path.split("/") if seg and "{" not in seg)
        if isinstance(route, APIRoute):
            words.update(_query_names(route.dependant))
        if isinstance(route, Mount) and getattr(route.app, "directory", None):
            root = Path(str(route.app.directory))  # type: ignore[attr-defined]
            for file in root.rglob("*"):
                words.update(file.relative_to(root).parts)
    redaction.register_path_words(words)
