"""Database engine and sessions. SQLite under ``var/`` by default, PostgreSQL by URL.

On SQLite every transaction starts with ``BEGIN IMMEDIATE`` so writers queue instead of failing
half-way, which the hash-chained audit log and the reference counter rely on. A
``read_scope()`` begins a plain (deferred) transaction instead: it reads a snapshot (WAL) and
neither waits for the one write lock nor holds it, so a counselor's receipt does not wait
behind a flow run's lookup.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine

from orosflow.core.settings import get_settings
from orosflow.core.write_turn import SQLITE_BUSY_SECONDS, announce, write_turn

_PG_MIGRATE_LOCK = 7_201_612
#: Set by ``read_scope`` for the transaction it begins (SQLite: BEGIN, not BEGIN IMMEDIATE).
_READ_ONLY: ContextVar[bool] = ContextVar("orosflow_read_only", default=False)
MIGRATIONS = Path(__file__).resolve().parents[2] / "models" / "migrations"


def normalise_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever driver the URL names."""
    u = make_url(url)
    if u.get_backend_name() == "postgresql" and u.drivername != "postgresql+psycopg":
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def _ensure_sqlite_dir(url: str) -> None:
    """A fresh machine has no ``var/`` yet: create the SQLite file's folder."""
    if url.startswith("sqlite"):
        path = make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)


def build_engine(url: str) -> Engine:
    url = normalise_url(url)
    _ensure_sqlite_dir(url)
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_SECONDS, "check_same_thread": False}
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_SECONDS * 1000)}")
            # Deleted rows (an erased report's wrapped key and ciphertext) are overwritten with
            # zeros, not left in free pages; set here, not left to how SQLite was compiled.
            cur.execute("PRAGMA secure_delete=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn) -> None:  # type: ignore[no-untyped-def]
            conn.exec_driver_sql("BEGIN" if _READ_ONLY.get() else "BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def checkpoint_sqlite() -> None:
    """After an erasure on SQLite: copy the WAL into the database file and truncate the WAL,
    so the pages that held the erased rows (old frames) do not stay in the ``-wal`` file.
    Best effort: a long reader makes SQLite skip the truncation, the next erase retries."""
    engine = get_engine()
    if engine.dialect.name != "sqlite":
        return
    raw = engine.raw_connection()
    try:
        raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        raw.close()


@lru_cache
def get_engine() -> Engine:
    return build_engine(get_settings().resolved_database_url)


def reset_engine() -> None:
    if get_engine.cache_info().currsize:
        get_engine().dispose()
    get_engine.cache_clear()


def _sqlite_file(engine: Engine) -> Path | None:
    """The database file of a SQLite engine (None: PostgreSQL, or SQLite in memory)."""
    if engine.dialect.name != "sqlite":
        return None
    return _resolved(engine.url.database or "")


@lru_cache(maxsize=16)
def _resolved(path: str) -> Path | None:
    return Path(path).resolve() if path and path != ":memory:" else None


@contextmanager
def session_scope() -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error. On SQLite it waits for its
    write turn first (``orosflow.core.write_turn``: prompt, and people before background)."""
    engine = get_engine()
    database = _sqlite_file(engine)
    if database and not engine.pool.checkedin():  # type: ignore[attr-defined]
        # A process's first connection (opened, PRAGMAs set: 0.5-6 ms) is made before the
        # turn, not while holding it.
        engine.raw_connection().close()
    with write_turn(database) if database else nullcontext():
        with Session(engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise


@contextmanager
def write_coming() -> Iterator[None]:
    """Around a person's request that will write (a submission): on SQLite, background
    writers wait from now on, not only once its transaction asks for the turn
    (``orosflow.core.write_turn.announce``)."""
    with announce(_sqlite_file(get_engine())):
        yield


@contextmanager
def read_scope() -> Iterator[Session]:
    """A transaction for reads only: on SQLite it neither waits for nor holds the write lock.
    Do not write in it (the write would take the lock half-way, which BEGIN IMMEDIATE avoids)."""
    with Session(get_engine(), expire_on_commit=False) as session:
        token = _READ_ONLY.set(True)
        try:
            session.connection()  # BEGIN now, while the flag is set
        finally:
            _READ_ONLY.reset(token)
        yield session
        session.commit()  # ends the snapshot; nothing to write, loaded objects stay usable


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option(
        "sqlalchemy.url",
        normalise_url(url or get_settings().resolved_database_url).replace("%", "%%"),
    )
    return cfg


def migrate(url: str | None = None) -> None:
    """Bring the schema to the newest migration (run at every start; a no-op when current).

    Processes starting together (ten CLI submissions on a fresh machine, several workers) must
    not race: on SQLite a file lock beside the database, on PostgreSQL an advisory lock, make
    one of them migrate while the others wait and then find nothing to do.
    """
    url = normalise_url(url or get_settings().resolved_database_url)
    cfg = alembic_config(url)
    engine = build_engine(url)
    try:
        if url.startswith("sqlite"):
            lock_path = Path(make_url(url).database or "orosflow.db").with_suffix(".migrate.lock")
            with lock_path.open("w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                with engine.connect() as conn:
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, "head")
        else:
            with engine.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(:k)").bindparams(k=_PG_MIGRATE_LOCK))
                conn.commit()
                try:
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, "head")
                    conn.commit()
                finally:
                    conn.execute(
                        text("SELECT pg_advisory_unlock(:k)").bindparams(k=_PG_MIGRATE_LOCK)
                    )
                    conn.commit()
    finally:
        engine.dispose()
