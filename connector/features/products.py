"""Product pages (商家入驻): the shop's catalogue read each pass, a product card on each product's page, and
announcements of new products, restocks and price drops.

The card is the first post of the product's review topic on Discourse (the starter message of its thread on
Discord). It is edited in place when the price, the stock or the rating change, at most once every
``[products] card_edit_every`` seconds: a change within the period waits, and the edit that follows is built from the
store as it is then (the last value wins). A moderator's edit of the card is a conflict, as for reviews.

Announcements are opt-in per community (``[products.announce]``). Each event (a row of ``product_events``) is planned
once per community, its id in the outbox target, so it is posted once; at most ``max_per_day`` are planned a UTC day,
the rest are dropped with a log line (an announcement a day late is no news). The first catalogue read is a baseline:
a shop connected today announces nothing it already sold yesterday.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from adapters.base import Catalogue, CommunityAdapter, Outcome, PostReader
from connector.core.clock import utcnow
from connector.core.config import Config
from connector.core.grants import GrantKey
from connector.core.http import describe_error
from connector.core.logs import log
from connector.core.payloads import Announcement, Payload, ProductCard, Skip
from connector.core.products_config import AnnounceTarget
from connector.features.base import PlanBatch, Run
from connector.state import State
from connector.state.planning import NewAction
from connector.state.products import PRICE_DROP, ProductFacts
from connector.state.tables import OutboxRow, ProductEventRow
from mappings import discord_posts
from mappings.products import (
    AnnouncementView,
    CardView,
    announcement_marker,
    announcement_title,
    card_op,
    content_hash,
    drop_percent,
    render_announcement,
    render_announcement_discord,
    render_card,
    render_card_discord,
)
from mappings.reviews import topic_external_id, topic_title

#: Product actions are not a customer's; their outbox rows use this owner (as reviews do).
SHOP = "shop"
CARD, ANNOUNCEMENT = "product_card", "announcement"
#: Conflict kind of a moderator's edit of a card.
CARD_CONFLICT = "card"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _cursor(community: str) -> str:
    """The stream under which the last event planned for a community is kept."""
    return f"announce:{community}"


class ProductsFeature:
    kinds = frozenset({CARD, ANNOUNCEMENT})

    def __init__(self, state: State, config: Config, communities: Mapping[str, CommunityAdapter]) -> None:
        self.state, self.config, self.communities = state, config, communities
        self.products = state.products
        self._baseline = 0

    @property
    def prefix(self) -> str:
        return self.config.reviews.topic_prefix if self.config.reviews else "shop"

    # ---- prepare: read the catalogue, plan cards and announcements ------------------------------------------------

    def prepare(self, run: Run) -> None:
        settings = self.config.products
        if settings is None:
            return
        shop_failed = any(line.startswith("shop:") for line in run.report.errors)
        #: A community that starts announcing starts after the events so far (no backlog of old news).
        self._baseline = self.products.last_event_id()
        if run.options.order_ids is None and not shop_failed and isinstance(run.shop, Catalogue):
            try:
                self._read(run.shop)
            except Exception as error:  # as the order pull: one line, the pass goes on with what is stored
                reason = describe_error(error)
                run.report.errors.append(f"shop: {reason}")
                log.error("catalogue read failed", error=reason)
        now = utcnow()
        cursors: dict[str, str] = {}
        new = self._plan_cards(run, now) + self._plan_announcements(now, cursors)
        run.report.actions_planned += len(new)
        if new:
            self.state.plans.apply_plan([], new, [], [])
        # after the plan: a crash in between plans the events again, and an announcement finds its topic by its
        # external id instead of posting twice
        for stream, value in cursors.items():
            self.state.records.set_cursor(stream, value)

    def _read(self, shop: Catalogue) -> None:
        events = self.products.any_listed()  # the first read is the baseline
        seen: set[str] = set()
        for page in shop.catalogue():
            self.products.save_catalogue(page, events)
            seen.update(product.id for product in page)
        self.products.mark_unlisted(seen)

    def _plan_cards(self, run: Run, now: datetime) -> list[NewAction]:
        settings = self.config.products
        assert settings is not None
        every = timedelta(seconds=settings.card_edit_every)
        open_conflicts = {(c.community, c.target) for c in self.state.reviews.conflicts() if c.kind == CARD_CONFLICT}
        new: list[NewAction] = []
        for product_id in self.products.listed_ids():
            facts = self.products.facts(product_id)
            if facts is None:
                continue
            for community in settings.cards:
                if community not in self.communities or (community, product_id) in open_conflicts:
                    continue
                if self.state.outbox.open_actions(community, SHOP, CARD, product_id):
                    continue  # the action in flight is built from the store when it goes: it carries the change
                card = self.products.card(community, product_id)
                if card is not None and card.state == "forum":
                    continue  # an admin kept the moderator's card
                desired = content_hash(self.render(community, facts))
                op = card_op(
                    desired, card.content_hash if card else None, card.written_at if card else None, now, every
                )
                if op is not None:
                    new.append(NewAction(community, SHOP, GrantKey(CARD, product_id), op, None))
        return new

    def _plan_announcements(self, now: datetime, cursors: dict[str, str]) -> list[NewAction]:
        settings = self.config.products
        assert settings is not None
        new: list[NewAction] = []
        for community, target in settings.announce.items():
            if community not in self.communities:
                continue
            stream = _cursor(community)
            stored = self.state.records.get_cursor(stream)
            last = int(stored) if stored is not None else self._baseline
            if stored is None:
                cursors[stream] = str(last)
            events = self.products.events_after(last)
            if not events:
                continue
            day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
            sent = self.state.outbox.count_since(community, ANNOUNCEMENT, day)
            for event in events:
                if not self._wanted(event, target):
                    continue
                if sent >= target.max_per_day:
                    log.info(
                        "announcement dropped: daily cap reached",
                        community=community,
                        product_event=event.id,
                        kind=event.kind,
                        product=event.product_id,
                        max_per_day=target.max_per_day,
                    )
                    continue
                sent += 1
                new.append(NewAction(community, SHOP, GrantKey(ANNOUNCEMENT, str(event.id)), "create", None))
            cursors[stream] = str(events[-1].id)
        return new

    @staticmethod
    def _wanted(event: ProductEventRow, target: AnnounceTarget) -> bool:
        if event.kind not in target.events:
            return False
        if event.kind == PRICE_DROP:
            percent = drop_percent(event.old_price, event.new_price)
            return percent is not None and percent >= target.price_drop_percent
        return True

    def plan(self, run: Run, batch: PlanBatch) -> None:
        return None  # products are planned per product, in prepare

    # ---- rendering -----------------------------------------------------------------------------------------------

    def is_discord(self, community: str) -> bool:
        target = self.config.communities.get(community)
        return target is not None and target.kind == "discord"

    def render(self, community: str, facts: ProductFacts) -> str:
        view = CardView(
            facts.id,
            facts.name,
            facts.permalink,
            facts.price,
            facts.currency,
            facts.in_stock,
            facts.stock_count,
            facts.reviews,
            facts.rating,
            facts.verified_buyers,
        )
        return render_card_discord(view) if self.is_discord(community) else render_card(view)

    # ---- deliver -------------------------------------------------------------------------------------------------

    def payload(self, row: OutboxRow) -> Payload:
        if row.kind == CARD:
            return self._card_payload(row)
        return self._announcement_payload(row)

    def _card_payload(self, row: OutboxRow) -> Payload:
        community, product_id = row.community, row.target
        facts = self.products.facts(product_id)
        if facts is None:
            return Skip()
        card = self.products.card(community, product_id)
        raw = self.render(community, facts)
        if card is not None and card.content_hash == content_hash(raw):
            return Skip()  # the card already shows this
        target = self.config.reviews.communities.get(community) if self.config.reviews else None
        topic = self.state.reviews.topic(community, product_id)
        topic_id = card.topic_id if card and card.topic_id else (topic.topic_id or None) if topic else None
        if self.is_discord(community):
            return ProductCard(
                raw=raw,
                hash=content_hash(raw),
                written_hash=card.content_hash if card else None,
                post_id=card.post_id if card else None,
                topic_id=topic_id,
                product_id=product_id,
                forum_channel=target.forum_channel if target else None,
                tags=list(target.tags) if target else [],
                thread_name=discord_posts.thread_name(facts.name),
            )
        return ProductCard(
            raw=raw,
            hash=content_hash(raw),
            written_hash=card.content_hash if card else None,
            post_id=card.post_id if card else None,
            topic_id=topic_id,
            product_id=product_id,
            external_id=topic_external_id(self.prefix, product_id, topic.generation if topic else 1),
            topic_title=topic_title(facts.name),
            category=target.category if target else "Reviews",
            category_color=target.category_color if target else "2E7D32",
            category_text_color=target.category_text_color if target else "FFFFFF",
        )

    def _announcement_payload(self, row: OutboxRow) -> Payload:
        settings = self.config.products
        target = settings.announce.get(row.community) if settings else None
        event = self.products.event(int(row.target))
        facts = self.products.facts(event.product_id) if event else None
        if target is None or event is None or facts is None:
            return Skip()
        view = AnnouncementView(
            event.id or 0, event.kind, facts.name, facts.permalink, event.old_price, event.new_price, facts.currency
        )
        discord = self.is_discord(row.community)
        return Announcement(
            raw=render_announcement_discord(view) if discord else render_announcement(view),
            title=announcement_title(view),
            marker=announcement_marker(view.event_id),
            event_id=view.event_id,
            # deterministic: the event's id, so a retry finds the topic instead of announcing twice
            external_id=f"{self.prefix}-announce-{view.event_id}",
            category=target.category,
            channel=target.channel,
        )

    def record(self, run: Run, rows: Sequence[OutboxRow], outcomes: Mapping[int, Outcome]) -> None:
        for row in rows:
            outcome = outcomes.get(row.id or 0)
            if outcome is None or not outcome.ok or row.kind != CARD:
                continue
            if outcome.conflict:
                conflict_id = self.state.reviews.add_conflict(
                    row.community, CARD_CONFLICT, row.target, outcome.conflict
                )
                run.report.conflicts += 1
                log.warning(
                    "conflict", community=row.community, product=row.target, id=conflict_id, reason=outcome.conflict
                )
                continue
            data = outcome.data
            if not data.get("content_hash"):
                continue
            topic_id = str(data.get("topic_id") or "") or None
            self.products.save_card(
                row.community, row.target, str(data["content_hash"]), topic_id, str(data.get("post_id") or "") or None
            )
            if (
                topic_id
                and self.state.reviews.topic(row.community, row.target) is None
                and not self.is_discord(row.community)
            ):
                # the reviews post into the topic the card opened
                external_id = topic_external_id(self.prefix, row.target)
                self.state.reviews.set_topic(row.community, row.target, external_id, topic_id)

    def describe(self, row: OutboxRow) -> str | None:
        payload = self.payload(row)
        if isinstance(payload, Skip):
            return "nothing (the card already shows this)"
        return payload.raw if isinstance(payload, ProductCard | Announcement) else None

    # ---- conflicts -----------------------------------------------------------------------------------------------

    def resolve(self, community: str, product_id: str, keep: str) -> str:
        """``keep="shop"``: the next pass writes the shop's card over the moderator's; ``"forum"``: the moderator's
        card stays, and CardBridge no longer edits it."""
        card = self.products.card(community, product_id)
        adapter = self.communities.get(community)
        if keep == "forum":
            self.products.set_card(community, product_id, state="forum")
            return f"the product card of {product_id} on {community} is left as the forum has it"
        current = adapter.read_post(card.post_id) if card and card.post_id and isinstance(adapter, PostReader) else None
        if current is None or current.deleted:
            self.products.forget_card(community, product_id)
        else:
            # the forum's copy becomes the base, and the period is over: the next pass edits it back
            self.products.set_card(
                community, product_id, content_hash=content_hash(current.raw), written_at=_EPOCH, state="posted"
            )
        return f"the shop's product card of {product_id} goes back up on {community} on the next pass"
