"""The benchmark's own world: temp dirs, a Prefect server, the app database, an SMTP capture.

Everything is created under one temp dir and torn down by :class:`Cleanup`, even on error, so a
benchmark run never touches ``var/`` or a developer's Prefect server.
Call :func:`prepare_process_env` before anything imports Prefect: Prefect reads its settings
once, at import.
"""

from __future__ import annotations

import email
import email.policy
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

PG_ADMIN_URL = os.environ.get(
    "OROSFLOW_BENCH_PG_URL", "postgresql+psycopg://root@127.0.0.1:5432/test"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Workspace:
    """Paths and ports of one benchmark run (temp dir, Prefect port, unique PostgreSQL names)."""

    root: Path
    prefect_port: int
    tag: str = field(default_factory=lambda: f"{os.getpid()}_{int(time.time())}")

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.prefect_port}/api"

    @property
    def pg_schema(self) -> str:
        return f"orosflow_bench_{self.tag}"

    @property
    def pg_prefect_db(self) -> str:
        return f"orosflow_bench_prefect_{self.tag}"


def prepare_process_env() -> Workspace:
    """Point this process (and the servers it starts) at a throw-away world, before Prefect loads.

    Telemetry is off (no internet here) and the ephemeral server is disabled so a run can only
    land on the server the benchmark started.
    """
    ws = Workspace(Path(tempfile.mkdtemp(prefix="orosflow-bench-")), free_port())
    os.environ.update(
        OROSFLOW_VAR_DIR=str(ws.root / "var"),
        PREFECT_HOME=str(ws.root / "prefect"),
        PREFECT_API_URL=ws.api_url,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_ENABLED="false",
        PREFECT_SERVER_UI_ENABLED="false",  # nobody looks; saves copying the UI at start-up
        # Logs still ship to the API at the default level (as in production); the console
        # only shows warnings so the progress lines stay readable.
        PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL="WARNING",
    )
    for key in ("OROSFLOW_DATABASE_URL", "OROSFLOW_SECRET_KEY", "OROSFLOW_CHANNELS_FILE"):
        os.environ.pop(key, None)
    return ws


def _admin_engine():  # type: ignore[no-untyped-def]
    from sqlalchemy import create_engine

    from orosflow.core.db import normalise_url

    return create_engine(
        normalise_url(PG_ADMIN_URL),
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": 3},
    )


def postgres_available() -> str | None:
    """``None`` when PostgreSQL answers, else why not (the PostgreSQL columns are then skipped)."""
    from sqlalchemy import text

    try:
        engine = _admin_engine()
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"[:200]


class AppDatabases:
    """The app database per kind (``sqlite``/``postgres``): created and migrated on first use,
    PostgreSQL's schema dropped by the exit stack."""

    def __init__(self, ws: Workspace, stack: ExitStack) -> None:
        self.ws, self.stack = ws, stack
        self.urls: dict[str, str] = {}

    def select(self, kind: str) -> None:
        """Point the app (settings + engine) at ``kind``, creating it the first time."""
        from orosflow.core import db as dbmod
        from orosflow.core.settings import reset_settings

        first = kind not in self.urls
        if first:
            self.urls[kind] = self._create(kind)
        os.environ["OROSFLOW_DATABASE_URL"] = self.urls[kind]
        reset_settings()
        dbmod.reset_engine()
        if first:
            dbmod.migrate()

    def _create(self, kind: str) -> str:
        from sqlalchemy import text

        from orosflow.core import db as dbmod

        if kind == "sqlite":
            self.stack.callback(dbmod.reset_engine)
            return f"sqlite:///{self.ws.root / 'app.db'}"
        schema = self.ws.pg_schema
        engine = _admin_engine()
        with engine.connect() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        engine.dispose()

        def drop() -> None:
            # A thread cut short (Ctrl-C) may still hold a connection in a transaction, and
            # DROP SCHEMA would wait for it forever: end our own sessions first.
            dbmod.reset_engine()
            eng = _admin_engine()
            with eng.connect() as c:
                c.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": schema},
                )
                c.execute(text("SET lock_timeout = '20s'"))
                c.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            eng.dispose()

        self.stack.callback(drop)
        sep = "&" if "?" in PG_ADMIN_URL else "?"
        return f"{PG_ADMIN_URL}{sep}application_name={schema}&options=-csearch_path%3D{schema}"


@dataclass
class PrefectServer:
    pgid: int
    startup: float


def start_prefect(ws: Workspace, backend: str, stack: ExitStack) -> PrefectServer:
    """Start ``prefect server start`` on ``backend`` (sqlite|postgres); stopped by ``stack``.

    The port stays the same for every server of the run, so the in-process client (configured
    once at import) reaches whichever server is current.
    """
    from orosflow.cli.serve import start_prefect_server, stop_process, wait_for_http

    home = ws.root / f"prefect-{backend}"
    extra: dict[str, str] = {}
    if backend == "postgres":
        from sqlalchemy import text

        engine = _admin_engine()
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{ws.pg_prefect_db}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{ws.pg_prefect_db}"'))
        engine.dispose()

        def drop_db() -> None:
            eng = _admin_engine()
            with eng.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{ws.pg_prefect_db}" WITH (FORCE)'))
            eng.dispose()

        stack.callback(drop_db)
        base = PG_ADMIN_URL.split("://", 1)[1].rsplit("/", 1)[0]
        extra["PREFECT_API_DATABASE_CONNECTION_URL"] = (
            f"postgresql+asyncpg://{base}/{ws.pg_prefect_db}"
        )
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)  # start_prefect_server copies os.environ into the child
    try:
        started = time.perf_counter()
        proc = start_prefect_server(ws.prefect_port, home, ws.root / f"prefect-{backend}.log")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    stack.callback(stop_process, proc)
    try:
        wait_for_http(f"{ws.api_url}/health", 120, proc)
    except Exception:
        log = ws.root / f"prefect-{backend}.log"
        print(log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)")
        raise
    return PrefectServer(proc.pid, time.perf_counter() - started)


class TimedCapture:
    """The project's aiosmtpd :class:`MailCapture` plus the moment each Message-ID's .eml exists.

    The timestamp is taken right after the capture has written the file and before it answers
    250, which is when the mail counts as accepted.
    """

    def __init__(self, directory: Path) -> None:
        from orosflow.core.settings import reset_settings
        from orosflow.core.smtp_capture import MailCapture

        self.capture = MailCapture(directory, port=free_port())
        self.arrivals: dict[str, list[float]] = {}
        store = self.capture.controller.handler
        original: Callable = store.handle_DATA

        async def timed(server, session, envelope):  # type: ignore[no-untyped-def]
            answer = await original(server, session, envelope)
            raw = envelope.original_content or envelope.content
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            self.arrivals.setdefault(str(msg["Message-ID"]), []).append(time.perf_counter())
            return answer

        store.handle_DATA = timed
        self.capture.start()
        os.environ["OROSFLOW_SMTP_HOST"] = "127.0.0.1"
        os.environ["OROSFLOW_SMTP_PORT"] = str(self.capture.port)
        reset_settings()

    def stop(self) -> None:
        self.capture.stop()

    def message_ids_on_disk(self) -> list[str]:
        """Message-IDs of the .eml files actually stored (the duplicate check reads these)."""
        out = []
        for path in self.capture.directory.glob("*.eml"):
            with path.open("rb") as fh:
                msg = email.message_from_binary_file(fh, policy=email.policy.default)
            out.append(str(msg["Message-ID"]))
        return out


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
