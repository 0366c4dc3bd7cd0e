"""Webhook events: stored before the sender gets its 200, deduplicated, each handled on its own with backoff.

Deduplicated twice: by the sender's delivery id (a retry by the sender), and by content (source, topic and body
hashed) within a window, so a replay under a fresh delivery id does not re-read the order again. A failed try backs
off on that event alone; after the last try the event is parked as ``dead``. Handled and dead events are pruned
after the retention period; an event not yet handled is never pruned.

Several daemons may share the store (replicas behind one load balancer): any of them stores an event, and whichever
is free :meth:`WebhookStore.claim`-s it, in one statement that skips the rows another replica is claiming
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's write lock serialises the claims) and that takes only events
whose earlier claim ran out. A claim lasts while its replica's heartbeat moves it (:meth:`WebhookStore.extend`); the
events of a replica that died are taken by another once it runs out.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Select, and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from connector.core.clock import utcnow
from connector.state.sql import table_of
from connector.state.tables import WebhookEventRow

events_t = table_of(WebhookEventRow)

#: ``result`` of an event tried too many times.
DEAD = "dead"


class WebhookStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def accept(
        self,
        source: str,
        delivery_id: str,
        topic: str,
        resource: str,
        content_hash: str | None = None,
        dedup_window: timedelta | None = None,
    ) -> bool:
        """Store an event; False when it is a duplicate: its delivery id was seen before (a retry by the sender), or
        the same content arrived within ``dedup_window`` (a replay) and was not given up as dead."""
        now = utcnow()
        try:
            with self.engine.begin() as conn:
                if content_hash and dedup_window:
                    seen = conn.execute(
                        select(events_t.c.id)
                        .where(
                            events_t.c.source == source,
                            events_t.c.content_hash == content_hash,
                            events_t.c.received_at >= now - dedup_window,
                            or_(events_t.c.result.is_(None), events_t.c.result != DEAD),
                        )
                        .limit(1)
                    ).first()
                    if seen is not None:
                        return False
                conn.execute(
                    insert(events_t).values(
                        source=source,
                        delivery_id=delivery_id[:128],
                        topic=topic[:64],
                        resource=resource[:320],
                        received_at=now,
                        attempts=0,
                        content_hash=content_hash,
                    )
                )
        except IntegrityError:
            return False
        return True

    def _rows(self, query: Select[Any]) -> list[WebhookEventRow]:
        with self.engine.connect() as conn:
            return [WebhookEventRow.model_validate(dict(r._mapping)) for r in conn.execute(query)]

    def pending(self, limit: int = 500) -> list[WebhookEventRow]:
        """Events not handled yet, due or not."""
        return self._rows(
            select(events_t).where(events_t.c.processed_at.is_(None)).order_by(events_t.c.id).limit(limit)
        )

    def due(self, now: datetime, limit: int = 500) -> list[WebhookEventRow]:
        """Events not handled yet whose next try is due, oldest first."""
        return self._rows(
            select(events_t)
            .where(
                events_t.c.processed_at.is_(None),
                or_(events_t.c.next_attempt_at.is_(None), events_t.c.next_attempt_at <= now),
            )
            .order_by(events_t.c.id)
            .limit(limit)
        )

    def claim(self, owner: str, now: datetime, hold: timedelta, limit: int = 500) -> list[WebhookEventRow]:
        """Take up to ``limit`` due events for ``owner`` (a replica's ``host:pid:start``) until ``now + hold``; returns
        them, oldest first. An event another replica holds (its claim not run out) is left alone; two replicas
        claiming at once get different events (``SKIP LOCKED`` on PostgreSQL, then a conditional UPDATE whose rows
        are read back, so no event is ever claimed twice, on SQLite either)."""
        free = or_(events_t.c.claimed_until.is_(None), events_t.c.claimed_until < now)
        due = and_(
            events_t.c.processed_at.is_(None),
            or_(events_t.c.next_attempt_at.is_(None), events_t.c.next_attempt_at <= now),
            free,
        )
        until = now + hold
        with self.engine.begin() as conn:
            ids = list(
                conn.execute(
                    select(events_t.c.id)
                    .where(due)
                    .order_by(events_t.c.id)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                ).scalars()
            )
            if not ids:
                return []
            conn.execute(
                update(events_t)
                .where(events_t.c.id.in_(ids), events_t.c.processed_at.is_(None), free)
                .values(claimed_by=owner[:300], claimed_until=until)
            )
        return self._rows(
            select(events_t)
            .where(events_t.c.id.in_(ids), events_t.c.claimed_by == owner[:300], events_t.c.claimed_until == until)
            .order_by(events_t.c.id)
        )

    def release(self, ids: list[int], owner: str) -> None:
        """Give back claimed events not worked on (stopping, or the pass lock was not had): due again at once. A
        settled event keeps ``claimed_by``: which replica handled it."""
        if not ids:
            return
        with self.engine.begin() as conn:
            conn.execute(
                update(events_t)
                .where(events_t.c.id.in_(ids), events_t.c.claimed_by == owner[:300], events_t.c.processed_at.is_(None))
                .values(claimed_by=None, claimed_until=None)
            )

    def extend(self, owner: str, until: datetime) -> int:
        """Move the claims ``owner`` holds on events not yet settled to ``until`` (its heartbeat); how many."""
        with self.engine.begin() as conn:
            moved = conn.execute(
                update(events_t)
                .where(events_t.c.claimed_by == owner[:300], events_t.c.processed_at.is_(None))
                .values(claimed_until=until)
            )
        return int(moved.rowcount or 0)

    def done(self, ids: list[int], result: str) -> None:
        if not ids:
            return
        with self.engine.begin() as conn:
            # The resource may be an email: it is not kept once the event is handled.
            conn.execute(
                update(events_t)
                .where(events_t.c.id.in_(ids))
                .values(processed_at=utcnow(), result=result[:255], resource="", claimed_until=None)
            )

    def failed(self, event_id: int, error: str, retry_at: datetime) -> None:
        """A try failed: one more attempt counted, the next one not before ``retry_at``."""
        with self.engine.begin() as conn:
            conn.execute(
                update(events_t)
                .where(events_t.c.id == event_id, events_t.c.processed_at.is_(None))
                .values(
                    attempts=events_t.c.attempts + 1,
                    next_attempt_at=retry_at,
                    last_error=error[:255],
                    claimed_by=None,
                    claimed_until=None,
                )
            )

    def deferred(self, event_id: int, error: str, retry_at: datetime) -> None:
        """Not tried through no fault of its own (the shop could not be read): no attempt counted."""
        with self.engine.begin() as conn:
            conn.execute(
                update(events_t)
                .where(events_t.c.id == event_id, events_t.c.processed_at.is_(None))
                .values(next_attempt_at=retry_at, last_error=error[:255], claimed_by=None, claimed_until=None)
            )

    def dead(self, event_id: int, error: str, keep_resource: bool) -> None:
        """The last try failed: parked as dead, listed until pruned (``keep_resource`` False: it may be an email)."""
        values: dict[str, object] = {
            "attempts": events_t.c.attempts + 1,
            "processed_at": utcnow(),
            "result": DEAD,
            "last_error": error[:255],
            "next_attempt_at": None,
            "claimed_until": None,
        }
        if not keep_resource:
            values["resource"] = ""
        with self.engine.begin() as conn:
            conn.execute(
                update(events_t).where(events_t.c.id == event_id, events_t.c.processed_at.is_(None)).values(**values)
            )

    def dead_events(self, limit: int = 20) -> list[WebhookEventRow]:
        """The events given up on, newest first."""
        return self._rows(select(events_t).where(events_t.c.result == DEAD).order_by(events_t.c.id.desc()).limit(limit))

    def counts(self) -> dict[str, int]:
        """``{"pending": …, "retrying": …, "dead": …}``: not handled yet, of which tried and failed, and given up."""
        with self.engine.connect() as conn:
            pending, retrying = conn.execute(
                select(func.count(), func.count().filter(events_t.c.attempts > 0)).where(
                    events_t.c.processed_at.is_(None)
                )
            ).one()
            dead = conn.execute(select(func.count()).where(events_t.c.result == DEAD)).scalar_one()
        return {"pending": pending, "retrying": retrying, "dead": dead}

    def prune(self, handled_before: datetime) -> int:
        """Delete the events handled (or parked as dead) before ``handled_before``; never one still to handle."""
        with self.engine.begin() as conn:
            result = conn.execute(
                delete(events_t).where(events_t.c.processed_at.is_not(None), events_t.c.processed_at < handled_before)
            )
        return int(result.rowcount or 0)
