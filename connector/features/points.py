"""Points: awarded per paid order, per currency unit and per published review, reversed on refund or withdrawal.

Each event has a deterministic key and enters the ledger once (``mappings.points``). Discourse holds points as
gamification score events (one action per event) or as a total in a user field; Discord as tier roles, which are
grants like any other: this feature puts the tier's role into ``batch.wanted`` and the grants feature diffs it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from sqlalchemy import select

from adapters.base import Outcome
from connector.core.config import Config
from connector.core.grants import GrantKey
from connector.core.payloads import Payload, PointsTotal, ScoreEvent, Skip
from connector.features.base import PlanBatch, Run
from connector.features.reviews import published
from connector.state import State
from connector.state.planning import CustomerPlanInput, NewAction
from connector.state.sql import orders_t, table_of
from connector.state.tables import OutboxRow, ReviewRow
from mappings.points import due_events, tier_role


class PointsFeature:
    kinds = frozenset({"points", "points_total"})

    def __init__(self, state: State, config: Config) -> None:
        self.state, self.config = state, config

    def prepare(self, run: Run) -> None:
        return None

    def plan(self, run: Run, batch: PlanBatch) -> None:
        points = self.config.points
        if points is None:
            return
        for customer in batch.customers:
            total = self._plan_customer(run, batch, customer)
            batch.points[customer.key] = total
            for community, target in points.communities.items():
                role = tier_role(total, target.tier_roles()) if target.mode == "tiers" else None
                if role is not None:
                    batch.wanted.setdefault(customer.key, {}).setdefault(community, set()).add(GrantKey("role", role))

    def _plan_customer(self, run: Run, batch: PlanBatch, customer: CustomerPlanInput) -> int:
        """Record the customer's new point events, queue the actions that carry them, and return their total."""
        points = self.config.points
        assert points is not None
        reviews = self.state.reviews
        key = customer.key
        recorded = reviews.point_events(key)
        email = key[2:] if key.startswith("e:") else self.state.identities.customer_email(key)
        own_reviews = reviews.reviews_by_email([email]).get(email, []) if email else []
        published_now = [(review.id, published(review, self.config.reviews)) for review in own_reviews]
        due = due_events(reviews.customer_orders(key), published_now, recorded, points)
        if due:
            # A review is found by its author's email, which a registered customer and their own guest orders
            # (e:<email>) share: the review's points belong to whichever of them recorded them first.
            held = reviews.point_keys_held([e.key for e in due])
            due = [e for e in due if e.key not in held]
        if due:
            reviews.add_point_events(key, [(e.key, e.points, e.reason) for e in due])
        events = {**recorded, **{e.key: e.points for e in due}}
        for community, target in points.communities.items():
            if community not in run.communities or not events or target.mode == "tiers":
                continue
            identity = customer.identities.get(community)
            if identity is None or identity.status != "matched":
                batch.need_identity.append((community, key))
                continue
            if target.mode == "gamification":
                sent = self.state.outbox.action_targets(community, key, "points")
                for event in sorted(events):
                    if event not in sent:
                        batch.new.append(
                            NewAction(community, key, GrantKey("points", event), "award", identity.remote_username)
                        )
            elif due or not self.state.outbox.action_targets(community, key, "points_total"):
                batch.new.append(
                    NewAction(community, key, GrantKey("points_total", key), "set", identity.remote_username)
                )
        return sum(events.values())

    def payload(self, row: OutboxRow) -> Payload:
        if row.kind == "points":
            identity = self.state.identities.identity(row.community, row.customer_key)
            events = self.state.reviews.point_events(row.customer_key)
            return ScoreEvent(
                user_id=identity.remote_user_id if identity else None,
                points=events.get(row.target, 0),
                date=self.home_date(row.target),
                # The key in the description is how an award is found again, after a crash or by another state
                # store (score events have no id of ours and no delete).
                description=f"{row.target} [cardbridge]",
            )
        if row.kind == "points_total":
            target = self.config.points.communities.get(row.community) if self.config.points else None
            return PointsTotal(
                total=self.state.reviews.point_total(row.customer_key),
                field_id=target.user_field_id if target else None,
            )
        return Skip()

    def record(self, run: Run, rows: Sequence[OutboxRow], outcomes: Mapping[int, Outcome]) -> None:
        return None

    def describe(self, row: OutboxRow) -> str | None:
        payload = self.payload(row)  # read from the store alone: no remote is asked
        if isinstance(payload, ScoreEvent):
            return f"{payload.points:+d} points, dated {payload.date}"
        if isinstance(payload, PointsTotal):
            return f"points total {payload.total}"
        return None

    def home_date(self, event_key: str) -> str:
        """The day a score event is dated: the order's or review's own creation date (UTC), its reversal's too.

        Any state store, a new one included, derives the same date from the shop's records, so the forum can be asked
        for the award by member and date (the plugin's only filters) instead of trusting a local record. Today when
        the record is unknown (a third-party event key). The plugin re-adds score events into leaderboard scores only
        for the last 10 days (discourse-gamification jobs/scheduled/update_scores_for_ten_days.rb:8): an award for an
        older order counts on leaderboards after an admin's "recalculate scores"."""
        kind, _, rest = event_key.partition(":")
        record_id = rest.removesuffix(":reversal")
        table = {"order": orders_t, "review": _reviews_t}.get(kind)
        created = None
        if table is not None and record_id:
            with self.state.engine.connect() as conn:
                created = conn.execute(select(table.c.created_at).where(table.c.id == record_id)).scalar()
        when = created if isinstance(created, datetime) else datetime.now(UTC)
        if when.tzinfo is not None:
            when = when.astimezone(UTC)
        return when.date().isoformat()


_reviews_t = table_of(ReviewRow)
