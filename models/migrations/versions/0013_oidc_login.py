"""oidc_login: sign-ins through the organisation's OpenID Provider in flight (issue 14)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 15:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oidc_login",
        sa.Column("id_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("state_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("nonce_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("code_verifier", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("next_path", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("created_at", models.types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", models.types.UTCDateTime(), nullable=False),
        sa.Column("consumed_at", models.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id_hash"),
    )
    with op.batch_alter_table("oidc_login", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oidc_login_nonce_hash"), ["nonce_hash"], unique=True)
        batch_op.create_index(batch_op.f("ix_oidc_login_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_table("oidc_login")
