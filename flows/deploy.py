"""Create or update the deployments of ``prefect.yaml`` on their work pool, from Python.

``uv run python -m flows.deploy`` does what ``prefect deploy --all`` would, for the keys our
``prefect.yaml`` uses (entrypoint, description, tags, schedules, work pool and its job
variables, the pull steps). Why not the CLI: with Prefect 3.8.8 and FastAPI 0.151 or newer the
server answers 422 to any request body that carries an explicit ``null`` for a body parameter
declared with a default (``limit: int = Body(None)``, ``sort``, filter objects), and the CLI
sends ``"limit": null`` in its check for online workers right after it creates the first
deployment, so ``prefect deploy --all`` stops there with an error (docs/deploy.md).

The work pool must exist (``prefect work-pool create orosflow --type process``). The code is
not copied anywhere: each flow run starts in the checkout named by ``OROSFLOW_HOME`` (default:
this checkout), which every worker machine must have at that path.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _resolve_env(value: Any) -> Any:
    """Fill ``{{ $NAME }}`` from the environment, as the Prefect CLI does at deploy time."""
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in os.environ:
                raise SystemExit(f"Miljövariabeln {name} behövs av prefect.yaml men är inte satt.")
            return os.environ[name]

        return re.sub(r"\{\{\s*\$([A-Za-z_][A-Za-z0-9_]*)\s*\}\}", sub, value)
    if isinstance(value, list):
        return [_resolve_env(v) for v in value]
    if isinstance(value, dict):
        return {k: _resolve_env(v) for k, v in value.items()}
    return value


def load_spec(config: Path = ROOT / "prefect.yaml") -> dict[str, Any]:
    import yaml

    return yaml.safe_load(config.read_text(encoding="utf-8"))


async def deploy(spec: dict[str, Any], pool: str | None = None) -> list[tuple[str, str]]:
    """Apply every deployment of a parsed ``prefect.yaml``; returns ``(flow/deployment, id)``."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.exceptions import ObjectNotFound
    from prefect.flows import load_flow_from_entrypoint
    from prefect.utilities.callables import parameter_schema

    pull_steps = _resolve_env(spec.get("pull") or [])
    applied: list[tuple[str, str]] = []
    async with get_client() as client:
        for item in spec["deployments"]:
            pool_name = pool or item["work_pool"]["name"]
            try:
                await client.read_work_pool(pool_name)
            except ObjectNotFound:
                raise SystemExit(
                    f"Arbetspoolen {pool_name!r} finns inte. Skapa den först: "
                    f"prefect work-pool create {pool_name} --type process"
                ) from None
            flow = await asyncio.to_thread(load_flow_from_entrypoint, item["entrypoint"])
            flow_id = await client.create_flow_from_name(flow.name)
            schedules = [
                DeploymentScheduleCreate(
                    schedule=CronSchedule(cron=s["cron"], timezone=s.get("timezone")),
                    active=s.get("active", True),
                )
                for s in item.get("schedules") or []
            ]
            deployment_id = await client.create_deployment(
                flow_id=flow_id,
                name=item["name"],
                description=item.get("description") or flow.description,
                tags=item.get("tags") or [],
                entrypoint=item["entrypoint"],
                work_pool_name=pool_name,
                job_variables=_resolve_env(item["work_pool"].get("job_variables") or {}),
                pull_steps=pull_steps,
                schedules=schedules,
                parameter_openapi_schema=parameter_schema(flow).model_dump(exclude_unset=True),
                enforce_parameter_schema=True,
            )
            applied.append((f"{flow.name}/{item['name']}", str(deployment_id)))
    return applied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flows.deploy",
        description="Skapar eller uppdaterar driftsättningarna i prefect.yaml.",
    )
    parser.add_argument("--file", type=Path, default=ROOT / "prefect.yaml")
    parser.add_argument("--pool", help="annan arbetspool än den i prefect.yaml")
    args = parser.parse_args(argv)
    os.environ.setdefault("OROSFLOW_HOME", str(ROOT))

    from orosflow.core.prefect_env import configure

    configure()
    os.chdir(ROOT)  # entrypoints are relative to the checkout
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    applied = asyncio.run(deploy(load_spec(args.file), args.pool))
    for name, deployment_id in applied:
        print(f"{name}: {deployment_id}")
    print(f"{len(applied)} driftsättningar klara. Starta arbetare: prefect worker start --pool ...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
