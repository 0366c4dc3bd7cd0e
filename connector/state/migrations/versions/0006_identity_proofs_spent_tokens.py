"""identity proofs (how each link was proven); spent single-use tokens (signed links, OAuth2 state nonces)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('identities', schema=None) as batch_op:
        batch_op.add_column(sa.Column('proof', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
    op.create_table('spent_tokens',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=96), nullable=False),
    sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    with op.batch_alter_table('spent_tokens', schema=None) as batch_op:
        batch_op.create_index('ix_spent_tokens_expires', ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('spent_tokens', schema=None) as batch_op:
        batch_op.drop_index('ix_spent_tokens_expires')
    op.drop_table('spent_tokens')
    with op.batch_alter_table('identities', schema=None) as batch_op:
        batch_op.drop_column('proof')
