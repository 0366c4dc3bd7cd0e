"""link_attempts: the link page's failed proofs, shared by replicas and kept across restarts (issue 18)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 03:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "link_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("failed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_link_attempts_key_failed_at", "link_attempts", ["key", "failed_at"])


def downgrade() -> None:
    op.drop_table("link_attempts")
