"""What the last passes knew of the remotes' health, kept for ``cardbridge status`` (another process).

The daemon keeps its health facts in memory (``connector.server.health.Health``); after each pass it writes them
here as one JSON document, with the thresholds it judges them by, so ``status`` gives the same verdict as
``/healthz`` without asking the daemon (a CLI pass adds its own: ``connector.server.health.record_pass``). A
document, not columns: the facts are the health module's to shape.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel

from connector.core.clock import utcnow
from connector.state.sql import table_of


class HealthSnapshotRow(SQLModel, table=True):
    """The health facts the passes last recorded (``source``: ``passes``)."""

    __tablename__ = "health_snapshots"
    source: str = Field(primary_key=True, max_length=40)
    #: JSON: remotes failing since when, the last good shop read, failed passes in a row, the thresholds.
    facts: str
    updated_at: datetime


snapshots_t = table_of(HealthSnapshotRow)


@dataclass(frozen=True)
class Snapshot:
    facts: dict[str, Any]
    recorded_at: datetime


class HealthSnapshots:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def save(self, source: str, facts: dict[str, Any]) -> None:
        """Replace ``source``'s document (one small transaction after each pass)."""
        values = {"facts": json.dumps(facts, sort_keys=True), "updated_at": utcnow()}
        where = snapshots_t.c.source == source
        for _ in range(2):
            try:
                with self.engine.begin() as conn:
                    if not conn.execute(update(snapshots_t).where(where).values(**values)).rowcount:
                        conn.execute(insert(snapshots_t).values(source=source, **values))
                return
            except IntegrityError:  # inserted meanwhile by another process of the same kind: update it
                continue

    def load(self, source: str) -> Snapshot | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(snapshots_t).where(snapshots_t.c.source == source)).first()
        if row is None:
            return None
        return Snapshot(json.loads(row.facts), row.updated_at)
