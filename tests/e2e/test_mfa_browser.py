"""TOTP in real headless Chromium against a real ``orosflow portal`` with
``OROSFLOW_REQUIRE_MFA=true``: a new account enrols after its password (QR code and the secret
in text; the code is computed here with pyotp from the secret the page shows), sees its
recovery codes once, signs in again through the code step, and a recovery code works once.
The strict CSP reports no violation on the way (the QR code is inline SVG)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest

from support import free_port

USERNAME = "maja.mottagning"
PASSWORD = "korrekt-häst-batteri-47"


@pytest.fixture(scope="module")
def portal_url(chromium_path: Path) -> Iterator[str]:
    """``orosflow portal`` alone (no Prefect: sign-in needs none), its own var dir, one
    intake account created with ``orosflow users add`` as an operator would."""
    from orosflow.cli.serve import wait_for_http

    root = Path(tempfile.mkdtemp(prefix="orosflow-mfa-"))
    port = free_port()
    env = {
        **os.environ,
        "OROSFLOW_VAR_DIR": str(root / "var"),
        "OROSFLOW_PORTAL_PORT": str(port),
        "OROSFLOW_PORTAL_URL": f"http://127.0.0.1:{port}",
        "OROSFLOW_REQUIRE_MFA": "true",
    }
    env.pop("OROSFLOW_DATABASE_URL", None)
    cli = [sys.executable, "-m", "orosflow.cli.main"]
    add = subprocess.run(
        [*cli, "users", "add", USERNAME, "--role", "intake", "--unit", "sdf-sodermalm"]
        + ["--password-stdin"],
        input=PASSWORD + "\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert add.returncode == 0, add.stderr
    log = root / "portal.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*cli, "portal"], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", 120, proc, name="orosflow portal")
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _submit(page: Any, selector: str = "main button[type=submit]") -> None:
    with page.expect_navigation():
        page.click(selector)


def _password(page: Any, url: str) -> None:
    page.goto(f"{url}/login")
    page.fill("#username", USERNAME)
    page.fill("#password", PASSWORD)
    _submit(page)


def _code(page: Any, code: str) -> None:
    page.fill("#code", code)
    _submit(page)


def test_totp_enrolment_sign_in_and_recovery_code_in_chromium(
    portal_url: str, browser: Any
) -> None:
    ctx = browser.new_context(locale="sv-SE")
    page = ctx.new_page()
    csp_violations: list[str] = []

    def on_console(msg: Any) -> None:
        if "Content Security Policy" in msg.text:  # Chromium's report of a blocked resource
            csp_violations.append(msg.text)

    page.on("console", on_console)

    # --- enrolment right after the password -----------------------------------------------
    _password(page, portal_url)
    assert page.locator("h1").inner_text() == "Aktivera tvåstegsverifiering"
    qr = page.locator("figure.qr svg")
    assert qr.is_visible() and qr.bounding_box()["width"] >= 100  # rendered, not blocked
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    totp = pyotp.TOTP(secret)
    page.goto(f"{portal_url}/intake")  # not signed in yet
    assert "/login" in page.url
    page.goto(f"{portal_url}/login/enrol")
    assert page.locator("#totp-secret").inner_text().replace(" ", "") == secret
    _code(page, "000000")
    assert "Koden stämde inte" in page.locator("#error-summary").inner_text()
    _code(page, totp.now())
    codes = page.locator("#recovery-codes code").all_inner_texts()
    assert len(codes) == 10
    page.click("main a.button")  # "Jag har sparat koderna – fortsätt"
    page.wait_for_url(f"{portal_url}/intake")

    # --- signing in again: the code step -------------------------------------------------
    _submit(page, "form[action='/logout'] button")
    _password(page, portal_url)
    assert page.locator("h1").inner_text() == "Verifiera inloggningen"
    _code(page, "123456")
    assert "Koden stämde inte" in page.locator("#error-summary").inner_text()
    # The next 30-second step (the enrolment's code may not be used twice).
    _code(page, totp.at(time.time() + 30))
    assert page.url.endswith("/intake"), page.content()[:1500]

    # --- a recovery code, once -----------------------------------------------------------
    _submit(page, "form[action='/logout'] button")
    _password(page, portal_url)
    _code(page, codes[0])
    assert page.url.endswith("/intake")
    _submit(page, "form[action='/logout'] button")
    _password(page, portal_url)
    _code(page, codes[0])
    assert "Koden stämde inte" in page.locator("#error-summary").inner_text()
    assert page.locator("h1").inner_text() == "Verifiera inloggningen"
    assert csp_violations == []
    ctx.close()
