"""``python -m orosflow.cli.prefect_server server start …``: Prefect's own CLI, for the server
``orosflow serve`` embeds, with one change for its SQLite database.

Prefect's rule for SQLite (prefect/server/AGENTS.md) is that a transaction which reads and then
writes must begin IMMEDIATE: a deferred one holds a read snapshot, and if another connection
commits before its first write, SQLite answers "database is locked" at once (the busy timeout
does not apply) and the API answers 503. ``POST /deployments/{id}/create_flow_run`` — every
report's flow run — breaks that rule in Prefect 3.9.1: it reads the deployment and work queue,
then inserts. Under a burst of 20 reports through ``orosflow serve`` every creation hit it once
(20 × 503 in the server log, each retried by the client after 2–8 s). Here every transaction
the server opens begins IMMEDIATE: it waits for the write lock (busy timeout 60 s) instead of
failing. SQLite takes one writer at a time either way; only reads outside a transaction stay
concurrent. PostgreSQL servers (``prefect server start`` in production) are not touched.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any


def immediate_sqlite_transactions() -> None:
    """Make every explicit SQLite transaction of Prefect's server ``BEGIN IMMEDIATE``."""
    from prefect.server.database.configurations import AioSqliteConfiguration

    original = AioSqliteConfiguration.begin_transaction
    if getattr(original, "_orosflow_immediate", False):
        return

    @asynccontextmanager
    async def begin_transaction(
        self: AioSqliteConfiguration, session: Any, with_for_update: bool = False
    ) -> AsyncGenerator[Any, None]:
        async with original(self, session, with_for_update=True) as transaction:
            yield transaction

    begin_transaction._orosflow_immediate = True  # type: ignore[attr-defined]
    AioSqliteConfiguration.begin_transaction = begin_transaction  # type: ignore[method-assign]


def main() -> None:
    immediate_sqlite_transactions()
    from prefect.cli import app

    sys.argv[0] = "prefect"
    app()


if __name__ == "__main__":
    main()
