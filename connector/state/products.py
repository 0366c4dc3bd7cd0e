"""State for the shop's catalogue: product facts, events to announce, and product cards (one transaction a method).

Nothing here holds a card: database shops give a COUNT of unsold cards, never their content.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Engine, delete, func, insert, select, update

from connector.core.clock import utcnow
from connector.core.models import OrderStatus, Product
from connector.state.sql import chunks, orders_t, table_of
from connector.state.tables import ProductCardRow, ProductEventRow, ProductRow, ReviewRow

products_t = table_of(ProductRow)
events_t = table_of(ProductEventRow)
cards_t = table_of(ProductCardRow)
reviews_t = table_of(ReviewRow)

#: Event kinds, in the order an announcement names them.
NEW, RESTOCK, PRICE_DROP = "new", "restock", "price_drop"


@dataclass(frozen=True)
class ProductFacts:
    """What a product card shows, read from the store as it is now."""

    id: str
    name: str
    permalink: str | None
    price: str | None
    currency: str | None
    in_stock: bool | None
    stock_count: int | None
    listed: bool
    #: Approved reviews present in the shop: how many, and their mean rating (None without any).
    reviews: int
    rating: Decimal | None
    #: Distinct customers with a paid order of the product.
    verified_buyers: int


def events_between(old: ProductRow | None, new: Product) -> list[tuple[str, str | None, str | None]]:
    """The events a catalogue read shows for one product: (kind, old price, new price)."""
    if old is None or not old.listed:
        return [(NEW, None, new.price)]
    found: list[tuple[str, str | None, str | None]] = []
    if old.in_stock is False and new.in_stock is True:
        found.append((RESTOCK, old.price, new.price))
    if old.price is not None and new.price is not None and Decimal(new.price) < Decimal(old.price):
        found.append((PRICE_DROP, old.price, new.price))
    return found


class ProductStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ---- the catalogue -------------------------------------------------------------------------------------------

    def any_listed(self) -> bool:
        """Whether a catalogue was read before (the first read is the baseline: nothing in it is news)."""
        with self.engine.connect() as conn:
            return (
                conn.execute(select(products_t.c.id).where(products_t.c.listed.is_(True)).limit(1)).first() is not None
            )

    def save_catalogue(self, products: Sequence[Product], events: bool) -> int:
        """Store one page of the catalogue; with ``events``, note what is news (new, back in stock, cheaper).
        Returns how many products changed."""
        changed = 0
        now = utcnow()
        with self.engine.begin() as conn:
            for product in products:
                old = conn.execute(select(products_t).where(products_t.c.id == product.id)).first()
                row = ProductRow.model_validate(old._mapping) if old is not None else None
                values = {
                    "name": product.name,
                    "permalink": product.permalink,
                    "price": product.price,
                    "currency": product.currency,
                    "in_stock": product.in_stock,
                    "stock_count": product.stock_count,
                    "listed": True,
                }
                if row is None:
                    conn.execute(insert(products_t).values(id=product.id, **values))
                elif any(getattr(row, key) != value for key, value in values.items()):
                    conn.execute(update(products_t).where(products_t.c.id == product.id).values(**values))
                else:
                    continue
                changed += 1
                for kind, old_price, new_price in events_between(row, product) if events else []:
                    conn.execute(
                        insert(events_t).values(
                            product_id=product.id, kind=kind, old_price=old_price, new_price=new_price, created_at=now
                        )
                    )
        return changed

    def mark_unlisted(self, seen: set[str]) -> int:
        """After a whole catalogue read: products it did not list are off sale (their cards stay as they are)."""
        with self.engine.begin() as conn:
            listed = list(conn.execute(select(products_t.c.id).where(products_t.c.listed.is_(True))).scalars())
            gone = [product_id for product_id in listed if product_id not in seen]
            for chunk in chunks(gone):
                conn.execute(update(products_t).where(products_t.c.id.in_(chunk)).values(listed=False))
        return len(gone)

    def listed_ids(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(products_t.c.id).where(products_t.c.listed.is_(True)).order_by(products_t.c.id)
                ).scalars()
            )

    def facts(self, product_id: str) -> ProductFacts | None:
        """The product as a card shows it: facts, rating summary and verified buyers."""
        with self.engine.connect() as conn:
            row = conn.execute(select(products_t).where(products_t.c.id == product_id)).first()
            if row is None:
                return None
            count, mean = conn.execute(
                select(func.count(), func.avg(reviews_t.c.rating)).where(
                    reviews_t.c.product_id == product_id,
                    reviews_t.c.present.is_(True),
                    reviews_t.c.status == "approved",
                )
            ).one()
            buyers = conn.execute(
                select(func.count(func.distinct(orders_t.c.customer_key))).where(
                    orders_t.c.status == OrderStatus.PAID.value,
                    orders_t.c.product_ids.like(f"%,{product_id},%"),
                )
            ).scalar_one()
        return ProductFacts(
            id=row.id,
            name=row.name,
            permalink=row.permalink,
            price=row.price,
            currency=row.currency,
            in_stock=row.in_stock,
            stock_count=row.stock_count,
            listed=row.listed,
            reviews=int(count),
            rating=Decimal(str(mean)).quantize(Decimal("0.1")) if count else None,
            verified_buyers=int(buyers),
        )

    # ---- events --------------------------------------------------------------------------------------------------

    def last_event_id(self) -> int:
        """The newest event's id (0 without any)."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.max(events_t.c.id))).scalar_one() or 0)

    def events_after(self, last: int) -> list[ProductEventRow]:
        """Events with an id above ``last``, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(events_t).where(events_t.c.id > last).order_by(events_t.c.id)).all()
        return [ProductEventRow.model_validate(r._mapping) for r in rows]

    def event(self, event_id: int) -> ProductEventRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(events_t).where(events_t.c.id == event_id)).first()
        return ProductEventRow.model_validate(row._mapping) if row is not None else None

    # ---- cards ---------------------------------------------------------------------------------------------------

    def card(self, community: str, product_id: str) -> ProductCardRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(cards_t).where(cards_t.c.community == community, cards_t.c.product_id == product_id)
            ).first()
        return ProductCardRow.model_validate(row._mapping) if row is not None else None

    def save_card(
        self,
        community: str,
        product_id: str,
        content_hash: str,
        topic_id: str | None,
        post_id: str | None,
        at: datetime | None = None,
    ) -> None:
        """Remember a card written (created or edited) now."""
        values = {
            "content_hash": content_hash,
            "topic_id": topic_id,
            "post_id": post_id,
            "written_at": at or utcnow(),
            "state": "posted",
        }
        with self.engine.begin() as conn:
            done = conn.execute(
                update(cards_t)
                .where(cards_t.c.community == community, cards_t.c.product_id == product_id)
                .values(**values)
            )
            if done.rowcount == 0:
                conn.execute(insert(cards_t).values(community=community, product_id=product_id, **values))

    def set_card(self, community: str, product_id: str, **values: object) -> None:
        """Change a card's row (an admin's conflict resolution)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(cards_t)
                .where(cards_t.c.community == community, cards_t.c.product_id == product_id)
                .values(**values)
            )

    def forget_card(self, community: str, product_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(cards_t).where(cards_t.c.community == community, cards_t.c.product_id == product_id))
