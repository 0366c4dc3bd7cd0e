"""Points earned in the community: point events ``earn:<community>:<post id>:<n>``, and who the authors are.

Each change of a post's worth is one event (``n`` counts them), so the ledger keeps the history and a removed post's
points are taken back by a negative event, never by deleting one. Events enter the same ``point_events`` table as
purchase points; the customers they belong to are marked for planning, so the points feature shows them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, and_, func, insert, select

from connector.core.clock import utcnow
from connector.state.sql import chunks, identities_t, mark_customers_dirty, orders_t, table_of
from connector.state.tables import PointEventRow

points_t = table_of(PointEventRow)


def earn_prefix(community: str) -> str:
    return f"earn:{community}:"


@dataclass(frozen=True)
class Earned:
    """One event to record: ``post``'s worth changed by ``points`` for ``customer_key``."""

    community: str
    post_id: str
    customer_key: str
    points: int
    reason: str


class Earnings:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def customers_of(self, community: str, user_ids: Iterable[str]) -> dict[str, str]:
        """Community account id → the shop customer it is matched to (accounts with no match are left out)."""
        found: dict[str, str] = {}
        with self.engine.connect() as conn:
            for chunk in chunks(sorted(set(user_ids))):
                found.update(
                    (r.remote_user_id, r.customer_key)
                    for r in conn.execute(
                        select(identities_t.c.remote_user_id, identities_t.c.customer_key).where(
                            and_(
                                identities_t.c.community == community,
                                identities_t.c.status == "matched",
                                identities_t.c.remote_user_id.in_(chunk),
                            )
                        )
                    )
                )
        return found

    def generation(self, community: str) -> str:
        """A token that changes whenever an account on ``community`` is matched to a customer, relinked or unlinked
        (how many are matched, and the latest change): what a source skipped as unchanged must be read again then,
        as its author may earn now."""
        with self.engine.connect() as conn:
            count, latest = conn.execute(
                select(func.count(), func.max(identities_t.c.updated_at)).where(
                    and_(identities_t.c.community == community, identities_t.c.status == "matched")
                )
            ).one()
        return f"{count}:{latest.timestamp() if isinstance(latest, datetime) else 0}"

    def buyers(self, keys: Iterable[str]) -> set[str]:
        """Those of ``keys`` with a paid order."""
        found: set[str] = set()
        with self.engine.connect() as conn:
            for chunk in chunks(sorted(set(keys))):
                found.update(
                    conn.execute(
                        select(orders_t.c.customer_key)
                        .where(and_(orders_t.c.customer_key.in_(chunk), orders_t.c.status == "paid"))
                        .distinct()
                    ).scalars()
                )
        return found

    def _per_post(self, community: str) -> dict[str, tuple[int, int, str]]:
        """Every post on ``community`` with earn events: post → (points, events, customer key)."""
        prefix = earn_prefix(community)
        totals: dict[str, tuple[int, int, str]] = {}
        with self.engine.connect() as conn:
            # A key range, not LIKE: the primary key's index serves it on every database.
            rows = conn.execute(
                select(points_t.c.key, points_t.c.points, points_t.c.customer_key).where(
                    and_(points_t.c.key >= prefix, points_t.c.key < prefix[:-1] + ";")
                )
            )
            for key, points, customer in rows:
                post = key[len(prefix) :].rsplit(":", 1)[0]
                total, count, _ = totals.get(post, (0, 0, customer))
                totals[post] = (total + points, count + 1, customer)
        return totals

    def recorded(self, community: str, post_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
        """Per post: (points recorded so far, events recorded so far)."""
        wanted = set(post_ids)
        return {post: (total, count) for post, (total, count, _) in self._per_post(community).items() if post in wanted}

    def held(self, community: str) -> dict[str, tuple[int, int, str]]:
        """Posts on ``community`` whose points are not all taken back: post → (points, events, customer key)."""
        return {post: held for post, held in self._per_post(community).items() if held[0] != 0}

    def earned_since(self, community: str, keys: Iterable[str], since: datetime) -> dict[str, int]:
        """Points each customer gained from posts on ``community`` since ``since`` (the daily cap's use)."""
        prefix = earn_prefix(community)
        found: dict[str, int] = {}
        with self.engine.connect() as conn:
            for chunk in chunks(sorted(set(keys))):
                found.update(
                    (key, int(total))
                    for key, total in conn.execute(
                        select(points_t.c.customer_key, func.sum(points_t.c.points))
                        .where(
                            and_(
                                points_t.c.customer_key.in_(chunk),
                                points_t.c.key >= prefix,
                                points_t.c.key < prefix[:-1] + ";",
                                points_t.c.points > 0,
                                points_t.c.created_at >= since,
                            )
                        )
                        .group_by(points_t.c.customer_key)
                    )
                )
        return found

    def total(self) -> int:
        """Points members hold from community posts, all communities (reversals included)."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.coalesce(func.sum(points_t.c.points), 0)).where(
                        and_(points_t.c.key >= "earn:", points_t.c.key < "earn;")
                    )
                ).scalar_one()
            )

    def add(self, events: Sequence[Earned], counts: dict[str, int]) -> None:
        """Record the events (``counts``: events each post had, for their keys) and mark their customers for
        planning, in one transaction."""
        if not events:
            return
        now = utcnow()
        with self.engine.begin() as conn:
            for event in events:
                n = counts.get(event.post_id, 0)
                conn.execute(
                    insert(points_t).values(
                        key=f"{earn_prefix(event.community)}{event.post_id}:{n}",
                        customer_key=event.customer_key,
                        points=event.points,
                        reason=event.reason[:255],
                        created_at=now,
                    )
                )
                counts[event.post_id] = n + 1
            mark_customers_dirty(conn, {event.customer_key for event in events})
