"""Prefect settings for Orosflow processes, applied before Prefect is imported.

Only defaults: anything the operator sets in the environment wins.
"""

from __future__ import annotations

import os
from pathlib import Path

from orosflow.core.settings import get_settings


def configure(api_url: str | None = None) -> None:
    settings = get_settings()
    defaults = {
        "PREFECT_API_URL": api_url or f"http://127.0.0.1:{settings.prefect_port}/api",
        "PREFECT_HOME": str(settings.var_dir / "prefect"),
        # The server's telemetry cannot reach the internet here and would only log errors.
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # Runners poll every 10 s by default: too slow for "notify within seconds".
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        # Flow runs send a heartbeat event this often (Prefect's minimum; default 180 s): the
        # reconciler tells a run whose process was killed from a slow one by these.
        "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30",
        # Never fall back to a throw-away in-process server: runs must land on the real one.
        "PREFECT_SERVER_EPHEMERAL_ENABLED": "false",
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    try:  # Prefect warns on every command when its home cannot be created (no var/ yet)
        Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)
    except OSError:
        pass
