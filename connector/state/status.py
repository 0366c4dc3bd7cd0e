"""Figures for ``cardbridge status``, the status page and metrics (read-only, but for the daemon's health facts)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Engine, and_, exists, func, select, true

from connector.core.models import OrderStatus
from connector.state.health_snapshots import HealthSnapshots
from connector.state.sql import customers_t, identities_t, ledger_t, orders_t, outbox_t, quarantine_t
from connector.state.tables import OutboxRow, QuarantineRow


class Status:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        #: The daemon's health facts after its last pass (written by the daemon, read by ``status``).
        self.health = HealthSnapshots(engine)

    def outbox_counts(self) -> dict[str, int]:
        counts = {"pending": 0, "sending": 0, "failed": 0, "dead": 0, "done": 0, "superseded": 0}
        with self.engine.connect() as conn:
            for status, count in conn.execute(select(outbox_t.c.status, func.count()).group_by(outbox_t.c.status)):
                counts[status] = count
        return counts

    def not_due(self, now: datetime) -> tuple[int, datetime | None]:
        """Pending and failed actions that no pass sends before a later time (a backoff, or a rate limit's deferral),
        and the earliest of those times."""
        waiting = and_(outbox_t.c.status.in_(("pending", "failed")), outbox_t.c.next_attempt_at > now)
        with self.engine.connect() as conn:
            count, earliest = conn.execute(
                select(func.count(), func.min(outbox_t.c.next_attempt_at)).where(waiting)
            ).one()
        return int(count), earliest

    def problem_actions(self, limit: int = 20) -> list[OutboxRow]:
        """Failed and dead actions, newest first, for `status` and the failure summary."""
        with self.engine.connect() as conn:
            return [
                OutboxRow.model_validate(dict(row._mapping))
                for row in conn.execute(
                    select(outbox_t)
                    .where(outbox_t.c.status.in_(("failed", "dead")))
                    .order_by(outbox_t.c.updated_at.desc(), outbox_t.c.id.desc())
                    .limit(limit)
                )
            ]

    def actions(
        self, status: str | None = None, community: str | None = None, limit: int = 50
    ) -> tuple[int, list[OutboxRow]]:
        """``cardbridge outbox list``: how many actions match (a status, a community, or all), and the newest ``limit``
        of them (by id: the order they were planned in)."""
        where = and_(
            outbox_t.c.status == status if status is not None else true(),
            outbox_t.c.community == community if community is not None else true(),
        )
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(outbox_t).where(where)).scalar_one()
            rows = [
                OutboxRow.model_validate(dict(row._mapping))
                for row in conn.execute(select(outbox_t).where(where).order_by(outbox_t.c.id.desc()).limit(limit))
            ]
        return int(total), rows

    def communities(self) -> list[str]:
        """The communities the outbox holds actions for (configured now or not)."""
        with self.engine.connect() as conn:
            return sorted(conn.execute(select(outbox_t.c.community).distinct()).scalars())

    def actions_per_hour(self, now: datetime, hours: int = 24) -> list[int]:
        """Done outbox actions per hour over the last ``hours`` hours, oldest first (for the status page chart)."""
        start = now - timedelta(hours=hours)
        buckets = [0] * hours
        with self.engine.connect() as conn:
            for (stamp,) in conn.execute(
                select(outbox_t.c.updated_at).where(and_(outbox_t.c.status == "done", outbox_t.c.updated_at >= start))
            ):
                index = int((stamp - start).total_seconds() // 3600)
                if 0 <= index < hours:
                    buckets[index] += 1
        return buckets

    def quarantined(self, limit: int = 50) -> tuple[int, list[QuarantineRow]]:
        """How many shop records are quarantined, and the newest ``limit`` of them."""
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(quarantine_t)).scalar_one()
            rows = [
                QuarantineRow.model_validate(dict(row._mapping))
                for row in conn.execute(select(quarantine_t).order_by(quarantine_t.c.seen_at.desc()).limit(limit))
            ]
        return total, rows

    def totals(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {
                "orders": conn.execute(select(func.count()).select_from(orders_t)).scalar_one(),
                "paid_orders": conn.execute(
                    select(func.count()).select_from(orders_t).where(orders_t.c.status == OrderStatus.PAID.value)
                ).scalar_one(),
                "customers": conn.execute(select(func.count()).select_from(customers_t)).scalar_one(),
                "granted": conn.execute(
                    select(func.count()).select_from(ledger_t).where(ledger_t.c.state == "granted")
                ).scalar_one(),
            }

    def buyers_without_email(self) -> int:
        """Customers with a paid order and no email to match them by (an acg-faka member who registered with a user
        name or a phone): no community look-up can find them; only the link page or an admin can link them."""
        paid = exists().where(
            and_(orders_t.c.customer_key == customers_t.c.key, orders_t.c.status == OrderStatus.PAID.value)
        )
        with self.engine.connect() as conn:
            return conn.execute(
                select(func.count()).select_from(customers_t).where(and_(customers_t.c.email.is_(None), paid))
            ).scalar_one()

    def unmatched_with_email(self) -> dict[str, int]:
        """Customers with an email the community was asked about and has no account for, per community (those with
        no email are counted by :meth:`buyers_without_email`, those never asked by :meth:`waiting_for_lookup`)."""
        return self._unmatched_with_email(identities_t.c.attempts > 0)

    def waiting_for_lookup(self) -> dict[str, int]:
        """Customers with an email no look-up has answered for yet, per community: just planned, or every look-up
        failed (the community was down). Not "unmatched": nobody knows yet whether they have an account."""
        # ``attempts`` counts look-ups the community answered (``Identities.record_matches``); a failed one leaves it.
        return self._unmatched_with_email(identities_t.c.attempts == 0)

    def _unmatched_with_email(self, which: ColumnElement[bool]) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(identities_t.c.community, func.count())
                .join(customers_t, customers_t.c.key == identities_t.c.customer_key)
                .where(and_(identities_t.c.status == "unmatched", customers_t.c.email.is_not(None), which))
                .group_by(identities_t.c.community)
            ).all()
        return {row[0]: row[1] for row in rows}
