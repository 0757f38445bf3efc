"""Sign-in through the organisation's IdP in Chromium, against a real OpenID Provider (the
certified ``oidc-provider`` on loopback, tests/oidc_provider) and a real ``orosflow portal``:
the redirect with PKCE, state and nonce, the sign-in at the provider, back to Orosflow with a
session whose role and units come from the groups; an unknown subject refused (just-in-time
provisioning off), a sign-in without a second factor refused, and signing out at both ends.
Every outcome is on the audit trail with its reason code and no personal data.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from oidc_support import CLIENT_ID, CLIENT_SECRET, RunningProvider, running_provider
from support import free_port, run_cli

GROUP_MAP = """\
["orosflow-mottagning-sodermalm"]
role = "intake"
units = ["sdf-sodermalm"]

["orosflow-granskare"]
role = "auditor"
"""


@dataclass
class Site:
    url: str
    idp: RunningProvider
    env: dict[str, str]
    db: Path
    log: Path

    def events(self, action: str) -> list[tuple[str, dict[str, Any]]]:
        with sqlite3.connect(self.db) as conn:
            rows = conn.execute(
                "SELECT actor, details FROM audit_event WHERE action = ? ORDER BY seq", (action,)
            ).fetchall()
        return [(actor, json.loads(details)) for actor, details in rows]


@pytest.fixture(scope="module")
def site(chromium_path: Path) -> Iterator[Site]:
    """An IdP and a portal configured for it: group map, MFA required, JIT off; three people
    provisioned by an administrator (Anna as auditor: her groups make her an intake officer)."""
    root = Path(tempfile.mkdtemp(prefix="orosflow-oidc-"))
    portal_port, idp_port = free_port(), free_port()
    url = f"http://127.0.0.1:{portal_port}"
    (root / "groups.toml").write_text(GROUP_MAP, encoding="utf-8")
    with running_provider(
        idp_port,
        [f"{url}/login/oidc/callback"],
        [f"{url}/login?logged_out=1"],
        root / "idp.log",
    ) as idp:
        env = {
            **os.environ,
            "OROSFLOW_VAR_DIR": str(root / "var"),
            "OROSFLOW_PORTAL_PORT": str(portal_port),
            "OROSFLOW_PORTAL_URL": url,
            "OROSFLOW_OIDC_ISSUER": idp.issuer,
            "OROSFLOW_OIDC_CLIENT_ID": CLIENT_ID,
            "OROSFLOW_OIDC_CLIENT_SECRET": CLIENT_SECRET,
            "OROSFLOW_OIDC_GROUP_MAP": str(root / "groups.toml"),
            "OROSFLOW_OIDC_REQUIRE_MFA": "true",
        }
        env.pop("OROSFLOW_DATABASE_URL", None)
        # `orosflow users add NAME --role auditor --external-id SUBJECT`, three times in one
        # process (the machine is shared: each interpreter start costs seconds).
        script = (
            "from orosflow.cli.main import main\n"
            "for name, sub in (('anna', 'anna-0001'), ('bertil', 'bertil-0003'),"
            " ('cecilia', 'cecilia-0004')):\n"
            "    argv = ['users', 'add', name, '--role', 'auditor', '--external-id', sub]\n"
            "    assert main(argv) == 0"
        )
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        log = root / "portal.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "orosflow.cli.main", "portal"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            from orosflow.cli.serve import wait_for_http

            wait_for_http(f"{url}/healthz", 120, proc, name="orosflow portal")
            yield Site(url, idp, env, root / "var" / "orosflow.db", log)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)


def _wait(page: Any, site: Site, url: str) -> None:
    """Wait for the browser to reach ``url``; say where it is instead if it does not."""
    try:
        page.wait_for_url(url, timeout=60_000)
    except Exception as exc:
        raise AssertionError(
            f"not at {url} but at {page.url}:\n{page.locator('body').inner_text()[:1500]}\n"
            f"--- portal log:\n{site.log.read_text()[-2000:]}\n--- IdP log:\n{site.idp.tail()}"
        ) from exc


def _sign_in_at_idp(page: Any, site: Site, username: str) -> None:
    page.goto(f"{site.url}/login")
    page.get_by_role("link", name="Logga in med organisationens konto").click()
    _wait(page, site, f"{site.idp.issuer}/interaction/**")
    page.fill("#idp-username", username)
    page.fill("#idp-password", f"{username}-losen")
    page.click("#idp-submit")


def test_sign_in_maps_groups_to_role_and_units_and_signs_out_at_both_ends(
    site: Site, browser: Any
) -> None:
    context = browser.new_context()
    page = context.new_page()
    _sign_in_at_idp(page, site, "anna")
    _wait(page, site, f"{site.url}/intake")
    header = page.locator(".who").inner_text()
    assert "Mottagningshandläggare" in header, header  # the role from her group
    inbox = page.locator("main").inner_text()
    assert "Södermalms stadsdelsförvaltning" in inbox, inbox  # the unit from her group
    # The account follows the groups (an administrator had made her an auditor).
    listed = {u["username"]: u for u in json.loads(run_cli("users", "list", env=site.env).stdout)}
    assert (listed["anna"]["role"], listed["anna"]["units"]) == ("intake", ["sdf-sodermalm"])
    anna_events = [d for a, d in site.events("login.succeeded") if a == "user:anna"]
    assert anna_events == [{"via": "oidc"}]

    # Signing out ends the session here and, through RP-initiated logout, at the IdP.
    page.get_by_role("button", name="Logga ut").click()
    _wait(page, site, f"{site.idp.issuer}/session/end**")
    page.get_by_role("button", name="Yes, sign me out").click()
    _wait(page, site, f"{site.url}/login?logged_out=1")
    assert "Du är utloggad" in page.locator("main").inner_text()
    assert ("user:anna", {"via": "oidc"}) in site.events("logout")
    page.goto(f"{site.url}/intake")
    assert "/login" in page.url  # the local session is gone
    # The IdP's session is gone too: signing in again asks for the password.
    page.get_by_role("link", name="Logga in med organisationens konto").click()
    _wait(page, site, f"{site.idp.issuer}/interaction/**")
    context.close()


def test_a_second_group_gives_another_role(site: Site, browser: Any) -> None:
    context = browser.new_context()
    page = context.new_page()
    _sign_in_at_idp(page, site, "bertil")
    _wait(page, site, f"{site.url}/audit")
    assert "Granskare" in page.locator(".who").inner_text()
    context.close()


def test_an_unknown_subject_is_refused_without_just_in_time_provisioning(
    site: Site, browser: Any
) -> None:
    context = browser.new_context()
    page = context.new_page()
    _sign_in_at_idp(page, site, "okand")
    _wait(page, site, f"{site.url}/login/oidc/callback**")
    text = page.locator("main").inner_text()
    assert "Det finns inget Orosflow-konto för din organisationsidentitet" in text
    page.goto(f"{site.url}/intake")
    assert "/login" in page.url  # no session
    refusals = [d for _, d in site.events("login.refused")]
    assert {"via": "oidc", "reason": "account_unknown"} in refusals
    everything = json.dumps([d for a in ("login.refused",) for _, d in site.events(a)])
    assert "okand" not in everything  # neither the subject nor the e-mail
    context.close()


def test_a_sign_in_without_a_second_factor_is_refused(site: Site, browser: Any) -> None:
    context = browser.new_context()
    page = context.new_page()
    _sign_in_at_idp(page, site, "cecilia")
    _wait(page, site, f"{site.url}/login/oidc/callback**")
    assert "två faktorer" in page.locator("main").inner_text()
    assert {"via": "oidc", "reason": "mfa_missing"} in [d for _, d in site.events("login.refused")]
    context.close()
