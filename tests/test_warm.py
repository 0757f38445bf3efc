"""Long-lived processes load the report path's data before the first report, not during it
(orosflow.handover.warm): the fork server of the flow runs, and the portal at start.

Each check runs in a fresh Python, where nothing is loaded yet.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LOADED = """
import gc, json, sys
from routing.hours import SwedishCalendar
from orosflow.core.mail import template_env
env = template_env()
emails = env.list_templates(filter_func=lambda n: n.startswith("email/"))
compiled = {key[1] for key in env.cache.keys()} if env.cache else set()
print(json.dumps({
    "holiday_years": SwedishCalendar.public_holidays.cache_info().currsize,
    "templates": len(emails),
    "compiled": len([n for n in emails if n in compiled]),
    "prefect_client": "prefect.client.orchestration" in sys.modules,
    "frozen": gc.get_freeze_count(),
}))
"""


def _loaded_after(setup: str, tmp_path: Path) -> dict[str, object]:
    env = {
        **os.environ,
        "OROSFLOW_VAR_DIR": str(tmp_path / "var"),
        "PYTHONPATH": str(ROOT),
        "OROSFLOW_FLOW_RUNS": "true",  # the portal starts runs: it loads Prefect's client too
    }
    out = subprocess.run(
        [sys.executable, "-c", setup + LOADED],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_fresh_process_has_loaded_nothing(tmp_path: Path) -> None:
    """The baseline the other checks differ from (so they can fail)."""
    got = _loaded_after("", tmp_path)
    assert got["holiday_years"] == 0
    assert got["compiled"] == 0
    assert got["frozen"] == 0


def test_the_fork_server_preload_loads_holidays_and_mail_templates(tmp_path: Path) -> None:
    got = _loaded_after("import flows.preload\n", tmp_path)
    assert got["holiday_years"] >= 2  # this year and the next
    assert got["templates"] and got["compiled"] == got["templates"]
    # What every run inherits is out of the collector's way (orosflow.core.heap).
    assert got["frozen"] > 50_000


def test_the_portal_loads_them_and_prefects_api_client_before_its_first_request(
    tmp_path: Path,
) -> None:
    setup = (
        "from fastapi.testclient import TestClient\n"
        "from orosflow.core.db import migrate\n"
        "from orosflow.portal.app import create_app\n"
        "migrate()\n"
        "TestClient(create_app()).__enter__()\n"
    )
    got = _loaded_after(setup, tmp_path)
    assert got["holiday_years"] >= 2
    assert got["compiled"] == got["templates"]
    assert got["prefect_client"]
    assert got["frozen"] > 50_000
