"""Shared fixtures: state stores on a real SQLite file and on the machine's PostgreSQL server."""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine, text

from connector.state import State
from connector.state.db import open_engine

PG_ADMIN_URL = os.environ.get("CARDBRIDGE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _postgres_database():
    """Create a throw-away database; in CI a missing server is a failure, elsewhere a visible skip."""
    try:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as error:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI ({PG_ADMIN_URL}): {error}")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {error}")
    name = f"cardbridge_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return admin, name


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        engine = open_engine(f"sqlite:///{tmp_path / 'state.db'}")
        yield State(engine)
        engine.dispose()
        return
    admin, name = _postgres_database()
    engine = open_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name)
    yield State(engine)
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()
