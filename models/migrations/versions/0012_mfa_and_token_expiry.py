"""TOTP second factor, recovery codes, pending sign-in sessions, API token expiry (issue 14)

``user_account`` gains the demo mark, the sealed TOTP secret, when the factor was enabled and the
last accepted time step; ``mfa_recovery_code`` holds argon2 hashes of single-use codes;
``web_session.pending`` marks a session whose password passed but whose code step has not;
``api_token.expires_at`` is set for every existing token to 90 days after this migration (a
grace period: no clinic's system stops at once), new tokens get theirs from
``orosflow users token --expires``.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 15:30:00
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

#: Days an API token that existed before this migration stays valid.
GRACE_DAYS = 90


def upgrade() -> None:
    with op.batch_alter_table("user_account") as batch:
        batch.add_column(sa.Column("demo", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(
            sa.Column("totp_secret", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True)
        )
        batch.add_column(sa.Column("mfa_enabled_at", models.types.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("totp_last_step", sa.Integer(), nullable=True))
    op.create_table(
        "mfa_recovery_code",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("prefix", sqlmodel.sql.sqltypes.AutoString(length=2), nullable=False),
        sa.Column("code_hash", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("created_at", models.types.UTCDateTime(), nullable=False),
        sa.Column("used_at", models.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["user_account.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("mfa_recovery_code") as batch:
        batch.create_index(batch.f("ix_mfa_recovery_code_user_id"), ["user_id"], unique=False)
    with op.batch_alter_table("web_session") as batch:
        batch.add_column(
            sa.Column("pending", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True)
        )
    with op.batch_alter_table("api_token") as batch:
        batch.add_column(sa.Column("expires_at", models.types.UTCDateTime(), nullable=True))
    token = sa.table("api_token", sa.column("expires_at", models.types.UTCDateTime()))
    op.execute(
        token.update()
        .where(token.c.expires_at.is_(None))
        .values(expires_at=datetime.now(UTC) + timedelta(days=GRACE_DAYS))
    )


def downgrade() -> None:
    with op.batch_alter_table("api_token") as batch:
        batch.drop_column("expires_at")
    with op.batch_alter_table("web_session") as batch:
        batch.drop_column("pending")
    op.drop_table("mfa_recovery_code")
    with op.batch_alter_table("user_account") as batch:
        batch.drop_column("totp_last_step")
        batch.drop_column("mfa_enabled_at")
        batch.drop_column("totp_secret")
        batch.drop_column("demo")
