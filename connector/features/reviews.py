"""The review and points stages of a pass: pull reviews, plan posts and point events, build payloads, record results.

The shop owns reviews and points; the forum owns what moderators do. A post a moderator changed is never overwritten:
the planner meets it as a conflict, which an admin resolves (``cardbridge conflicts resolve ID --keep shop|forum``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from adapters.base import Outcome, ReviewSource
from connector.core.http import RemoteError
from connector.core.logs import log
from connector.state.reviews import ReviewContext, ReviewStore
from connector.state.store import CHUNK, NewAction
from connector.state.tables import OutboxRow
from mappings import discord_posts
from mappings.grants import GrantKey
from mappings.points import due_events
from mappings.reviews import (
    ReviewView,
    content_hash,
    marker,
    passes_moderation,
    render_post,
    review_op,
    topic_external_id,
    topic_intro,
    topic_title,
)

if TYPE_CHECKING:
    from connector.flow.pass_ import Connector, PassReport

#: Review and points actions are not a customer's grants; their outbox rows use this owner.
SHOP = "shop"


class ContentStage:
    def __init__(self, connector: Connector) -> None:
        self.connector = connector
        self.config = connector.config
        self.reviews = ReviewStore(connector.store.engine)

    @property
    def wants_reviews(self) -> bool:
        points = self.config.points
        return bool(self.config.reviews) or bool(points and points.per_review)

    # ---- pull ----------------------------------------------------------------------------------------------------

    def pull(self, report: PassReport) -> None:
        shop = self.connector.shop
        if not self.wants_reviews:
            return
        if not isinstance(shop, ReviewSource):
            log.warning("shop has no reviews", kind=getattr(shop, "kind", "?"))
            return
        seen: set[str] = set()
        for page in shop.review_pages():
            report.reviews_changed += self.reviews.save_reviews(page.reviews, page.quarantined)
            seen.update(r.id for r in page.reviews)
            report.quarantined += len(page.quarantined)
        report.reviews_changed += self.reviews.mark_missing_reviews(seen)
        missing = self.reviews.products_missing()
        if missing:
            self.reviews.save_products(shop.products(missing))

    # ---- plan ----------------------------------------------------------------------------------------------------

    def visible(self, ctx: ReviewContext) -> bool:
        return self.published(ctx.review)

    def published(self, review: Any) -> bool:
        """Whether a stored review should be on the forum: approved and present in the shop, past moderation."""
        config = self.config.reviews
        if not review.present or review.status != "approved":
            return False
        if config is None:
            return True
        if passes_moderation(review.rating, review.text, config) is not None:
            return False
        return review.approved or not config.hold

    def view(self, ctx: ReviewContext, community: str) -> ReviewView:
        product = ctx.product.name if ctx.product else f"Product #{ctx.review.product_id}"
        return ReviewView(
            ctx.review.id, product, ctx.review.rating, ctx.review.text, ctx.verified, ctx.usernames.get(community)
        )

    def is_discord(self, community: str) -> bool:
        target = self.config.communities.get(community)
        return target is not None and target.kind == "discord"

    def render(self, community: str, ctx: ReviewContext) -> str:
        """The review as the community shows it (Discourse markdown, or a Discord message within 2000 characters)."""
        view = self.view(ctx, community)
        return discord_posts.render_review(view) if self.is_discord(community) else render_post(view)

    def plan_reviews(self, report: PassReport, everyone: bool, dry_run: bool) -> list[str]:
        """Plan posts for changed reviews; returns the reviewers' customer keys (their points may change)."""
        if not self.wants_reviews:
            return []
        targets = self.config.reviews.communities if self.config.reviews else {}
        customers: list[str] = []
        ids = self.reviews.dirty_review_ids(everyone)
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            new: list[NewAction] = []
            busy: list[str] = []
            for ctx in self.reviews.contexts(chunk):
                if ctx.customer_key:
                    customers.append(ctx.customer_key)
                visible = self.visible(ctx)
                for community in targets:
                    if community in ctx.open_conflicts or community not in self.connector.communities:
                        continue
                    if self.connector.store.open_actions(community, SHOP, "review", ctx.review.id):
                        busy.append(ctx.review.id)  # plan again once the action in flight settles
                        continue
                    post = ctx.posts.get(community)
                    desired = content_hash(self.render(community, ctx)) if visible else None
                    op = review_op(visible, desired, post.state if post else None, post.content_hash if post else None)
                    if op is not None:
                        new.append(NewAction(community, SHOP, GrantKey("review", ctx.review.id), op, None))
            report.actions_planned += len(new)
            if not dry_run:
                self.connector.store.apply_plan([], new, [], [])
                self.reviews.clean([i for i in chunk if i not in set(busy)])
        return customers

    def plan_points(
        self, customer_key: str, identities: dict[str, Any], dry_run: bool
    ) -> tuple[list[NewAction], list[tuple[str, str]], int]:
        """New point events for one customer, the outbox actions that carry them to each community, and their total
        (tier roles are grants: the main planner adds them)."""
        points = self.config.points
        if points is None:
            return [], [], 0
        recorded = self.reviews.point_events(customer_key)
        email_reviews = []
        if customer_key.startswith("e:"):
            email_reviews = self.reviews.reviews_by_email([customer_key[2:]]).get(customer_key[2:], [])
        else:
            email = self.connector.store.customer_email(customer_key)
            email_reviews = self.reviews.reviews_by_email([email]).get(email, []) if email else []
        published = [(review.id, self.published(review)) for review in email_reviews]
        due = due_events(self.reviews.customer_orders(customer_key), published, recorded, points)
        if due and not dry_run:
            self.reviews.add_point_events(customer_key, [(e.key, e.points, e.reason) for e in due])
        events = {**recorded, **{e.key: e.points for e in due}}
        new: list[NewAction] = []
        need_identity: list[tuple[str, str]] = []
        for community, target in points.communities.items():
            if community not in self.connector.communities or not events or target.mode == "tiers":
                continue
            identity = identities.get(community)
            if identity is None or identity.status != "matched":
                need_identity.append((community, customer_key))
                continue
            if target.mode == "gamification":
                sent = self.connector.store.action_targets(community, customer_key, "points")
                for key in sorted(events):
                    if key not in sent:
                        new.append(
                            NewAction(
                                community, customer_key, GrantKey("points", key), "award", identity.remote_username
                            )
                        )
            elif due or not self.connector.store.action_targets(community, customer_key, "points_total"):
                new.append(
                    NewAction(
                        community, customer_key, GrantKey("points_total", customer_key), "set", identity.remote_username
                    )
                )
        return new, need_identity, sum(events.values())

    # ---- deliver -------------------------------------------------------------------------------------------------

    def payload(self, row: OutboxRow) -> dict[str, Any]:
        """What a review or points action writes, built from the state store as it is now (reconcile, not replay)."""
        community = row.community
        if row.kind == "review":
            [ctx] = self.reviews.contexts([row.target]) or [None]
            if ctx is None:
                return {"skip": True}
            visible = self.visible(ctx)
            post = self.reviews.post(community, row.target)
            if (row.op == "delete") == visible:
                return {"skip": True}  # the shop changed again since this was planned; the next plan decides
            target = self.config.reviews.communities[community] if self.config.reviews else None
            raw = self.render(community, ctx) if visible else ""
            product_name = ctx.product.name if ctx.product else f"Product #{ctx.review.product_id}"
            topic = self.reviews.topic(community, ctx.review.product_id)
            prefix = self.config.reviews.topic_prefix if self.config.reviews else "shop"
            if self.is_discord(community):
                permalink = ctx.product.permalink if ctx.product else None
                return {
                    "raw": raw,
                    "hash": content_hash(raw) if raw else None,
                    "marker": marker(ctx.review.id),
                    "forum_channel": target.forum_channel if target else None,
                    "thread_per": target.thread_per if target else "product",
                    "tags": list(target.tags) if target else [],
                    "verified_tag": target.verified_tag if target else None,
                    "verified": ctx.verified,
                    "post_id": post.post_id if post else None,
                    # per review, the thread is the post's own; per product, the product's thread
                    "thread_id": post.topic_id if post and post.topic_id else (topic.topic_id if topic else None),
                    "topic_id": topic.topic_id if topic else None,
                    "thread_name": discord_posts.thread_name(product_name, self.view(ctx, community)),
                    "topic_title": discord_posts.thread_name(product_name),
                    "topic_intro": discord_posts.product_intro(product_name, permalink),
                    "product_id": ctx.review.product_id,
                }
            return {
                "raw": raw,
                "hash": content_hash(raw) if raw else None,
                "marker": marker(ctx.review.id),
                "post_id": post.post_id if post else None,
                "post_hash": post.content_hash if post else None,
                "topic_id": topic.topic_id if topic else None,
                "external_id": topic_external_id(prefix, ctx.review.product_id),
                "topic_title": topic_title(product_name),
                "topic_intro": topic_intro(product_name, ctx.product.permalink if ctx.product else None),
                "category": target.category if target else "Reviews",
                "category_color": target.category_color if target else "2E7D32",
                "category_text_color": target.category_text_color if target else "FFFFFF",
                "product_id": ctx.review.product_id,
            }
        identity = self.connector.store.identity(community, row.customer_key)
        if row.kind == "points":
            events = self.reviews.point_events(row.customer_key)
            return {
                "user_id": identity.remote_user_id if identity else None,
                "points": events.get(row.target, 0),
                "date": datetime.now(UTC).date().isoformat(),
                # The key in the description is how an interrupted award is found again (score events have no id
                # of ours and no delete).
                "description": f"{row.target} [cardbridge]",
            }
        target = self.config.points.communities[community] if self.config.points else None
        return {
            "total": self.reviews.point_total(row.customer_key),
            "field_id": target.user_field_id if target else None,
        }

    def record(self, rows: Sequence[OutboxRow], outcomes: dict[int, Outcome], report: PassReport) -> None:
        """Remember posts and topics written, and conflicts met."""
        for row in rows:
            outcome = outcomes.get(row.id or 0)
            if row.kind != "review" or outcome is None or not outcome.ok:
                continue
            if outcome.conflict:
                conflict_id = self.reviews.add_conflict(row.community, "review", row.target, outcome.conflict)
                report.conflicts += 1
                log.warning(
                    "conflict", community=row.community, review=row.target, id=conflict_id, reason=outcome.conflict
                )
                continue
            data = dict(outcome.data)
            if data.pop("skipped", False):
                self.reviews.mark_dirty([row.target])
                continue
            values: dict[str, Any] = {}
            if "topic_id" in data:
                values["topic_id"] = data["topic_id"]
                [ctx] = self.reviews.contexts([row.target])
                prefix = self.config.reviews.topic_prefix if self.config.reviews else "shop"
                self.reviews.set_topic(
                    row.community,
                    ctx.review.product_id,
                    topic_external_id(prefix, ctx.review.product_id),
                    data["topic_id"],
                )
            for key, column in (
                ("post_id", "post_id"),
                ("version", "remote_version"),
                ("content_hash", "content_hash"),
                ("state", "state"),
                ("thread_id", "topic_id"),
            ):
                if key in data:
                    values[column] = data[key]
            self.reviews.set_post(row.community, row.target, **values)

    # ---- conflicts -----------------------------------------------------------------------------------------------

    def resolve(self, conflict_id: int, keep: str) -> str:
        """``keep="shop"``: the shop's text goes back up (a deleted post is posted again); ``"forum"``: the forum's
        version stays, and the connector touches the post again only when the shop's review changes."""
        conflict = self.reviews.resolve_conflict(conflict_id, keep)
        if conflict is None:
            raise KeyError(conflict_id)
        community, review_id = conflict.community, conflict.target
        post = self.reviews.post(community, review_id)
        client = getattr(self.connector.communities.get(community), "client", None)
        if self.is_discord(community):
            # Only the author can edit a Discord message, so a Discord conflict is always a deletion.
            current = None
            [ctx] = self.reviews.contexts([review_id])
            topic = self.reviews.topic(community, ctx.review.product_id)
            if keep == "shop" and topic is not None and client is not None and not _exists(client, topic.topic_id):
                # The product's whole thread went: the review goes into a new one.
                self.reviews.forget_topic(community, ctx.review.product_id)
                self.connector.store.set_remote_id(community, "thread", ctx.review.product_id, None)
        else:
            current = client.post(int(post.post_id)) if post and post.post_id and client else None
        deleted = current is None or bool(current.get("deleted_at"))
        if keep == "shop":
            if deleted:
                self.reviews.forget_post(community, review_id)
            else:
                # Adopt the forum's copy as the base, so the next pass edits it back to the shop's text.
                self.reviews.set_post(
                    community,
                    review_id,
                    content_hash=content_hash(current.get("raw") or ""),
                    remote_version=current.get("version"),
                    state="posted",
                )
            return f"conflict {conflict_id}: the shop's review will be posted again on the next pass"
        [ctx] = self.reviews.contexts([review_id])
        wanted = content_hash(self.render(community, ctx)) if self.visible(ctx) else None
        if deleted:
            self.reviews.set_post(community, review_id, content_hash=wanted, state="forum-deleted")
        else:
            self.reviews.set_post(
                community, review_id, content_hash=wanted, state="forum", remote_version=current.get("version")
            )
        return f"conflict {conflict_id}: the forum's version stays until the review changes in the shop"


def _exists(client: Any, channel_id: str) -> bool:
    try:
        client.channel(channel_id)
    except RemoteError as error:
        if error.status == 404:
            return False
        raise
    return True
