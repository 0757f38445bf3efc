"""Deployments `make serve` runs in-process; `prefect.yaml` declares them for workers."""

from __future__ import annotations

from prefect.deployments.runner import RunnerDeployment

from flows.concern_report import concern_report
from flows.escalate_overdue import escalate_overdue


async def runner_deployments() -> list[RunnerDeployment]:
    """Built inside the running event loop (``ato_deployment``): ``to_deployment`` would hand
    back an un-awaited coroutine there."""
    return [
        await concern_report.ato_deployment(
            name="concern-report",
            description="En körning per anmälan: läs, kontrollera, dirigera, avisera, logga.",
            tags=["orosflow"],
        ),
        await escalate_overdue.ato_deployment(
            name="escalate-overdue",
            description="Var femte minut: påminn, eskalera och be kuratorn ringa vid utebliven "
            "bekräftelse.",
            tags=["orosflow"],
            cron="*/5 * * * *",
        ),
    ]
