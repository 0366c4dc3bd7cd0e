"""product facts (price, stock), product events to announce, product cards (issue 17)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 06:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0016"
# The lead renumbers this to follow 0015 (issue 17's insights) when both branches are merged.
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.add_column(sa.Column("price", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch_op.add_column(sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True))
        batch_op.add_column(sa.Column("in_stock", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("stock_count", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("listed", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table(
        "product_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("old_price", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("new_price", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "product_cards",
        sa.Column("community", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("product_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("topic_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("post_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("content_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("written_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.PrimaryKeyConstraint("community", "product_id"),
    )


def downgrade() -> None:
    op.drop_table("product_cards")
    op.drop_table("product_events")
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_column("listed")
        batch_op.drop_column("stock_count")
        batch_op.drop_column("in_stock")
        batch_op.drop_column("currency")
        batch_op.drop_column("price")
