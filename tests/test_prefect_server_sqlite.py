"""serve's embedded Prefect server (SQLite) creates a burst of flow runs without a 503 (issue
13): 20 ``create_flow_run`` calls at once against the server as ``orosflow serve`` starts it
(``orosflow/cli/prefect_server.py``), sent raw so that no client retry hides a 503; every one
answers 201. Prefect 3.9.1 unpatched answered 503 ("database is locked") to each report of such
a burst under serve."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from orosflow.cli.serve import start_prefect_server, stop_process, wait_for_http

from support import free_port

pytestmark = pytest.mark.prefect_server


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root: Path = tmp_path_factory.mktemp("prefect-sqlite")
    port = free_port()
    saved = os.environ.get("PREFECT_SERVER_UI_ENABLED")
    os.environ["PREFECT_SERVER_UI_ENABLED"] = "false"  # nobody looks; a faster start
    try:
        proc = start_prefect_server(port, root / "home", root / "server.log")
    finally:
        if saved is None:
            os.environ.pop("PREFECT_SERVER_UI_ENABLED", None)
        else:
            os.environ["PREFECT_SERVER_UI_ENABLED"] = saved
    try:
        wait_for_http(f"http://127.0.0.1:{port}/api/health", 240, proc)
        yield f"http://127.0.0.1:{port}/api"
    finally:
        stop_process(proc)


async def test_a_burst_of_flow_run_creations_gets_no_503(api: str) -> None:
    async with httpx.AsyncClient(base_url=api, timeout=120) as client:
        flow = (await client.post("/flows/", json={"name": "burst"})).json()
        deployment = await client.post(
            "/deployments/", json={"name": "burst", "flow_id": flow["id"]}
        )
        assert deployment.status_code in (200, 201), deployment.text
        dep_id = deployment.json()["id"]

        async def create(i: int) -> int:
            resp = await client.post(
                f"/deployments/{dep_id}/create_flow_run",
                json={"name": f"run-{i}", "idempotency_key": f"burst-{i}"},
            )
            return resp.status_code

        codes = await asyncio.gather(*(create(i) for i in range(20)))
        runs = (await client.post("/flow_runs/filter", json={"limit": 50})).json()
    assert codes == [201] * 20
    assert len({r["name"] for r in runs}) == 20
