"""State for reviews, their forum topics and posts, conflicts, and point events (one transaction per method)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, and_, delete, func, insert, or_, select, update

from connector.core.clock import utcnow
from connector.core.models import OrderStatus, Product, Quarantined, Review
from connector.state.sql import chunks, customers_t, identities_t, orders_t, save_quarantined, table_of
from connector.state.tables import (
    ConflictRow,
    PointEventRow,
    PostRow,
    ProductRow,
    ReviewRow,
    TopicRow,
)

reviews_t = table_of(ReviewRow)
products_t = table_of(ProductRow)
posts_t = table_of(PostRow)
topics_t = table_of(TopicRow)
conflicts_t = table_of(ConflictRow)
points_t = table_of(PointEventRow)
#: Events that are not spending: ``redeem:`` events are redemptions (``connector.state.redemptions``).
_earned = ~points_t.c.key.startswith("redeem:")

_CONTENT = ("product_id", "email", "reviewer", "rating", "text", "status")


@dataclass(frozen=True)
class ReviewContext:
    """A review with what its post depends on: the product, verification, the reviewer's customer and forum names."""

    review: ReviewRow
    product: ProductRow | None
    verified: bool
    customer_key: str | None
    usernames: dict[str, str]
    posts: dict[str, PostRow]
    open_conflicts: set[str]


class ReviewStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ---- pulled records ------------------------------------------------------------------------------------------

    def save_reviews(self, reviews: Sequence[Review], quarantined: Sequence[Quarantined]) -> int:
        """Upsert reviews; a changed one becomes dirty. Returns how many changed."""
        now = utcnow()
        changed = 0
        with self.engine.begin() as conn:
            ids = [r.id for r in reviews]
            known = {
                row.id: row
                for chunk in chunks(ids)
                for row in conn.execute(select(reviews_t).where(reviews_t.c.id.in_(chunk)))
            }
            for review in reviews:
                values = {k: getattr(review, k) for k in _CONTENT}
                old = known.get(review.id)
                if old is None:
                    conn.execute(
                        insert(reviews_t).values(
                            id=review.id,
                            created_at=review.created_at,
                            present=True,
                            approved=False,
                            dirty=True,
                            **values,
                        )
                    )
                    changed += 1
                elif any(getattr(old, k) != v for k, v in values.items()) or not old.present:
                    conn.execute(
                        update(reviews_t).where(reviews_t.c.id == review.id).values(present=True, dirty=True, **values)
                    )
                    changed += 1
            save_quarantined(conn, quarantined, now)
        return changed

    def mark_missing_reviews(self, seen: set[str]) -> int:
        """After a full read: reviews the shop no longer lists were deleted there."""
        with self.engine.begin() as conn:
            present = list(conn.execute(select(reviews_t.c.id).where(reviews_t.c.present.is_(True))).scalars())
            gone = [review_id for review_id in present if review_id not in seen]
            for chunk in chunks(gone):
                conn.execute(update(reviews_t).where(reviews_t.c.id.in_(chunk)).values(present=False, dirty=True))
        return len(gone)

    def products_missing(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(reviews_t.c.product_id)
                    .distinct()
                    .where(reviews_t.c.product_id.not_in(select(products_t.c.id)))
                ).scalars()
            )

    def save_products(self, products: Sequence[Product]) -> None:
        with self.engine.begin() as conn:
            for product in products:
                # name and link only: the catalogue's facts (price, stock) are the catalogue read's to keep
                values = {"name": product.name, "permalink": product.permalink}
                done = conn.execute(update(products_t).where(products_t.c.id == product.id).values(**values))
                if done.rowcount == 0:
                    conn.execute(insert(products_t).values(id=product.id, **values))

    def approve(self, review_id: str) -> bool:
        with self.engine.begin() as conn:
            return bool(
                conn.execute(
                    update(reviews_t).where(reviews_t.c.id == review_id).values(approved=True, dirty=True)
                ).rowcount
            )

    def held(self) -> list[ReviewRow]:
        with self.engine.connect() as conn:
            return [
                ReviewRow.model_validate(dict(r._mapping))
                for r in conn.execute(
                    select(reviews_t)
                    .where(
                        and_(
                            reviews_t.c.approved.is_(False),
                            reviews_t.c.present.is_(True),
                            reviews_t.c.status == "approved",
                        )
                    )
                    .order_by(reviews_t.c.id)
                )
            ]

    # ---- planning ------------------------------------------------------------------------------------------------

    def dirty_review_ids(self, everyone: bool = False) -> list[str]:
        with self.engine.connect() as conn:
            query = select(reviews_t.c.id).order_by(reviews_t.c.id)
            if not everyone:
                query = query.where(reviews_t.c.dirty.is_(True))
            return list(conn.execute(query).scalars())

    def contexts(self, ids: Sequence[str]) -> list[ReviewContext]:
        result = []
        with self.engine.connect() as conn:
            for review_id in ids:
                row = conn.execute(select(reviews_t).where(reviews_t.c.id == review_id)).first()
                if row is None:
                    continue
                review = ReviewRow.model_validate(dict(row._mapping))
                product_row = conn.execute(select(products_t).where(products_t.c.id == review.product_id)).first()
                keys = []
                if review.email:
                    keys = list(
                        conn.execute(
                            select(customers_t.c.key)
                            .where(customers_t.c.email == review.email)
                            .order_by(customers_t.c.key)
                        ).scalars()
                    )
                verified = (
                    bool(keys)
                    and conn.execute(
                        select(func.count())
                        .select_from(orders_t)
                        .where(
                            and_(
                                orders_t.c.customer_key.in_(keys),
                                orders_t.c.status == OrderStatus.PAID.value,
                                orders_t.c.product_ids.like(f"%,{review.product_id},%"),
                            )
                        )
                    ).scalar_one()
                    > 0
                )
                usernames: dict[str, str] = {}
                if keys:
                    for identity in conn.execute(
                        select(identities_t).where(
                            and_(identities_t.c.customer_key.in_(keys), identities_t.c.status == "matched")
                        )
                    ):
                        usernames.setdefault(identity.community, identity.remote_username)
                posts = {
                    p.community: PostRow.model_validate(dict(p._mapping))
                    for p in conn.execute(select(posts_t).where(posts_t.c.review_id == review_id))
                }
                # The review's own conflicts, and its product's topic ones (a deleted topic holds every review).
                conflicts = set(
                    conn.execute(
                        select(conflicts_t.c.community).where(
                            and_(
                                or_(
                                    and_(conflicts_t.c.kind == "review", conflicts_t.c.target == review_id),
                                    and_(conflicts_t.c.kind == "topic", conflicts_t.c.target == review.product_id),
                                ),
                                conflicts_t.c.status == "open",
                            )
                        )
                    ).scalars()
                )
                result.append(
                    ReviewContext(
                        review=review,
                        product=ProductRow.model_validate(dict(product_row._mapping)) if product_row else None,
                        verified=verified,
                        customer_key=(sorted(keys, key=lambda k: not k.startswith("c:"))[0] if keys else None),
                        usernames=usernames,
                        posts=posts,
                        open_conflicts=conflicts,
                    )
                )
        return result

    def clean(self, ids: Sequence[str]) -> None:
        with self.engine.begin() as conn:
            for chunk in chunks(list(ids)):
                conn.execute(update(reviews_t).where(reviews_t.c.id.in_(chunk)).values(dirty=False))

    def mark_dirty(self, ids: Sequence[str]) -> None:
        with self.engine.begin() as conn:
            for chunk in chunks(list(ids)):
                conn.execute(update(reviews_t).where(reviews_t.c.id.in_(chunk)).values(dirty=True))

    def reviews_by_email(self, emails: Sequence[str]) -> dict[str, list[ReviewRow]]:
        found: dict[str, list[ReviewRow]] = {}
        with self.engine.connect() as conn:
            for chunk in chunks([e for e in emails if e]):
                for row in conn.execute(select(reviews_t).where(reviews_t.c.email.in_(chunk))):
                    found.setdefault(row.email, []).append(ReviewRow.model_validate(dict(row._mapping)))
        return found

    # ---- topics and posts ----------------------------------------------------------------------------------------

    def topic(self, community: str, product_id: str) -> TopicRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(topics_t).where(and_(topics_t.c.community == community, topics_t.c.product_id == product_id))
            ).first()
        return TopicRow.model_validate(dict(row._mapping)) if row else None

    def set_topic(self, community: str, product_id: str, external_id: str, topic_id: str) -> None:
        """Remember the product's topic (its generation stays what :meth:`next_topic_generation` made it)."""
        with self.engine.begin() as conn:
            where = and_(topics_t.c.community == community, topics_t.c.product_id == product_id)
            if conn.execute(update(topics_t).where(where).values(external_id=external_id, topic_id=topic_id)).rowcount:
                return
            conn.execute(
                insert(topics_t).values(
                    community=community, product_id=product_id, external_id=external_id, topic_id=topic_id
                )
            )

    def next_topic_generation(self, community: str, product_id: str) -> int:
        """The product's topic is gone for good: the next one is opened under the next generation (returned)."""
        with self.engine.begin() as conn:
            where = and_(topics_t.c.community == community, topics_t.c.product_id == product_id)
            current = conn.execute(select(topics_t.c.generation).where(where)).scalar_one_or_none()
            generation = (current or 1) + 1
            if current is None:
                conn.execute(
                    insert(topics_t).values(
                        community=community, product_id=product_id, external_id="", topic_id="", generation=generation
                    )
                )
            else:
                conn.execute(update(topics_t).where(where).values(external_id="", topic_id="", generation=generation))
        return generation

    def review_ids_of_product(self, product_id: str) -> list[str]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(reviews_t.c.id).where(reviews_t.c.product_id == product_id).order_by(reviews_t.c.id)
                ).scalars()
            )

    def forget_topic(self, community: str, product_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                delete(topics_t).where(and_(topics_t.c.community == community, topics_t.c.product_id == product_id))
            )

    def post(self, community: str, review_id: str) -> PostRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(posts_t).where(and_(posts_t.c.community == community, posts_t.c.review_id == review_id))
            ).first()
        return PostRow.model_validate(dict(row._mapping)) if row else None

    def post_by_id(self, community: str, post_id: str) -> PostRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(posts_t).where(and_(posts_t.c.community == community, posts_t.c.post_id == post_id))
            ).first()
        return PostRow.model_validate(dict(row._mapping)) if row else None

    def set_post(self, community: str, review_id: str, **values: object) -> None:
        now = utcnow()
        with self.engine.begin() as conn:
            where = and_(posts_t.c.community == community, posts_t.c.review_id == review_id)
            if conn.execute(update(posts_t).where(where).values(updated_at=now, **values)).rowcount == 0:
                conn.execute(
                    insert(posts_t).values(
                        community=community, review_id=review_id, updated_at=now, **{"state": "posted", **values}
                    )
                )

    def forget_post(self, community: str, review_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                delete(posts_t).where(and_(posts_t.c.community == community, posts_t.c.review_id == review_id))
            )

    # ---- conflicts -----------------------------------------------------------------------------------------------

    def add_conflict(self, community: str, kind: str, target: str, reason: str) -> int:
        with self.engine.begin() as conn:
            existing = conn.execute(
                select(conflicts_t.c.id).where(
                    and_(
                        conflicts_t.c.community == community,
                        conflicts_t.c.kind == kind,
                        conflicts_t.c.target == target,
                        conflicts_t.c.status == "open",
                    )
                )
            ).scalar_one_or_none()
            if existing is not None:
                return int(existing)
            created = conn.execute(
                insert(conflicts_t).values(
                    community=community, kind=kind, target=target, reason=reason, status="open", created_at=utcnow()
                )
            ).inserted_primary_key
            assert created is not None  # an INSERT always reports the key it created
            return int(created[0])

    def conflicts(self, open_only: bool = True) -> list[ConflictRow]:
        with self.engine.connect() as conn:
            query = select(conflicts_t).order_by(conflicts_t.c.id)
            if open_only:
                query = query.where(conflicts_t.c.status == "open")
            return [ConflictRow.model_validate(dict(r._mapping)) for r in conn.execute(query)]

    def resolve_conflict(self, conflict_id: int, keep: str) -> ConflictRow | None:
        with self.engine.begin() as conn:
            row = conn.execute(
                select(conflicts_t).where(and_(conflicts_t.c.id == conflict_id, conflicts_t.c.status == "open"))
            ).first()
            if row is None:
                return None
            conn.execute(
                update(conflicts_t)
                .where(conflicts_t.c.id == conflict_id)
                .values(status=f"kept-{keep}", resolved_at=utcnow())
            )
            # A topic conflict's target is a product: each of its reviews is planned again. A product card's
            # conflict is no review's (connector.features.products resolves it).
            if row.kind in ("topic", "review"):
                column = reviews_t.c.product_id if row.kind == "topic" else reviews_t.c.id
                conn.execute(update(reviews_t).where(column == row.target).values(dirty=True))
        return ConflictRow.model_validate(dict(row._mapping))

    # ---- points --------------------------------------------------------------------------------------------------

    def point_events(self, customer_key: str) -> dict[str, int]:
        """Points earned (purchases, reviews, posts) and their reversals; redemptions (spending) are left out: the
        community shows what a member earned, ``Redemptions.balance`` what they can still spend."""
        with self.engine.connect() as conn:
            return dict(
                conn.execute(
                    select(points_t.c.key, points_t.c.points).where(points_t.c.customer_key == customer_key, _earned)
                ).all()
            )

    def point_rows(self, customer_keys: Sequence[str]) -> list[PointEventRow]:
        with self.engine.connect() as conn:
            return [
                PointEventRow.model_validate(dict(r._mapping))
                for r in conn.execute(
                    select(points_t)
                    .where(points_t.c.customer_key.in_(list(customer_keys)))
                    .order_by(points_t.c.created_at, points_t.c.key)
                )
            ]

    def point_keys_held(self, keys: Sequence[str]) -> set[str]:
        """Those of ``keys`` already recorded, for any customer."""
        with self.engine.connect() as conn:
            return set(conn.execute(select(points_t.c.key).where(points_t.c.key.in_(list(keys)))).scalars())

    def add_point_events(self, customer_key: str, events: Sequence[tuple[str, int, str]]) -> None:
        now = utcnow()
        with self.engine.begin() as conn:
            for key, points, reason in events:
                conn.execute(
                    insert(points_t).values(
                        key=key, customer_key=customer_key, points=points, reason=reason, created_at=now
                    )
                )

    def point_total(self, customer_key: str) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.coalesce(func.sum(points_t.c.points), 0)).where(
                        points_t.c.customer_key == customer_key, _earned
                    )
                ).scalar_one()
            )

    def customer_orders(self, customer_key: str) -> list[tuple[str, bool, str]]:
        with self.engine.connect() as conn:
            return [
                (r.id, r.status == OrderStatus.PAID.value, r.total)
                for r in conn.execute(
                    select(orders_t.c.id, orders_t.c.status, orders_t.c.total).where(
                        orders_t.c.customer_key == customer_key
                    )
                )
            ]
