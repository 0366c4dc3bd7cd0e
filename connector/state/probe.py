"""Looking at a state store without opening it for work: for ``cardbridge check``, which writes nothing.

``State.open`` creates a missing SQLite file and migrates the schema; a probe does neither. It connects read-only
(a SQLite file through a ``mode=ro`` URI, never created) and reads the Alembic revision.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, make_url, text

from connector.state.db import MIGRATIONS

_VERSION_TABLE = "alembic_version"


@dataclass(frozen=True)
class StoreProbe:
    """What a probe found. ``exists``: the database has CardBridge's schema (at some revision); ``revision`` and
    ``newest``: the schema's Alembic revision and the newest this version of CardBridge knows."""

    exists: bool
    revision: str | None
    newest: str

    @property
    def behind(self) -> bool:
        """The next pass will migrate the schema (a newer CardBridge was installed)."""
        return self.exists and self.revision != self.newest


def newest_revision() -> str:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite:///path`` URL (None for other databases, and for ``:memory:``)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return None
    return Path(parsed.database) if parsed.database and parsed.database != ":memory:" else None


def probe(url: str) -> StoreProbe:
    """Connect read-only and read the schema's revision. Raises ``sqlalchemy.exc.SQLAlchemyError`` when the database
    cannot be reached (the caller names the URL, without its password)."""
    newest = newest_revision()
    file = sqlite_file(url)
    if file is not None:
        if not file.exists():
            return StoreProbe(False, None, newest)
        url = f"sqlite:///file:{file.resolve()}?mode=ro&uri=true"
    elif url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    engine = create_engine(url, hide_parameters=True)
    try:
        if not inspect(engine).has_table(_VERSION_TABLE):
            return StoreProbe(False, None, newest)
        with engine.connect() as conn:
            revision = conn.execute(text(f"SELECT version_num FROM {_VERSION_TABLE}")).scalar_one_or_none()
        return StoreProbe(revision is not None, revision, newest)
    finally:
        engine.dispose()
