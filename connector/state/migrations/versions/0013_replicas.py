"""replicas: daemons sharing one state store; webhook event claims; each lock holder's own lease (issue 18)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 05:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "replicas",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("host", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("listen", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("version", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("heartbeat_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("lease_seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("webhook_events") as batch:
        batch.add_column(sa.Column("claimed_by", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True))
        batch.add_column(sa.Column("claimed_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    with op.batch_alter_table("pass_locks") as batch:
        batch.add_column(sa.Column("lease_seconds", sa.Float(), nullable=False, server_default="60"))
        batch.add_column(
            sa.Column("process", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("pass_locks") as batch:
        batch.drop_column("process")
        batch.drop_column("lease_seconds")
    with op.batch_alter_table("webhook_events") as batch:
        batch.drop_column("claimed_until")
        batch.drop_column("claimed_by")
    op.drop_table("replicas")
