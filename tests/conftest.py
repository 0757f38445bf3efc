"""Shared fixtures: isolated var dir, the app database on SQLite and PostgreSQL, a real SMTP
server on loopback (aiosmtpd) and a real Prefect server started for the session.

Tests that need PostgreSQL skip when it is unreachable, except under ``CI=true`` where they
fail: CI must prove the PostgreSQL path.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import free_port

# Environment for the whole session, set before Prefect or our settings are imported.
_TMP = Path(tempfile.mkdtemp(prefix="orosflow-tests-"))
PREFECT_PORT = free_port()
os.environ.update(
    OROSFLOW_VAR_DIR=str(_TMP / "var"),
    PREFECT_HOME=str(_TMP / "prefect"),
    PREFECT_API_URL=f"http://127.0.0.1:{PREFECT_PORT}/api",
    PREFECT_SERVER_ANALYTICS_ENABLED="false",
    PREFECT_SERVER_EPHEMERAL_ENABLED="false",
    PREFECT_LOGGING_TO_API_BATCH_INTERVAL="0.3",
    # Actions start delivery runs only in tests that ask for them (``flow_runs`` fixture).
    OROSFLOW_FLOW_RUNS="false",
    # Fixtures sign in with a password alone; tests/portal/test_mfa.py turns the factor on.
    OROSFLOW_REQUIRE_MFA="false",
)
for key in ("OROSFLOW_DATABASE_URL", "OROSFLOW_SECRET_KEY", "OROSFLOW_CHANNELS_FILE"):
    os.environ.pop(key, None)

from sqlalchemy import create_engine, text  # noqa: E402
from sqlmodel import SQLModel  # noqa: E402

import models.tables  # noqa: E402,F401
from orosflow.core import db as dbmod  # noqa: E402
from orosflow.core.settings import reset_settings  # noqa: E402
from orosflow.core.smtp_capture import MailCapture  # noqa: E402

PG_URL = os.environ.get("OROSFLOW_TEST_PG_URL", "postgresql+psycopg://root@127.0.0.1:5432/test")
PG_SCHEMA = f"orosflow_test_{os.getpid()}"  # one per run: parallel runs never collide
IN_CI = os.environ.get("CI", "").lower() == "true"

_migrated: set[str] = set()


def _pg_url_with_schema() -> str:
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{PG_SCHEMA}"


def _pg_available() -> str | None:
    try:
        engine = create_engine(dbmod.normalise_url(PG_URL), connect_args={"connect_timeout": 3})
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {PG_SCHEMA}"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001
        return f"PostgreSQL not reachable at {PG_URL}: {type(exc).__name__}: {exc}"[:300]


def _clear_tables() -> None:
    """Empty every table, and the audit anchors that belong to the emptied chain."""
    with dbmod.get_engine().begin() as conn:
        for table in reversed(SQLModel.metadata.sorted_tables):
            conn.execute(table.delete())
    from orosflow.core.anchors import anchor_dir

    shutil.rmtree(anchor_dir(), ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def _drop_pg_schema() -> Iterator[None]:
    yield
    if "postgres" in _migrated:
        dbmod.reset_engine()
        engine = create_engine(dbmod.normalise_url(PG_URL))
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An empty, migrated app database; each test using it runs on SQLite and PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{_TMP / 'app.db'}"
    else:
        if "postgres" not in _migrated:
            reason = _pg_available()
            if reason:
                if IN_CI:
                    pytest.fail(f"CI=true requires PostgreSQL: {reason}")
                pytest.skip(reason)
        url = _pg_url_with_schema()
    monkeypatch.setenv("OROSFLOW_DATABASE_URL", url)
    reset_settings()
    dbmod.reset_engine()
    if request.param not in _migrated:
        dbmod.migrate()
        _migrated.add(request.param)
    _clear_tables()
    yield request.param
    dbmod.reset_engine()
    reset_settings()


@pytest.fixture
def sqlite_db(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """SQLite only: for tests whose subject is not the database."""
    url = f"sqlite:///{_TMP / 'app-sqlite-only.db'}"
    monkeypatch.setenv("OROSFLOW_DATABASE_URL", url)
    reset_settings()
    dbmod.reset_engine()
    if "sqlite-only" not in _migrated:
        dbmod.migrate()
        _migrated.add("sqlite-only")
    _clear_tables()
    yield "sqlite"
    dbmod.reset_engine()
    reset_settings()


@pytest.fixture
def smtp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MailCapture]:
    """A real SMTP server (aiosmtpd) on loopback; settings point the sender at it."""
    capture = MailCapture(tmp_path / "mail", port=free_port()).start()
    monkeypatch.setenv("OROSFLOW_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("OROSFLOW_SMTP_PORT", str(capture.port))
    reset_settings()
    yield capture
    capture.stop()
    reset_settings()


@pytest.fixture
def flow_runs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Actions start the report's delivery run on the Prefect server, as in production."""
    monkeypatch.setenv("OROSFLOW_FLOW_RUNS", "true")
    reset_settings()
    yield
    reset_settings()


@pytest.fixture
def office_hours() -> Iterator[None]:
    """Pin the clock to Monday 23 November 2026, 10:00 in Stockholm (office hours)."""
    from datetime import UTC, datetime

    from orosflow.core.clock import set_clock

    set_clock(lambda: datetime(2026, 11, 23, 9, 0, tzinfo=UTC))
    yield
    set_clock(None)


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[Path]:
    """A real Prefect server (``prefect server start``) for the session; yields its SQLite file."""
    from orosflow.cli.serve import start_prefect_server, stop_process, wait_for_http

    home = Path(os.environ["PREFECT_HOME"])
    proc = start_prefect_server(PREFECT_PORT, home, _TMP / "prefect-server.log")
    try:
        wait_for_http(f"http://127.0.0.1:{PREFECT_PORT}/api/health", 120, proc)
    except Exception:
        stop_process(proc)
        sys.stderr.write((_TMP / "prefect-server.log").read_text()[-3000:])
        raise
    yield home / "prefect.db"
    stop_process(proc)


#: Modules that assert a wall-clock limit (decline → mail within 20 s, worker kill → mailed
#: within 120 s). `make test` runs everything else on parallel workers first, then these alone,
#: so a neighbour's load cannot make them fail.
SERIAL_MODULES = {"test_decline_at_once.py", "test_worker_recovery.py"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in SERIAL_MODULES:
            item.add_marker(pytest.mark.serial)
