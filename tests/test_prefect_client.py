"""Prefect's API clients for a plain-http API share one cheap TLS context (no CA bundle loaded
per client); an https API keeps Prefect's own, verifying context. Against a real server."""

from __future__ import annotations

import ssl
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import certifi
import pytest

from orosflow.core import prefect_client


@pytest.fixture
def installed() -> Iterator[None]:
    """install() as flows.concern_report does; left installed if it already was."""
    was = bool(prefect_client._originals)
    prefect_client.install()
    yield
    if not was:
        prefect_client.uninstall()


@pytest.fixture
def ca_loads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Every ``ssl.create_default_context`` call (Prefect's and httpx's way to load CAs), as
    (calling module, cafile). Prefect's client module is imported first: its import builds
    a context of its own, which is not what these tests look at."""
    import prefect.client.orchestration  # noqa: F401

    calls: list[tuple[str, Any]] = []
    real = ssl.create_default_context

    def spy(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        calls.append((sys._getframe(1).f_globals["__name__"], kwargs.get("cafile")))
        return real(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", spy)
    return calls


def _tls_context(client: Any) -> ssl.SSLContext:
    """The context the client's connection pool would use for TLS."""
    return client._client._transport._pool._ssl_context


async def test_http_api_clients_work_without_loading_a_ca_bundle(
    prefect_server: Path, installed: None, ca_loads: list[tuple[str, Any]]
) -> None:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        assert (await client.hello()).status_code == 200
        async_ctx = _tls_context(client)
    with get_client(sync_client=True) as sync:
        assert sync.hello().status_code == 200
        sync_ctx = _tls_context(sync)

    assert ca_loads == []
    assert async_ctx is sync_ctx is prefect_client.plain_http_context()
    # Never used on http; were it ever used, it trusts nobody rather than everybody.
    assert async_ctx.verify_mode == ssl.CERT_REQUIRED and async_ctx.check_hostname
    assert async_ctx.cert_store_stats()["x509_ca"] == 0


async def test_a_flow_run_on_an_http_api_loads_no_ca_bundle(
    prefect_server: Path, installed: None, ca_loads: list[tuple[str, Any]]
) -> None:
    from prefect import flow

    @flow(name="prefect-client-probe", persist_result=False)
    async def probe() -> int:
        return 7

    assert await probe() == 7
    # The events client's one-shot server version check (once per process, in the events
    # thread) builds its own httpx client outside the API clients: left as Prefect has it.
    assert [m for m, _ in ca_loads if m != "prefect._internal.version_checking"] == []


def test_https_api_keeps_prefects_verifying_context(
    installed: None, ca_loads: list[tuple[str, Any]]
) -> None:
    from prefect.client.orchestration import PrefectClient, SyncPrefectClient
    from prefect.settings import PREFECT_API_SSL_CERT_FILE

    for cls in (PrefectClient, SyncPrefectClient):
        client = cls("https://prefect.example.se/api")
        ctx = _tls_context(client)
        assert ctx is not prefect_client.plain_http_context()
        assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
        assert ctx.cert_store_stats()["x509_ca"] > 0
    cafile = PREFECT_API_SSL_CERT_FILE.value() or certifi.where()  # Prefect's own choice
    mine = [c for c in ca_loads if c[0] == "prefect.client.orchestration"]
    assert mine == [("prefect.client.orchestration", cafile)] * 2


def test_a_callers_own_verify_is_kept(installed: None) -> None:
    from prefect.client.orchestration import PrefectClient

    own = ssl.create_default_context()
    client = PrefectClient("http://127.0.0.1:1/api", httpx_settings={"verify": own})
    assert _tls_context(client) is own


async def test_shared_clients_serve_many_runs_with_one_client(
    prefect_server: Path, installed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect import flow
    from prefect.client.orchestration import PrefectClient, SyncPrefectClient

    built: list[str] = []
    for cls in (PrefectClient, SyncPrefectClient):
        init = cls.__init__

        def counting(self: Any, *a: Any, _init: Any = init, **kw: Any) -> None:
            built.append(type(self).__name__)
            _init(self, *a, **kw)

        monkeypatch.setattr(cls, "__init__", counting)

    @flow(name="prefect-client-probe", persist_result=False)
    async def probe() -> int:
        return 7

    async with prefect_client.shared_clients():
        opened = len(built)
        for _ in range(3):
            assert await probe() == 7
    assert opened == 2  # one sync and one async client for the context itself
    assert len(built) == opened  # the three runs built none
