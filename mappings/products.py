"""Pure translation of a shop's catalogue into the community: the product card, when it may be edited, and the
announcements of what happened to a product.

Product names are shop text, escaped as review text is (:func:`mappings.reviews.escape_discourse`,
:func:`mappings.discord_posts.escape_discord`): an ``@name`` in a product's name is put in a code span on Discourse,
so it mentions nobody; Discord messages go with ``allowed_mentions: {"parse": []}`` besides.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from mappings.discord_posts import escape_discord
from mappings.reviews import escape_discourse

CardOp = Literal["create", "edit"]


@dataclass(frozen=True)
class CardView:
    """What a product card shows; None for what the shop does not say."""

    product_id: str
    name: str
    permalink: str | None
    price: str | None
    currency: str | None
    in_stock: bool | None
    stock_count: int | None
    reviews: int
    rating: Decimal | None
    verified_buyers: int


def card_marker(product_id: str) -> str:
    """The card's last line: says what the post is, and finds it again."""
    return f"cardbridge product {product_id}"


def price_text(price: str | None, currency: str | None) -> str:
    if price is None:
        return "price on the shop's page"
    return f"{price} {currency}" if currency else price


def stock_text(in_stock: bool | None, count: int | None) -> str:
    if in_stock is None:
        return "stock: ask the shop"
    if not in_stock:
        return "❌ sold out"
    return f"✅ in stock ({count} left)" if count is not None else "✅ in stock"


def rating_text(reviews: int, rating: Decimal | None) -> str:
    if not reviews or rating is None:
        return "no reviews yet"
    return f"★ {rating}/5 from {reviews} review{'s' if reviews != 1 else ''}"


def buyers_text(count: int) -> str:
    return f"{count} verified buyer{'s' if count != 1 else ''}"


def render_card(view: CardView) -> str:
    """The card as the first post of the product's Discourse topic (markdown)."""
    lines = [
        f"## {escape_discourse(view.name)}",
        "",
        f"**Price:** {escape_discourse(price_text(view.price, view.currency))}",
        f"**Stock:** {stock_text(view.in_stock, view.stock_count)}",
        f"**Rating:** {rating_text(view.reviews, view.rating)}",
        f"**Buyers:** {buyers_text(view.verified_buyers)}",
    ]
    if view.permalink:
        lines += ["", f"[Buy in the shop]({view.permalink})"]
    lines += [
        "",
        "Reviews from the shop follow below, posted by CardBridge.",
        "",
        f"<small>{card_marker(view.product_id)}</small>",
    ]
    return "\n".join(lines)


def render_card_discord(view: CardView) -> str:
    """The card as the starter message of the product's Discord thread (well under 2000 characters)."""
    lines = [
        f"**{escape_discord(view.name)[:300]}**",
        f"Price: {escape_discord(price_text(view.price, view.currency))}",
        stock_text(view.in_stock, view.stock_count),
        rating_text(view.reviews, view.rating),
        buyers_text(view.verified_buyers),
    ]
    if view.permalink:
        lines.append(f"Buy: <{view.permalink}>")
    lines.append(f"-# {card_marker(view.product_id)}")
    return "\n".join(lines)


def content_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def card_op(
    desired_hash: str,
    written_hash: str | None,
    written_at: datetime | None,
    now: datetime,
    every: timedelta,
) -> CardOp | None:
    """Which action the card needs now: ``create`` when there is none, ``edit`` when it shows something else and
    the last write is at least ``every`` ago, None otherwise (a change within the period waits: coalesced, and the
    edit that follows is built from the store as it is then, so the last value wins)."""
    if written_hash is None or written_at is None:
        return "create"
    if desired_hash == written_hash:
        return None
    return "edit" if now - written_at >= every else None


def drop_percent(old: str | None, new: str | None) -> Decimal | None:
    """How much cheaper, in percent (one decimal), or None when it is not a drop."""
    if old is None or new is None:
        return None
    before, after = Decimal(old), Decimal(new)
    if before <= 0 or after >= before:
        return None
    return ((before - after) * 100 / before).quantize(Decimal("0.1"))


@dataclass(frozen=True)
class AnnouncementView:
    event_id: int
    kind: str
    name: str
    permalink: str | None
    old_price: str | None
    new_price: str | None
    currency: str | None


def announcement_title(view: AnnouncementView) -> str:
    """A Discourse topic title (the name is cut so the title stays within 255 characters)."""
    name = view.name[:180]
    if view.kind == "new":
        return f"New in the shop: {name}"
    if view.kind == "restock":
        return f"Back in stock: {name}"
    return f"Price drop: {name}"


def _what(view: AnnouncementView, escape: object) -> str:
    esc = escape_discourse if escape == "discourse" else escape_discord
    name = esc(view.name)
    if view.kind == "new":
        return f"**{name}** is new in the shop, at {esc(price_text(view.new_price, view.currency))}."
    if view.kind == "restock":
        return f"**{name}** is back in stock."
    percent = drop_percent(view.old_price, view.new_price)
    return (
        f"**{name}** is now {esc(price_text(view.new_price, view.currency))} "
        f"(was {esc(price_text(view.old_price, view.currency))}, −{percent}%)."
    )


def announcement_marker(event_id: int) -> str:
    return f"cardbridge announcement {event_id}"


def render_announcement(view: AnnouncementView) -> str:
    """The announcement as a Discourse topic's first post."""
    lines = [_what(view, "discourse")]
    if view.permalink:
        lines += ["", f"[Buy in the shop]({view.permalink})"]
    lines += ["", f"<small>{announcement_marker(view.event_id)}</small>"]
    return "\n".join(lines)


def render_announcement_discord(view: AnnouncementView) -> str:
    lines = [_what(view, "discord")]
    if view.permalink:
        lines.append(f"<{view.permalink}>")
    return "\n".join(lines)
