"""Deployments `make serve` runs in-process; `prefect.yaml` declares them for workers."""

from __future__ import annotations

from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Schedule

from flows.audit_verify import audit_verify
from flows.concern_report import concern_report
from flows.escalate_overdue import escalate_overdue
from flows.retention import retention_flow


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
        await retention_flow.ato_deployment(
            name="retention",
            description="Varje natt: raderar innehåll äldre än lagringstiden, spåret finns kvar.",
            tags=["orosflow"],
            schedule=Schedule(cron="30 2 * * *", timezone="Europe/Stockholm"),
        ),
        await audit_verify.ato_deployment(
            name="audit-verify",
            description="Varje dag: kontrollerar hashkedjan och skriver dagens ankare.",
            tags=["orosflow"],
            schedule=Schedule(cron="15 6 * * *", timezone="Europe/Stockholm"),
        ),
    ]
