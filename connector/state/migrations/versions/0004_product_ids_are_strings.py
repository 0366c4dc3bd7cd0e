"""product ids are strings

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 08:28:09.754377
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.alter_column('id',
               existing_type=sa.INTEGER(),
               type_=sqlmodel.sql.sqltypes.AutoString(length=64),
               existing_nullable=False,
               postgresql_using="id::varchar")

    with op.batch_alter_table('reviews', schema=None) as batch_op:
        batch_op.alter_column('product_id',
               existing_type=sa.INTEGER(),
               type_=sqlmodel.sql.sqltypes.AutoString(length=64),
               existing_nullable=False,
               postgresql_using="product_id::varchar")

    with op.batch_alter_table('topics', schema=None) as batch_op:
        batch_op.alter_column('product_id',
               existing_type=sa.INTEGER(),
               type_=sqlmodel.sql.sqltypes.AutoString(length=64),
               existing_nullable=False,
               postgresql_using="product_id::varchar")



def downgrade() -> None:
    with op.batch_alter_table('topics', schema=None) as batch_op:
        batch_op.alter_column('product_id',
               existing_type=sqlmodel.sql.sqltypes.AutoString(length=64),
               type_=sa.INTEGER(),
               existing_nullable=False,
               postgresql_using="product_id::integer")

    with op.batch_alter_table('reviews', schema=None) as batch_op:
        batch_op.alter_column('product_id',
               existing_type=sqlmodel.sql.sqltypes.AutoString(length=64),
               type_=sa.INTEGER(),
               existing_nullable=False,
               postgresql_using="product_id::integer")

    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.alter_column('id',
               existing_type=sqlmodel.sql.sqltypes.AutoString(length=64),
               type_=sa.INTEGER(),
               existing_nullable=False,
               postgresql_using="id::integer")

