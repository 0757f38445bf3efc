"""``/api/docs`` works without the internet, as in most municipal networks (issue 12, item
14): Swagger UI's assets come from a package and are served by the portal itself, under the
same Content-Security-Policy as every page. Real headless Chromium against the portal in a real
uvicorn on loopback; every request that would leave loopback is blocked and recorded."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import uvicorn

from support import free_port

LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


@pytest.fixture
def portal_url(sqlite_db: str) -> Iterator[str]:
    """The portal app in a real uvicorn on loopback (same process, same test settings)."""
    from orosflow.portal.app import create_app

    port = free_port()
    srv = uvicorn.Server(
        uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


def test_api_docs_render_offline_under_the_page_csp(browser: Any, portal_url: str) -> None:
    from orosflow.portal.app import CSP

    left_loopback: list[str] = []
    csp_errors: list[str] = []

    def only_loopback(route: Any) -> None:
        url = route.request.url
        if urlsplit(url).hostname in LOOPBACK or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            left_loopback.append(url)
            route.abort()

    ctx = browser.new_context()
    try:
        ctx.route("**/*", only_loopback)
        page = ctx.new_page()
        page.on(
            "console",
            lambda msg: (
                csp_errors.append(msg.text) if "Content Security Policy" in msg.text else None
            ),
        )
        response = page.goto(f"{portal_url}/api/docs")
        assert response is not None and response.status == 200
        assert response.headers["content-security-policy"] == CSP  # no wider docs policy
        page.wait_for_selector(".opblock", timeout=30_000)
        operations = page.locator(".opblock").count()
        assert operations > 5, operations
        assert page.locator(".opblock-summary-path", has_text="/api/v1/reports").count() > 0
        assert "Orosflow API" in page.locator(".info .title").inner_text()
    finally:
        ctx.close()
    assert left_loopback == [], f"requests left loopback: {left_loopback}"
    assert csp_errors == [], csp_errors
