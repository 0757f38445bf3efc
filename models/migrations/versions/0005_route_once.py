"""route once: the stored routing decision and each handover's opens_at

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 11:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.types import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.add_column(sa.Column("decision_json", sa.Text(), nullable=True))
    with op.batch_alter_table("handover", schema=None) as batch_op:
        batch_op.add_column(sa.Column("opens_at", UTCDateTime(), nullable=True))
    # Handovers created before their notification went into the outbox with them: queue it
    # now (id = handover id, as for every notification), so the delivery run sends it.
    op.execute(
        "INSERT INTO lifecycle_mail (id, kind, report_id, handover_id, created_at, attempts) "
        "SELECT h.id, 'notification', h.report_id, h.id, h.created_at, 0 FROM handover h "
        "WHERE h.status = 'created' AND h.email IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM lifecycle_mail m WHERE m.id = h.id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("handover", schema=None) as batch_op:
        batch_op.drop_column("opens_at")
    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.drop_column("decision_json")
