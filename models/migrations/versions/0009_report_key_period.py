"""report_key.period: which period key wraps the report's data key (issue 15, item 2)

NULL marks a report stored before period keys (wrapped by the master key alone); it stays
readable, and ``orosflow keys rewrap`` moves it into its period (the key file is not reachable
from a migration).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 12:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the column unless it is there (0006 adds it early: it reads through today's ORM)."""
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("report_key")}
    if "period" not in columns:
        with op.batch_alter_table("report_key") as batch:
            batch.add_column(sa.Column("period", sa.String(length=7), nullable=True))


def downgrade() -> None:
    """The column stays: without it a report wrapped by a period key would be read as if
    wrapped by the master key alone, i.e. not at all."""
