"""Reviews: the shop's reviews pulled, posted to each community that shows them, edited and deleted with the shop.

The shop owns reviews; the community owns what moderators do. A post a moderator changed is never overwritten: the
planner meets it as a conflict, which an admin resolves (``cardbridge conflicts resolve ID --keep shop|forum``).
Discourse: one topic per product (found by its ``external_id``), one post per review; a topic a moderator deleted is
one conflict for the product (kind ``topic``), and keeping the shop's side opens the product's next topic under a new
external id (Discourse keeps a deleted topic's id taken). Discord: a forum channel, one thread per product or per
review.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from adapters.base import CommunityAdapter, Outcome, PostReader, ReviewSource, ThreadCheck
from adapters.communities.discourse_posts import TOPIC_CONFLICT
from connector.core.config import Config, ReviewsConfig
from connector.core.grants import GrantKey
from connector.core.http import describe_error
from connector.core.logs import log
from connector.core.payloads import DiscordPost, DiscoursePost, Payload, Skip
from connector.features.base import PlanBatch, Run
from connector.state import State
from connector.state.planning import NewAction
from connector.state.reviews import ReviewContext
from connector.state.sql import CHUNK
from connector.state.tables import OutboxRow, ReviewRow
from mappings import discord_posts
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

#: Review actions are not a customer's grants; their outbox rows use this owner.
SHOP = "shop"


def published(review: ReviewRow, config: ReviewsConfig | None) -> bool:
    """Whether a stored review should be in the community: approved and present in the shop, past moderation."""
    if not review.present or review.status != "approved":
        return False
    if config is None:
        return True
    if passes_moderation(review.rating, review.text, config) is not None:
        return False
    return review.approved or not config.hold


class ReviewsFeature:
    kinds = frozenset({"review"})

    def __init__(self, state: State, config: Config, communities: Mapping[str, CommunityAdapter]) -> None:
        self.state, self.config, self.communities = state, config, communities
        self.reviews = state.reviews

    @property
    def wanted(self) -> bool:
        points = self.config.points
        return bool(self.config.reviews) or bool(points and points.per_review)

    @property
    def prefix(self) -> str:
        return self.config.reviews.topic_prefix if self.config.reviews else "shop"

    # ---- prepare: pull, then plan posts --------------------------------------------------------------------------

    def prepare(self, run: Run) -> None:
        if not self.wanted:
            return
        shop_failed = any(line.startswith("shop:") for line in run.report.errors)
        if run.options.order_ids is None and not shop_failed:
            try:
                self._pull(run)
            except Exception as error:  # as the order pull: one line, the pass goes on
                reason = describe_error(error)
                run.report.errors.append(f"shop: {reason}")
                log.error("pull failed", error=reason)
        reviewers = self._plan_posts(run)
        if reviewers and self.config.points:
            self.state.plans.mark_dirty(reviewers)  # a review published or withdrawn changes its author's points

    def _pull(self, run: Run) -> None:
        shop = run.shop
        if not isinstance(shop, ReviewSource):
            return  # the connector warned when it was assembled
        seen: set[str] = set()
        for page in shop.review_pages():
            run.report.reviews_changed += self.reviews.save_reviews(page.reviews, page.quarantined)
            seen.update(r.id for r in page.reviews)
            run.report.quarantined += len(page.quarantined)
        run.report.reviews_changed += self.reviews.mark_missing_reviews(seen)
        missing = self.reviews.products_missing()
        if missing:
            self.reviews.save_products(shop.products(missing))

    def _plan_posts(self, run: Run) -> list[str]:
        """Plan posts for changed reviews; returns the reviewers' customer keys (their points may change)."""
        targets = self.config.reviews.communities if self.config.reviews else {}
        customers: list[str] = []
        ids = self.reviews.dirty_review_ids(run.options.full)
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            new: list[NewAction] = []
            busy: set[str] = set()
            for ctx in self.reviews.contexts(chunk):
                if ctx.customer_key:
                    customers.append(ctx.customer_key)
                visible = published(ctx.review, self.config.reviews)
                for community in targets:
                    if community in ctx.open_conflicts or community not in self.communities:
                        continue
                    if self.state.outbox.open_actions(community, SHOP, "review", ctx.review.id):
                        busy.add(ctx.review.id)  # plan again once the action in flight settles
                        continue
                    post = ctx.posts.get(community)
                    desired = content_hash(self.render(community, ctx)) if visible else None
                    op = review_op(visible, desired, post.state if post else None, post.content_hash if post else None)
                    if op is not None:
                        new.append(NewAction(community, SHOP, GrantKey("review", ctx.review.id), op, None))
            run.report.actions_planned += len(new)
            self.state.plans.apply_plan([], new, [], [])
            self.reviews.clean([i for i in chunk if i not in busy])
        return customers

    def plan(self, run: Run, batch: PlanBatch) -> None:
        return None  # reviews are planned per review, in prepare

    def describe(self, row: OutboxRow) -> str | None:
        """The post as it would be written (the rendered text), or what happens to it."""
        payload = self.payload(row)
        if isinstance(payload, Skip):
            return "nothing (the review changed again: the next pass decides)"
        raw = payload.raw if isinstance(payload, DiscoursePost | DiscordPost) else ""
        return raw or "delete the post"

    # ---- rendering -----------------------------------------------------------------------------------------------

    def is_discord(self, community: str) -> bool:
        target = self.config.communities.get(community)
        return target is not None and target.kind == "discord"

    def view(self, ctx: ReviewContext, community: str) -> ReviewView:
        return ReviewView(
            ctx.review.id,
            _product_name(ctx),
            ctx.review.rating,
            ctx.review.text,
            ctx.verified,
            ctx.usernames.get(community),
        )

    def render(self, community: str, ctx: ReviewContext) -> str:
        """The review as the community shows it (Discourse markdown, or a Discord message within 2000 characters)."""
        view = self.view(ctx, community)
        return discord_posts.render_review(view) if self.is_discord(community) else render_post(view)

    # ---- deliver -------------------------------------------------------------------------------------------------

    def payload(self, row: OutboxRow) -> Payload:
        """The post as the shop holds it now; ``Skip`` when the shop changed again since this was planned."""
        community = row.community
        found = self.reviews.contexts([row.target])
        if not found:
            return Skip()
        ctx = found[0]
        visible = published(ctx.review, self.config.reviews)
        if (row.op == "delete") == visible:
            return Skip()  # the next plan decides
        target = self.config.reviews.communities.get(community) if self.config.reviews else None
        post = self.reviews.post(community, row.target)
        topic = self.reviews.topic(community, ctx.review.product_id)
        raw = self.render(community, ctx) if visible else ""
        name = _product_name(ctx)
        permalink = ctx.product.permalink if ctx.product else None
        if self.is_discord(community):
            return DiscordPost(
                raw=raw,
                hash=content_hash(raw) if raw else None,
                marker=marker(ctx.review.id),
                forum_channel=target.forum_channel if target else None,
                thread_per=target.thread_per if target else "product",
                tags=list(target.tags) if target else [],
                verified_tag=target.verified_tag if target else None,
                verified=ctx.verified,
                post_id=post.post_id if post else None,
                # per review, the thread is the post's own; per product, the product's thread
                thread_id=post.topic_id if post and post.topic_id else (topic.topic_id if topic else None),
                topic_id=topic.topic_id if topic else None,
                thread_name=discord_posts.thread_name(name, self.view(ctx, community)),
                topic_title=discord_posts.thread_name(name),
                topic_intro=discord_posts.product_intro(name, permalink),
                product_id=ctx.review.product_id,
            )
        return DiscoursePost(
            raw=raw,
            hash=content_hash(raw) if raw else None,
            marker=marker(ctx.review.id),
            post_id=post.post_id if post else None,
            post_hash=post.content_hash if post else None,
            topic_id=(topic.topic_id or None) if topic else None,
            external_id=topic_external_id(self.prefix, ctx.review.product_id, topic.generation if topic else 1),
            topic_title=topic_title(name),
            topic_intro=topic_intro(name, permalink),
            category=target.category if target else "Reviews",
            category_color=target.category_color if target else "2E7D32",
            category_text_color=target.category_text_color if target else "FFFFFF",
            product_id=ctx.review.product_id,
        )

    def record(self, run: Run, rows: Sequence[OutboxRow], outcomes: Mapping[int, Outcome]) -> None:
        """Remember posts and topics written, and conflicts met."""
        for row in rows:
            outcome = outcomes.get(row.id or 0)
            if outcome is None or not outcome.ok:
                continue
            if outcome.conflict:
                product = outcome.data.get(TOPIC_CONFLICT)
                # The product's whole topic: one conflict for the product, which holds all its reviews.
                kind, target = ("topic", str(product)) if product else ("review", row.target)
                conflict_id = self.reviews.add_conflict(row.community, kind, target, outcome.conflict)
                run.report.conflicts += 1
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
                product = ctx.review.product_id
                topic = self.reviews.topic(row.community, product)
                external_id = topic_external_id(self.prefix, product, topic.generation if topic else 1)
                self.reviews.set_topic(row.community, product, external_id, data["topic_id"])
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
        if conflict.kind == "topic":
            return self._resolve_topic(conflict_id, conflict.community, conflict.target, keep)
        community, review_id = conflict.community, conflict.target
        adapter = self.communities.get(community)
        post = self.reviews.post(community, review_id)
        [ctx] = self.reviews.contexts([review_id])
        version: int | None = None
        if self.is_discord(community):
            # Only the author can edit a Discord message, so a Discord conflict is always a deletion.
            deleted, raw = True, ""
            topic = self.reviews.topic(community, ctx.review.product_id)
            if (
                keep == "shop"
                and topic is not None
                and isinstance(adapter, ThreadCheck)
                and not adapter.thread_exists(topic.topic_id)
            ):
                # The product's whole thread went: the review goes into a new one.
                self.reviews.forget_topic(community, ctx.review.product_id)
                self.state.remote_ids.set_remote_id(community, "thread", ctx.review.product_id, None)
        else:
            current = (
                adapter.read_post(post.post_id) if post and post.post_id and isinstance(adapter, PostReader) else None
            )
            deleted = current is None or current.deleted
            raw, version = (current.raw, current.version) if current else ("", None)
        if keep == "shop":
            if deleted:
                self.reviews.forget_post(community, review_id)
            else:
                # Adopt the forum's copy as the base, so the next pass edits it back to the shop's text.
                self.reviews.set_post(
                    community, review_id, content_hash=content_hash(raw), remote_version=version, state="posted"
                )
            return f"conflict {conflict_id}: the shop's review will be posted again on the next pass"
        wanted = content_hash(self.render(community, ctx)) if published(ctx.review, self.config.reviews) else None
        if deleted:
            self.reviews.set_post(community, review_id, content_hash=wanted, state="forum-deleted")
        else:
            self.reviews.set_post(community, review_id, content_hash=wanted, state="forum", remote_version=version)
        return f"conflict {conflict_id}: the forum's version stays until the review changes in the shop"

    def _resolve_topic(self, conflict_id: int, community: str, product_id: str, keep: str) -> str:
        """A moderator deleted the product's topic. ``keep="shop"``: a new topic is opened under the product's next
        external id (the deleted topic keeps the old one taken for good) and every review of the product is posted
        there again; ``"forum"``: the reviews stay off the forum until one changes in the shop."""
        review_ids = self.reviews.review_ids_of_product(product_id)
        if keep == "shop":
            generation = self.reviews.next_topic_generation(community, product_id)
            for review_id in review_ids:
                self.reviews.forget_post(community, review_id)
            return (
                f"conflict {conflict_id}: product {product_id}'s reviews go to a new topic "
                f"({topic_external_id(self.prefix, product_id, generation)}) on the next pass"
            )
        for ctx in self.reviews.contexts(review_ids):
            wanted = content_hash(self.render(community, ctx)) if published(ctx.review, self.config.reviews) else None
            self.reviews.set_post(community, ctx.review.id, content_hash=wanted, state="forum-deleted")
        return (
            f"conflict {conflict_id}: product {product_id}'s reviews stay off the forum until one changes in the shop"
        )


def _product_name(ctx: ReviewContext) -> str:
    return ctx.product.name if ctx.product else f"Product #{ctx.review.product_id}"
