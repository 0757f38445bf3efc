"""Cheaper Prefect API clients when the API is plain HTTP (the loopback server of a one-machine
setup, or a server behind a TLS-terminating proxy on the same host).

Prefect 3.9.1 builds every API client with ``ssl.create_default_context(cafile=certifi)``:
loading the CA bundle costs ~45 ms of CPU, and a flow run builds several clients, even though
an ``http://`` URL never opens a TLS connection. :func:`install` gives the clients of an
``http://`` API one shared context that loads no CA at all; an ``https://`` API (or a caller
that passes its own ``verify``) is left exactly as Prefect builds it.

:func:`shared_clients` keeps one sync and one async client open around many flow runs in one
process (benchmarks, tests, an embedding service), instead of a new client per run.
:func:`local_result_storage` spares a non-persisting flow's runs two per-run lookups.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

_originals: dict[type, Callable[..., None]] = {}
_context: ssl.SSLContext | None = None


def plain_http_context() -> ssl.SSLContext:
    """The one TLS context every client of an ``http://`` API shares.

    Never used to connect (there is no TLS on ``http://``). It still verifies (hostname and
    certificate required) and trusts no CA, so if anything did lead a client to TLS (a redirect
    to ``https://``, an ``https://`` proxy) the connection fails instead of trusting anyone.
    """
    global _context
    if _context is None:
        _context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return _context


def is_plain_http(api: object) -> bool:
    """True for an ``http://`` API URL (Prefect's ephemeral in-process app is not a URL)."""
    return isinstance(api, str) and api.lower().startswith("http://")


def _with_plain_http_context(init: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(init)
    def __init__(  # noqa: N807 - replaces the client's own __init__
        self: Any, api: Any, *args: Any, httpx_settings: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        if is_plain_http(api) and not (httpx_settings or {}).get("verify"):
            httpx_settings = {**(httpx_settings or {}), "verify": plain_http_context()}
        init(self, api, *args, httpx_settings=httpx_settings, **kw)

    return __init__


def install() -> None:
    """Make Prefect's sync and async API clients use :func:`plain_http_context` for
    ``http://`` URLs. Idempotent; forked processes inherit it (the flow-run fork server
    preloads ``flows.concern_report``, which calls this at import)."""
    from prefect.client.orchestration import PrefectClient, SyncPrefectClient

    for cls in (PrefectClient, SyncPrefectClient):
        if cls not in _originals:
            _originals[cls] = cls.__init__
            cls.__init__ = _with_plain_http_context(cls.__init__)  # type: ignore[method-assign]


def uninstall() -> None:
    """Back to Prefect's own client set-up (for tests)."""
    for cls, init in _originals.items():
        cls.__init__ = init  # type: ignore[method-assign]
    _originals.clear()


def local_result_storage() -> Path:
    """Result storage to name on a flow that never persists a result: Prefect's own local
    default path. Without one, the engine asks the server for a default storage block
    (``GET /api/admin/storage``, with a sync client of its own) twice per run, for storage
    that such a run never writes to."""
    from prefect.settings import get_current_settings

    return Path(get_current_settings().results.local_storage_path)


@asynccontextmanager
async def shared_clients() -> AsyncIterator[None]:
    """One sync and one async Prefect client for every flow run awaited inside, in this
    process: Prefect's engine takes them from its client contexts instead of opening (and
    CSRF-handshaking) new ones per run."""
    from prefect.context import AsyncClientContext, SyncClientContext

    with SyncClientContext.get_or_create():
        async with AsyncClientContext.get_or_create():
            yield
