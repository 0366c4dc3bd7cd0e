"""Keyword heat's counts and cursor, and the joins the insights report makes with the shop's records.

Only counts are kept: per (community, term, week) the posts that used the term, per (community, product, week) the
posts that named the product, and how far each community's posts were read. No member text, no author: a term is a
word of at most ``mappings.heat.TERM_MAX`` characters that the tokenizer already cleared of addresses, links and long
numbers (checked again here, since this is where it would be stored).

The counts and the cursor are written in one transaction, guarded by the cursor the batch was read from (compare and
set): a second process that read the same posts finds the cursor moved and its batch is dropped, so no post is
counted twice however many replicas run the job.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

from sqlalchemy import Connection, Engine, Table, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel

from connector.core.clock import utcnow
from connector.core.models import OrderStatus
from connector.state.sql import identities_t, orders_t, table_of
from connector.state.tables import ProductRow
from mappings.heat import TERM_MAX, keepable


class InsightTermRow(SQLModel, table=True):
    """Posts in a week that used a term."""

    __tablename__ = "insight_terms"
    community: str = Field(primary_key=True, max_length=40)
    term: str = Field(primary_key=True, max_length=TERM_MAX)
    week: date = Field(primary_key=True)
    posts: int = 0


class InsightMentionRow(SQLModel, table=True):
    """Posts in a week that named a shop product."""

    __tablename__ = "insight_mentions"
    community: str = Field(primary_key=True, max_length=40)
    product_id: str = Field(primary_key=True, max_length=64)
    week: date = Field(primary_key=True)
    posts: int = 0


class InsightCursorRow(SQLModel, table=True):
    """How far a community's posts were read for keyword heat (the adapter's opaque cursor)."""

    __tablename__ = "insight_cursors"
    community: str = Field(primary_key=True, max_length=40)
    value: str = Field(max_length=255)
    posts_read: int = 0
    updated_at: datetime


terms_t = table_of(InsightTermRow)
mentions_t = table_of(InsightMentionRow)
insight_cursors_t = table_of(InsightCursorRow)
products_t = table_of(ProductRow)


class CursorMoved(Exception):
    """Another process recorded a batch from the same cursor first; this batch was not counted."""


def _add(conn: Connection, t: Table, key_column: str, community: str, counts: Mapping[tuple[str, date], int]) -> None:
    """Add ``counts`` to the rows of ``t`` (update, else insert; portable SQL, no dialect upsert)."""
    for (key, week), posts in sorted(counts.items()):
        if posts <= 0:
            continue
        where = and_(t.c.community == community, t.c[key_column] == key, t.c.week == week)
        done = conn.execute(update(t).where(where).values(posts=t.c.posts + posts))
        if not done.rowcount:
            conn.execute(insert(t).values(community=community, **{key_column: key}, week=week, posts=posts))


class InsightStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ---- heat ----------------------------------------------------------------------------------------------------------

    def cursor(self, community: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(insight_cursors_t.c.value).where(insight_cursors_t.c.community == community)
            ).scalar_one_or_none()

    def record(
        self,
        community: str,
        terms: Mapping[tuple[str, date], int],
        mentions: Mapping[tuple[str, date], int],
        read_from: str | None,
        cursor: str | None,
        posts: int,
    ) -> None:
        """Add a batch's counts and move the cursor from ``read_from`` to ``cursor``, atomically;
        :class:`CursorMoved` (nothing written) when another process moved it first."""
        kept = {(term, week): n for (term, week), n in terms.items() if keepable(term)}
        now = utcnow()
        try:
            with self.engine.begin() as conn:
                c = insight_cursors_t.c
                if cursor is not None and cursor != read_from:
                    if read_from is None:
                        conn.execute(
                            insert(insight_cursors_t).values(
                                community=community, value=cursor, posts_read=posts, updated_at=now
                            )
                        )
                    else:
                        moved = conn.execute(
                            update(insight_cursors_t)
                            .where(and_(c.community == community, c.value == read_from))
                            .values(value=cursor, posts_read=c.posts_read + posts, updated_at=now)
                        )
                        if not moved.rowcount:
                            raise CursorMoved(community)
                _add(conn, terms_t, "term", community, kept)
                _add(conn, mentions_t, "product_id", community, mentions)
        except IntegrityError as error:  # the first cursor row, inserted meanwhile by another process
            raise CursorMoved(community) from error

    def term_counts(self, community: str, since: date) -> list[tuple[str, date, int]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(terms_t.c.term, terms_t.c.week, terms_t.c.posts).where(
                    and_(terms_t.c.community == community, terms_t.c.week >= since)
                )
            ).all()
        return [(row.term, row.week, row.posts) for row in rows]

    def mention_counts(self, community: str, since: date) -> list[tuple[str, date, int]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(mentions_t.c.product_id, mentions_t.c.week, mentions_t.c.posts).where(
                    and_(mentions_t.c.community == community, mentions_t.c.week >= since)
                )
            ).all()
        return [(row.product_id, row.week, row.posts) for row in rows]

    # ---- joins with the shop's records ---------------------------------------------------------------------------------

    def products(self) -> dict[str, str]:
        """Shop product id → name, as the last pull stored them."""
        with self.engine.connect() as conn:
            return {row.id: row.name for row in conn.execute(select(products_t.c.id, products_t.c.name))}

    def products_missing(self) -> list[str]:
        """Product ids orders hold (in any status: a product whose orders were all refunded or never paid is still
        one members may talk about) that have no stored name; their names come from the shop."""
        with self.engine.connect() as conn:
            named = set(conn.execute(select(products_t.c.id)).scalars())
            held = conn.execute(select(orders_t.c.product_ids).distinct()).scalars()
            ids = {p for row in held for p in str(row).split(",") if p}
        return sorted(ids - named)

    def paid_orders_by_product(self, since: datetime) -> dict[str, int]:
        """Paid orders created since ``since`` that hold each product (an order with two products counts for both)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(orders_t.c.product_ids).where(
                    and_(orders_t.c.status == OrderStatus.PAID.value, orders_t.c.created_at >= since)
                )
            ).all()
        counts: dict[str, int] = {}
        for row in rows:
            for product_id in {p for p in str(row.product_ids).split(",") if p}:
                counts[product_id] = counts.get(product_id, 0) + 1
        return counts

    def buyer_members(self, community: str) -> set[str]:
        """Member ids on ``community`` linked to a customer with at least one paid order (verified buyers)."""
        paid = select(orders_t.c.customer_key).where(orders_t.c.status == OrderStatus.PAID.value).distinct()
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(identities_t.c.remote_user_id).where(
                    and_(
                        identities_t.c.community == community,
                        identities_t.c.status == "matched",
                        identities_t.c.remote_user_id.is_not(None),
                        identities_t.c.customer_key.in_(paid),
                    )
                )
            ).all()
        return {str(row.remote_user_id) for row in rows}

    def weeks_recorded(self, community: str) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count(func.distinct(terms_t.c.week))).where(terms_t.c.community == community)
                ).scalar_one()
            )
