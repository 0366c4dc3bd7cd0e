"""The product card and announcements as pure functions: what the card shows, when an edit is due (coalescing),
what counts as a price drop, and that a name's mentions are inert."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from mappings.products import (
    AnnouncementView,
    CardView,
    card_op,
    content_hash,
    drop_percent,
    render_announcement,
    render_announcement_discord,
    render_card,
    render_card_discord,
)

HOUR = timedelta(hours=1)
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def view(**changes):
    base = {
        "product_id": "12",
        "name": "王者荣耀 点券 60元",
        "permalink": "https://shop.example.com/product/wzry/",
        "price": "60.00",
        "currency": None,
        "in_stock": True,
        "stock_count": None,
        "reviews": 3,
        "rating": Decimal("4.3"),
        "verified_buyers": 17,
    }
    return CardView(**{**base, **changes})


def test_the_card_shows_name_price_stock_rating_buyers_and_the_buy_link():
    raw = render_card(view())
    assert raw.splitlines()[0] == "## 王者荣耀 点券 60元"
    assert "**Price:** 60\\.00" in raw and "✅ in stock" in raw
    assert "★ 4.3/5 from 3 reviews" in raw and "17 verified buyers" in raw
    assert "[Buy in the shop](https://shop.example.com/product/wzry/)" in raw
    sold_out = render_card(view(in_stock=False, stock_count=0, reviews=0, rating=None, verified_buyers=1))
    assert "❌ sold out" in sold_out and "no reviews yet" in sold_out and "1 verified buyer" in sold_out
    assert "stock: ask the shop" in render_card(view(in_stock=None))
    assert "✅ in stock (7 left)" in render_card(view(stock_count=7))
    discord = render_card_discord(view(price="25", currency="USD"))
    assert "Price: 25 USD" in discord and "<https://shop.example.com/product/wzry/>" in discord
    assert len(render_card_discord(view(name="长" * 5000))) < 2000


def test_mentions_in_a_product_name_ping_nobody():
    for raw in (
        render_card(view(name="Gift @admin @everyone")),
        render_announcement(AnnouncementView(1, "new", "Gift @admin @everyone", None, None, "5.00", None)),
    ):
        assert "`@admin`" in raw and "`@everyone`" in raw
        assert not re.search(r"(?<!`)@(admin|everyone)", raw)
    discord = render_announcement_discord(AnnouncementView(1, "new", "Gift @everyone <@123>", None, None, "5", None))
    # Discord: a mass mention broken by a zero-width space, a user mention shown literally (and the messages go with
    # allowed_mentions {"parse": []} besides)
    assert "@everyone" not in discord and "@\u200beveryone" in discord and "\\<@123\\>" in discord


def test_twenty_price_changes_within_the_period_edit_the_card_once_then_once_more_with_the_last_price():
    written_hash, written_at = content_hash(render_card(view())), T0
    edits: list[str] = []
    now = T0 + HOUR  # the card was written an hour ago: the first change may edit at once
    for step in range(1, 21):
        now += timedelta(minutes=2)  # twenty changes within 40 minutes
        raw = render_card(view(price=f"{60 + step}.00"))
        op = card_op(content_hash(raw), written_hash, written_at, now, HOUR)
        if op == "edit":
            edits.append(raw)
            written_hash, written_at = content_hash(raw), now
    assert len(edits) == 1 and "61\\.00" in edits[0]
    later = written_at + HOUR
    last = render_card(view(price="80.00"))
    assert card_op(content_hash(last), written_hash, written_at, later, HOUR) == "edit"
    assert card_op(content_hash(last), content_hash(last), later, later + 5 * HOUR, HOUR) is None  # nothing new
    assert card_op(content_hash(last), None, None, T0, HOUR) == "create"


def test_a_price_drop_in_percent():
    assert drop_percent("189.00", "149.00") == Decimal("21.2")
    assert drop_percent("100", "95") == Decimal("5.0")
    assert drop_percent("100", "100") is None and drop_percent("100", "120") is None
    assert drop_percent(None, "5") is None and drop_percent("0", "0") is None
    raw = render_announcement(AnnouncementView(4, "price_drop", "Key", "https://s/p", "189.00", "149.00", None))
    assert "now 149\\.00" in raw and "was 189\\.00" in raw and "21.2%" in raw
