"""insight_terms, insight_mentions, insight_cursors: keyword heat's counts per week and its posts cursor (issue 17)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "insight_terms",
        sa.Column("community", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("term", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column("week", sa.Date(), nullable=False),
        sa.Column("posts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("community", "term", "week"),
    )
    op.create_table(
        "insight_mentions",
        sa.Column("community", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("product_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("week", sa.Date(), nullable=False),
        sa.Column("posts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("community", "product_id", "week"),
    )
    op.create_table(
        "insight_cursors",
        sa.Column("community", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("value", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("posts_read", sa.Integer(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("community"),
    )


def downgrade() -> None:
    op.drop_table("insight_cursors")
    op.drop_table("insight_mentions")
    op.drop_table("insight_terms")
