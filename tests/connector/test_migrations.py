"""The Alembic migrations build exactly the tables the code declares (on SQLite and PostgreSQL)."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from connector.state import tables  # noqa: F401


def test_migrated_schema_matches_the_models(store):
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == []


def test_migrating_twice_is_a_no_op(store):
    from connector.state.db import migrate

    migrate(store.engine)
    migrate(store.engine)
