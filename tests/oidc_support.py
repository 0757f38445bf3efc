"""A real OpenID Provider for the sign-in tests: ``tests/oidc_provider/provider.mjs`` (the
certified ``oidc-provider`` package) run with Node on loopback.

``npm ci`` installs its locked packages once (``node_modules`` is not in git). Without node or
npm the tests skip with the reason; under ``CI=true`` they fail instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

PROVIDER_DIR = Path(__file__).resolve().parent / "oidc_provider"
IN_CI = os.environ.get("CI", "").lower() == "true"
CLIENT_ID = "orosflow-test"
CLIENT_SECRET = "test-secret-" + "x" * 20


@dataclass
class RunningProvider:
    issuer: str
    log: Path

    def tail(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-2000:]


def _skip_or_fail(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true requires the OpenID Provider tests to run: {reason}")
    pytest.skip(reason)


def ensure_installed() -> str:
    """The node binary, after ``npm ci`` if the provider's packages are missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        _skip_or_fail("node och npm saknas (Debian-paketen nodejs och npm, Node 20 eller senare)")
    assert node and npm
    if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=PROVIDER_DIR,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            _skip_or_fail(f"npm ci i tests/oidc_provider misslyckades: {done.stderr[-500:]}")
    return node


@contextmanager
def running_provider(
    port: int, redirect_uris: list[str], post_logout_uris: list[str], log: Path
) -> Iterator[RunningProvider]:
    """The provider on ``127.0.0.1:port`` until the block ends."""
    node = ensure_installed()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                node,
                "provider.mjs",
                str(port),
                CLIENT_ID,
                CLIENT_SECRET,
                ",".join(redirect_uris),
                ",".join(post_logout_uris),
            ],
            cwd=PROVIDER_DIR,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    issuer = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the OpenID Provider exited:\n{log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=2).is_success:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the OpenID Provider did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield RunningProvider(issuer, log)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
