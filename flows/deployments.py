"""The deployments, declared once in ``prefect.yaml``: ``prefect deploy --all`` applies them to
a work pool for workers, and ``orosflow serve`` runs the same list in-process (no worker).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import yaml
from prefect.deployments.runner import RunnerDeployment
from prefect.flows import load_flow_from_entrypoint
from prefect.schedules import Schedule

ROOT = Path(__file__).resolve().parents[1]
PREFECT_YAML = ROOT / "prefect.yaml"


def declared(path: Path = PREFECT_YAML) -> list[dict[str, Any]]:
    """The ``deployments`` list of prefect.yaml."""
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    return list(spec["deployments"])


async def runner_deployments(path: Path = PREFECT_YAML) -> list[RunnerDeployment]:
    """prefect.yaml's deployments for ``serve`` (built inside the running event loop:
    ``to_deployment`` would hand back an un-awaited coroutine there)."""
    out = []
    for item in declared(path):
        entrypoint = (
            str(ROOT / item["entrypoint"].split(":")[0]) + ":" + item["entrypoint"].split(":")[1]
        )
        flow = await asyncio.to_thread(load_flow_from_entrypoint, entrypoint)
        schedules = [
            Schedule(cron=s["cron"], timezone=s.get("timezone") or "UTC")
            for s in item.get("schedules") or []
        ]
        out.append(
            await flow.ato_deployment(
                name=item["name"],
                description=item.get("description"),
                tags=item.get("tags") or [],
                schedules=schedules or None,
            )
        )
    return out
