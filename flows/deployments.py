"""The deployments, declared once in ``prefect.yaml``: ``prefect deploy --all`` applies them to
a work pool for Prefect's workers, and ``orosflow serve`` / ``orosflow runner`` serve the same
list from a long-lived process (``serve_declared``).
"""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path
from typing import Any

import yaml
from prefect.deployments.runner import RunnerDeployment
from prefect.flows import Flow, load_flow_from_entrypoint
from prefect.schedules import Schedule

from flows import SERVING

ROOT = Path(__file__).resolve().parents[1]
PREFECT_YAML = ROOT / "prefect.yaml"


def declared(path: Path = PREFECT_YAML) -> list[dict[str, Any]]:
    """The ``deployments`` list of prefect.yaml."""
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    return list(spec["deployments"])


def _schedules(item: dict[str, Any]) -> list[Schedule] | None:
    out = [
        Schedule(cron=s["cron"], timezone=s.get("timezone") or "UTC")
        for s in item.get("schedules") or []
    ]
    return out or None


def _options(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": item["name"],
        "description": item.get("description"),
        "tags": item.get("tags") or [],
        "schedules": _schedules(item),
    }


def imported_flow(entrypoint: str) -> Flow[Any, Any]:
    """The flow of ``flows/x.py:name`` imported as the module ``flows.x``, so a forked run finds
    it by name in what the fork server preloaded (a flow loaded from a file path would be
    pickled whole into every run)."""
    file, name = entrypoint.split(":")
    module = importlib.import_module(file.removesuffix(".py").replace("/", "."))
    return getattr(module, name)


async def runner_deployments(path: Path = PREFECT_YAML) -> list[RunnerDeployment]:
    """prefect.yaml's deployments, each run as a new Python process by Prefect's engine
    command (built inside the running event loop: ``to_deployment`` would hand back an
    un-awaited coroutine there)."""
    out = []
    for item in declared(path):
        file, name = item["entrypoint"].split(":")
        flow = await asyncio.to_thread(load_flow_from_entrypoint, f"{ROOT / file}:{name}")
        out.append(await flow.ato_deployment(**_options(item)))
    return out


async def serve_declared(
    limit: int, fork: bool, pause: bool = True, path: Path = PREFECT_YAML
) -> None:
    """Serve prefect.yaml's deployments in this process until cancelled, at most ``limit``
    runs at once. ``fork``: the runner gets each flow object, so it starts a run with
    ``multiprocessing`` (forked from the preloaded server that ``core.flow_processes``
    installs) instead of a new Python that imports everything again. ``pause``: pause the
    deployments' schedules when stopping."""
    from prefect import aserve
    from prefect.runner import Runner

    from orosflow.core import runner_poll

    # A backlog is not fetched whole every second, and the scheduled sweeps (the escalation
    # sweep is the backstop for that backlog) do not queue behind it.
    runner_poll.install(ahead=[item["name"] for item in declared(path) if item.get("schedules")])
    if not fork:
        deployments = await runner_deployments(path)
        print(f"{SERVING}: {', '.join(d.name for d in deployments)}.", flush=True)
        await aserve(*deployments, limit=limit, pause_on_shutdown=pause)
        return
    runner = Runner(pause_on_shutdown=pause, limit=limit)
    for item in declared(path):
        flow = await asyncio.to_thread(imported_flow, item["entrypoint"])
        await runner.aadd_flow(flow, **_options(item))
    names = ", ".join(f"{item['name']}" for item in declared(path))
    print(f"{SERVING}: {names} (högst {limit} körningar åt gången).", flush=True)
    await runner.start()
