"""Deployments `make serve` runs in-process; `prefect.yaml` declares them for workers."""

from __future__ import annotations

from prefect.deployments.runner import RunnerDeployment

from flows.concern_report import concern_report


def runner_deployments() -> list[RunnerDeployment]:
    return [
        concern_report.to_deployment(
            name="concern-report",
            description="En körning per anmälan: läs, kontrollera, dirigera, avisera, logga.",
            tags=["orosflow"],
        ),
    ]
