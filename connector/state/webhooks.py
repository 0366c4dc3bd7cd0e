"""Webhook events: stored before the sender gets its 200, deduplicated by delivery id, processed once."""

from __future__ import annotations

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from connector.core.clock import utcnow
from connector.state.sql import table_of
from connector.state.tables import WebhookEventRow

events_t = table_of(WebhookEventRow)


class WebhookStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def accept(self, source: str, delivery_id: str, topic: str, resource: str) -> bool:
        """Store an event; False when this delivery id was seen before (a replay or a retry by the sender)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(events_t).values(
                        source=source,
                        delivery_id=delivery_id[:128],
                        topic=topic[:64],
                        resource=resource[:320],
                        received_at=utcnow(),
                    )
                )
        except IntegrityError:
            return False
        return True

    def pending(self, limit: int = 500) -> list[WebhookEventRow]:
        with self.engine.connect() as conn:
            return [
                WebhookEventRow.model_validate(dict(r._mapping))
                for r in conn.execute(
                    select(events_t).where(events_t.c.processed_at.is_(None)).order_by(events_t.c.id).limit(limit)
                )
            ]

    def done(self, ids: list[int], result: str) -> None:
        with self.engine.begin() as conn:
            # The resource may be an email: it is not kept once the event is handled.
            conn.execute(
                update(events_t)
                .where(events_t.c.id.in_(ids))
                .values(processed_at=utcnow(), result=result[:255], resource="")
            )
