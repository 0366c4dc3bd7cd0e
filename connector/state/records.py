"""Pulled shop records: orders and customers, upserted a page at a time with the stream's cursor.

Bulk statements (one SELECT per page, one INSERT/UPDATE per batch) keep a 100,000-order backfill close to the cost of
merely downloading it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, insert, or_, select, update

from connector.core.clock import utcnow
from connector.core.models import Customer, Order, OrderStatus, Quarantined
from connector.state.sql import (
    chunks,
    cursors_t,
    customers_t,
    identities_t,
    mark_customers_dirty,
    order_number_hash,
    orders_t,
    quarantine_t,
    save_quarantined,
)


@dataclass(frozen=True)
class PageResult:
    inserted: int
    updated: int
    unchanged: int


def _product_field(order: Order) -> str:
    return "," + ",".join(str(p) for p in sorted(order.product_ids)) + "," if order.lines else ","


def _set_cursor(conn: Connection, stream: str, value: str) -> None:
    now = utcnow()
    done = conn.execute(update(cursors_t).where(cursors_t.c.stream == stream).values(value=value, updated_at=now))
    if done.rowcount == 0:
        conn.execute(insert(cursors_t).values(stream=stream, value=value, updated_at=now))


def _ensure_customers(conn: Connection, emails: dict[str, str | None], dirty: set[str], now: datetime) -> None:
    keys = list(emails)
    known = {
        row.key: row
        for chunk in chunks(keys)
        for row in conn.execute(select(customers_t).where(customers_t.c.key.in_(chunk)))
    }
    new_rows = [
        {"key": key, "email": emails[key], "profile_loaded": False, "dirty": True, "updated_at": now}
        for key in keys
        if key not in known
    ]
    if new_rows:
        conn.execute(insert(customers_t), new_rows)
    for key, row in known.items():
        # A registered customer's account email (profile) wins over an order's billing email.
        if not row.profile_loaded and emails[key] and row.email != emails[key]:
            conn.execute(update(customers_t).where(customers_t.c.key == key).values(email=emails[key], updated_at=now))
            dirty.add(key)
    mark_customers_dirty(conn, [key for key in dirty if key in known])


class Records:
    """Orders, customers and stream cursors, as pulled from the shop."""

    def __init__(self, engine: Engine, order_number_key: bytes | None = None) -> None:
        self.engine = engine
        #: With a key (``[link] secret``), each order's number is kept as a keyed hash for the link page.
        self.order_number_key = order_number_key

    # ---- cursors -------------------------------------------------------------------------------------------------

    def get_cursor(self, stream: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(cursors_t.c.value).where(cursors_t.c.stream == stream)).scalar_one_or_none()

    def set_cursor(self, stream: str, value: str) -> None:
        """Set a stream's cursor alone (a feature's own position, named ``<feature>:<name>``, e.g. the last product
        event announced to a community: ``announce:forum``)."""
        with self.engine.begin() as conn:
            _set_cursor(conn, stream, value)

    def cursors(self) -> dict[str, dict[str, str]]:
        """The shop streams' cursors (what ``/healthz``, ``status`` and the lag gauge show). A feature's own position
        (a name with ``:``) is left out: it moves only when something happens, so its age is no lag."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(cursors_t).where(cursors_t.c.stream.not_like("%:%"))).all()
        return {row.stream: {"value": row.value, "updated_at": row.updated_at.isoformat()} for row in rows}

    # ---- orders --------------------------------------------------------------------------------------------------

    def save_orders_page(
        self,
        stream: str,
        orders: Sequence[Order],
        quarantined: Sequence[Quarantined],
        cursor: str | None,
    ) -> PageResult:
        """Upsert one page of orders, their customers, the quarantined records and the cursor, atomically.

        A customer is marked dirty (to be re-planned) only when something the planner reads changed, so re-reading a
        page (lookback, crash recovery, a webhook) costs no planning and no remote writes.
        """
        now = utcnow()
        inserted = updated = unchanged = 0
        with self.engine.begin() as conn:
            ids = [o.id for o in orders]
            existing = {
                row.id: row
                for chunk in chunks(ids)
                for row in conn.execute(select(orders_t).where(orders_t.c.id.in_(chunk)))
            }
            new_rows: list[dict[str, Any]] = []
            dirty: set[str] = set()
            for order in orders:
                values = {
                    "id": order.id,
                    "customer_key": order.customer_key,
                    "status": order.status.value,
                    "total": order.total,
                    "currency": order.currency,
                    "product_ids": _product_field(order),
                    "created_at": order.created_at,
                    "modified_at": order.modified_at,
                    "number_hash": order_number_hash(self.order_number_key, order.number or order.id)
                    if self.order_number_key
                    else None,
                }
                old = existing.get(order.id)
                if old is None:
                    new_rows.append(values)
                    inserted += 1
                    dirty.add(order.customer_key)
                    continue
                if all(getattr(old, k) == v for k, v in values.items() if k != "modified_at") and (
                    old.modified_at == order.modified_at
                ):
                    unchanged += 1
                    continue
                conn.execute(update(orders_t).where(orders_t.c.id == order.id).values(**values))
                updated += 1
                if (old.status, old.product_ids, old.customer_key) != (
                    values["status"],
                    values["product_ids"],
                    values["customer_key"],
                ):
                    dirty.update({order.customer_key, old.customer_key})
            if new_rows:
                conn.execute(insert(orders_t), new_rows)
            _ensure_customers(conn, {o.customer_key: o.email for o in orders}, dirty, now)
            save_quarantined(conn, quarantined, now)
            # A record that now reads cleanly leaves quarantine, under the pull's stream name or the adapter's own
            # (``woocommerce.orders``).
            same_stream = or_(quarantine_t.c.stream == stream, quarantine_t.c.stream.like(f"%.{stream}"))
            for chunk in chunks([o.id for o in orders]):
                conn.execute(delete(quarantine_t).where(and_(same_stream, quarantine_t.c.record_id.in_(chunk))))
            if cursor is not None:
                _set_cursor(conn, stream, cursor)
        return PageResult(inserted, updated, unchanged)

    def paid_order_ids(self, after: str | None = None, limit: int = 500) -> list[str]:
        """Ids of stored paid orders after ``after``, in id order, ``limit`` at a time (a keyset walk: memory stays
        bounded however many orders the store holds)."""
        query = select(orders_t.c.id).where(orders_t.c.status == OrderStatus.PAID.value)
        if after is not None:
            query = query.where(orders_t.c.id > after)
        with self.engine.connect() as conn:
            return list(conn.execute(query.order_by(orders_t.c.id).limit(limit)).scalars())

    def mark_orders_deleted(self, ids: Sequence[str]) -> int:
        """The shop no longer has these orders: store them as ``deleted`` (not paid, so what they alone supported is
        revoked on the next plan) and have their customers planned again. Returns how many changed."""
        changed = 0
        with self.engine.begin() as conn:
            for chunk in chunks(list(ids)):
                live = and_(orders_t.c.id.in_(chunk), orders_t.c.status != OrderStatus.DELETED.value)
                keys = list(conn.execute(select(orders_t.c.customer_key).where(live)).scalars())
                changed += conn.execute(update(orders_t).where(live).values(status=OrderStatus.DELETED.value)).rowcount
                mark_customers_dirty(conn, set(keys))
        return changed

    # ---- customers -----------------------------------------------------------------------------------------------

    def save_customer_profiles(
        self, customers: Sequence[Customer], stream: str | None = None, cursor: str | None = None
    ) -> int:
        """Store customers' account emails. A changed email forgets the old community match. Returns #changed."""
        now = utcnow()
        changed = 0
        with self.engine.begin() as conn:
            keys = [c.key for c in customers]
            known = {
                row.key: row
                for chunk in chunks(keys)
                for row in conn.execute(select(customers_t).where(customers_t.c.key.in_(chunk)))
            }
            for customer in customers:
                row = known.get(customer.key)
                if row is None:
                    conn.execute(
                        insert(customers_t).values(
                            key=customer.key, email=customer.email, profile_loaded=True, dirty=True, updated_at=now
                        )
                    )
                    changed += 1
                    continue
                if row.email == customer.email and row.profile_loaded:
                    continue
                conn.execute(
                    update(customers_t)
                    .where(customers_t.c.key == customer.key)
                    .values(email=customer.email, profile_loaded=True, dirty=True, updated_at=now)
                )
                if row.email != customer.email:
                    changed += 1
                    conn.execute(
                        delete(identities_t).where(
                            and_(identities_t.c.customer_key == customer.key, identities_t.c.status == "unmatched")
                        )
                    )
            if stream is not None and cursor is not None:
                _set_cursor(conn, stream, cursor)
        return changed

    def customers_without_profile(self, limit: int = 100) -> list[str]:
        """Registered customers known only from an order's billing email."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(customers_t.c.key)
                .where(and_(customers_t.c.profile_loaded.is_(False), customers_t.c.key.like("c:%")))
                .order_by(customers_t.c.key)
                .limit(limit)
            ).scalars()
            return list(rows)

    def mark_profiles_missing(self, keys: Sequence[str]) -> None:
        """The shop no longer knows these customers (deleted accounts): keep the billing email, stop asking."""
        with self.engine.begin() as conn:
            for chunk in chunks(list(keys)):
                conn.execute(update(customers_t).where(customers_t.c.key.in_(chunk)).values(profile_loaded=True))
