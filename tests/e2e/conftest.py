"""Browser tests: real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright)
against a real ``orosflow serve`` — Prefect server, flow runner, SMTP capture and portal — in a
temporary directory, signing in with the demo accounts that ``make serve`` prints.

Without Chromium these tests skip with the reason; under ``CI=true`` they fail instead.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from flows import SERVING

from support import free_port

CHROMIUM = Path("/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() == "true"
#: Where screenshots go; ``make screenshots`` points this at docs/screenshots.
SCREENSHOTS = Path(os.environ.get("OROSFLOW_SCREENSHOTS_DIR") or tempfile.mkdtemp(prefix="shots-"))


@dataclass
class Embedded:
    """A running ``orosflow serve`` and what a user of it would know."""

    url: str
    var: Path
    accounts: dict[str, dict[str, Any]]
    log: Path
    #: The environment serve runs with (its var dir, ports), for CLI commands against it.
    env: dict[str, str]

    def mails(self) -> list[Path]:
        return sorted((self.var / "mail").glob("*.eml"))

    def wait_for_mail(self, needle: str, timeout: float = 240) -> Path:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for path in self.mails():
                if needle in path.read_text(encoding="utf-8", errors="replace"):
                    return path
            time.sleep(1)
        raise AssertionError(f"no mail containing {needle} within {timeout:.0f} s:\n{self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-3000:]


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    from orosflow.cli.serve import wait_for_http

    try:
        wait_for_http(url, timeout, proc, name="orosflow serve")
    except (RuntimeError, TimeoutError) as exc:
        raise RuntimeError(f"{exc}\n{log.read_text(errors='replace')[-3000:]}") from None


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        reason = (
            "Chromium saknas (/usr/bin/chromium): "
            "installera Debian-paketen chromium och chromium-driver"
        )
        if IN_CI:
            pytest.fail(f"CI=true requires the browser tests to run: {reason}")
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(scope="module")
def embedded(chromium_path: Path) -> Iterator[Embedded]:
    """``orosflow serve`` as a user starts it (own var dir, ports, Prefect server, portal)."""
    root = Path(tempfile.mkdtemp(prefix="orosflow-e2e-"))
    var = root / "var"
    portal_port = free_port()
    env = {
        **os.environ,
        "OROSFLOW_VAR_DIR": str(var),
        "OROSFLOW_PREFECT_PORT": str(free_port()),
        "OROSFLOW_PORTAL_PORT": str(portal_port),
        "OROSFLOW_PORTAL_URL": f"http://127.0.0.1:{portal_port}",
        "OROSFLOW_SMTP_HOST": "127.0.0.1",
        "OROSFLOW_SMTP_PORT": str(free_port()),
        "PREFECT_HOME": str(var / "prefect"),
        # The test session turns flow runs off for in-process tests; serve runs as in production.
        "OROSFLOW_FLOW_RUNS": "true",
    }
    for key in ("OROSFLOW_DATABASE_URL", "PREFECT_API_URL", "OROSFLOW_DEV_MAIL"):
        env.pop(key, None)
    log = root / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orosflow.cli.main", "serve"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{portal_port}"
        _wait_http(f"{url}/healthz", proc, 180, log)
        deadline = time.monotonic() + 120
        while SERVING not in log.read_text(errors="replace"):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"flows not served:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        demo = json.loads((var / "demo-accounts.json").read_text(encoding="utf-8"))
        yield Embedded(url, var, {d["role"]: d for d in demo}, log, env)
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # like Ctrl-C: serve stops its children
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def browser(chromium_path: Path) -> Iterator[Any]:
    """Module-scoped: Playwright's sync API runs its own event loop, which must be gone before
    the asyncio tests of other modules run."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(chromium_path), args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
