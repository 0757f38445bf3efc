"""user_account: the counselor's remembered clinic details (issue 12, item 8)

Clinic name, clinic municipality, work phone and title, kept with the account so the concern
form is filled in with them next time. Nullable: other roles and accounts that never sent a
form have none.

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-02 15:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None

COLUMNS = (
    ("clinic_name", 200),
    ("clinic_municipality", 4),
    ("work_phone", 40),
    ("work_title", 200),
)


def upgrade() -> None:
    """Add the columns unless present (an early migration may read through today's ORM)."""
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("user_account")}
    with op.batch_alter_table("user_account") as batch:
        for name, length in COLUMNS:
            if name not in present:
                batch.add_column(sa.Column(name, sa.String(length=length), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("user_account") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
