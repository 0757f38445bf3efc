"""reporter digest backfill: fill report.reporter_digest for rows stored without it

Until now "my reports" filled it on every call by decrypting every report that lacked it. That
is done once here instead. Each decryption is an audited read (``content.read``, purpose
"reporter-index") in this migration's transaction; a report whose content has been erased gets
"-" (it can never match an address). When no row lacks the digest (a fresh database, or one
already filled) the keyring is not touched.

The reading goes through the application's own functions (``read_report`` loads the ORM
models of today's code): they must still match the schema as of this revision.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel import Session

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

ACTOR = "system:migration-0006"
PURPOSE = "reporter-index"
ERASED = "-"
BATCH = 200

_report = sa.table(
    "report",
    sa.column("id", sa.String),
    sa.column("submitted_at", sa.DateTime),
    sa.column("reporter_digest", sa.String),
)


def upgrade() -> None:
    bind = op.get_bind()
    ids = list(
        bind.execute(
            sa.select(_report.c.id)
            .where(_report.c.reporter_digest.is_(None))
            .order_by(_report.c.submitted_at, _report.c.id)
        ).scalars()
    )
    if not ids:
        return

    # Today's ReportKey model has ``period`` (added by the report-key-period migration, which
    # skips it when present): add it now so the ORM read below matches the table. Reports
    # stored before it are NULL there, which means wrapped by the master key alone.
    if "period" not in {c["name"] for c in sa.inspect(bind).get_columns("report_key")}:
        with op.batch_alter_table("report_key") as batch:
            batch.add_column(sa.Column("period", sa.String(length=7), nullable=True))

    from orosflow.core.crypto import load_keyring
    from orosflow.handover.content import ReportErased, read_report
    from orosflow.handover.lifecycle import reporter_digest

    keyring = load_keyring()
    session = Session(bind=bind)
    try:
        for i, report_id in enumerate(ids, start=1):
            try:
                content = read_report(
                    session, report_id, keyring=keyring, actor=ACTOR, purpose=PURPOSE
                )
                digest = reporter_digest(content.form.reporter.email)
            except ReportErased:
                digest = ERASED
            session.execute(
                sa.update(_report).where(_report.c.id == report_id).values(reporter_digest=digest)
            )
            if i % BATCH == 0:
                session.flush()
                session.expunge_all()  # keep memory flat on large databases
        # Commits only if this session began the transaction itself; inside alembic's own
        # transaction it just flushes and alembic commits with the version bump.
        session.commit()
    finally:
        session.close()


def downgrade() -> None:
    """Nothing to undo: the digests are data that 0005 already had a column for."""
