"""redemptions: members' requests and redemptions of points for shop coupons (issue 16)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 02:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    op.create_table(
        "redemptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", text(length=128), nullable=False),
        sa.Column("community", text(length=40), nullable=False),
        sa.Column("member_id", text(length=64), nullable=False),
        sa.Column("customer_key", text(length=320), nullable=True),
        sa.Column("command", text(length=16), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("amount", text(length=32), nullable=True),
        sa.Column("coupon_type", text(length=16), nullable=True),
        sa.Column("status", text(length=16), nullable=False),
        sa.Column("reason", text(length=32), nullable=True),
        sa.Column("language", text(length=4), nullable=False),
        sa.Column("coupon_ref", text(length=64), nullable=True),
        sa.Column("conversation", text(length=64), nullable=True),
        sa.Column("token", text(length=512), nullable=True),
        sa.Column("reply", text(length=16), nullable=False),
        sa.Column("reply_ref", text(length=64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", text(length=255), nullable=True),
        sa.Column("next_attempt_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index("ix_redemptions_status", "redemptions", ["status"])
    op.create_index("ix_redemptions_reply", "redemptions", ["reply"])
    op.create_index("ix_redemptions_customer", "redemptions", ["customer_key"])


def downgrade() -> None:
    op.drop_table("redemptions")
