"""Ids of objects the connector created or found on a community (a badge's id, a group's id, a review thread's id)."""

from __future__ import annotations

from sqlalchemy import Engine, and_, delete, insert, select

from connector.state.sql import remote_t


class RemoteIds:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def remote_id(self, community: str, kind: str, name: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(remote_t.c.remote_id).where(
                    and_(remote_t.c.community == community, remote_t.c.kind == kind, remote_t.c.name == name)
                )
            ).scalar_one_or_none()

    def set_remote_id(self, community: str, kind: str, name: str, remote_id: str | None) -> None:
        """Remember (or with ``None``, forget) an object's id."""
        with self.engine.begin() as conn:
            conn.execute(
                delete(remote_t).where(
                    and_(remote_t.c.community == community, remote_t.c.kind == kind, remote_t.c.name == name)
                )
            )
            if remote_id is not None:
                conn.execute(insert(remote_t).values(community=community, kind=kind, name=name, remote_id=remote_id))
