"""idempotency keys and the recent-report guard against duplicate reports (issue 11, finding 5)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.types import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotency_key",
        sa.Column("key_digest", sa.String(length=64), primary_key=True),
        sa.Column("body_digest", sa.String(length=64), nullable=False),
        sa.Column("sibling_group_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_idempotency_key_expires_at", "idempotency_key", ["expires_at"])
    op.create_table(
        "recent_child_report",
        sa.Column("pair_digest", sa.String(length=64), primary_key=True),
        sa.Column("reference", sa.String(length=20), nullable=True),
        sa.Column("submitted_at", UTCDateTime(), nullable=True),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_recent_child_report_expires_at", "recent_child_report", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_recent_child_report_expires_at", table_name="recent_child_report")
    op.drop_table("recent_child_report")
    op.drop_index("ix_idempotency_key_expires_at", table_name="idempotency_key")
    op.drop_table("idempotency_key")
