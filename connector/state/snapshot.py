"""A throw-away copy of the state store, for a dry run: the pass runs on the copy exactly as it would on the store
(orders stored, identities matched, actions planned into the outbox) and the copy is deleted afterwards, so the
operator's store is never written, not even created.

The copy is a SQLite file in a private temporary folder (mode 0700), whatever the store is:
- a SQLite store is copied with SQLite's online backup (a consistent snapshot while a pass may be writing);
- any other store (PostgreSQL) is read in one repeatable-read, read-only transaction, table by table, into a copy
  migrated to the same schema revision first (so the columns match), then the copy is migrated to the newest schema;
- a store that does not exist yet (a dry run before the first backfill) is an empty copy.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, MetaData, insert, inspect, select, text

from connector.state.db import MIGRATIONS, make_engine, migrate
from connector.state.facade import State
from connector.state.probe import sqlite_file

#: Rows copied per statement from a non-SQLite store.
COPY_CHUNK = 2000
_VERSION_TABLE = "alembic_version"


def _copy_sqlite(source: Path, target: Path) -> None:
    # Opened read-only through a URI, so the copy never creates, locks for writing, or checkpoints the store.
    with (
        closing(sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)) as src,
        closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)


def _revision(engine: Engine) -> str | None:
    if not inspect(engine).has_table(_VERSION_TABLE):
        return None
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT version_num FROM {_VERSION_TABLE}")).scalar_one_or_none()


def _upgrade(engine: Engine, revision: str) -> None:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def _copy_rows(source: Engine, target: Engine) -> None:
    """Every row of every table the copy has (at the source's revision), in one consistent read of the source."""
    tables = MetaData()
    tables.reflect(target)
    with (
        source.connect().execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True) as src,
        target.begin() as dst,
    ):
        for table in tables.sorted_tables:
            if table.name == _VERSION_TABLE:
                continue
            # The copy's table, reflected at the source's revision, names the same columns on the source.
            result = src.execution_options(yield_per=COPY_CHUNK).execute(select(table))
            for rows in result.partitions():
                dst.execute(insert(table), [dict(row._mapping) for row in rows])


@contextmanager
def throwaway_copy(url: str, order_number_key: bytes | None = None, token_key: str | None = None) -> Iterator[State]:
    """A :class:`State` on a temporary copy of the store at ``url``, at the newest schema; deleted on the way out.

    The store itself is only read. Raises ``sqlalchemy.exc.SQLAlchemyError`` (or ``sqlite3.Error``) when it cannot
    be read."""
    folder = Path(tempfile.mkdtemp(prefix="cardbridge-dry-run-"))  # mode 0700: the copy holds buyers' emails
    try:
        copy = folder / "state.db"
        source_file = sqlite_file(url)
        if source_file is not None:
            if source_file.exists():
                _copy_sqlite(source_file, copy)
            engine = make_engine(f"sqlite:///{copy}")
        else:
            engine = make_engine(f"sqlite:///{copy}")
            source = make_engine(url)
            try:
                revision = _revision(source)
                if revision is not None:
                    _upgrade(engine, revision)
                    _copy_rows(source, engine)
            finally:
                source.dispose()
        migrate(engine)
        state = State(engine, order_number_key, token_key)
        state.throwaway = True
        try:
            yield state
        finally:
            state.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
