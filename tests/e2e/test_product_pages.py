"""Product pages over loopback (WooCommerce sandbox → forum sandbox, through ``cardbridge sync`` runs): the card is
the first post of the product's topic, edited in place without bumping it, at most once per ``card_edit_every``
(the last value wins); announcements are posted once per event, within the daily cap, and ping nobody."""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime, timedelta

import pytest

PRODUCTS = """
[reviews]
forum = { category = "Reviews" }

[products]
cards = ["forum"]
card_edit_every = 3600

[products.announce]
forum = { category = "Shop news", price_drop_percent = 10, max_per_day = 2 }
"""


@pytest.fixture
def shop_world(world):
    world.write_config(extra=PRODUCTS)
    world.key = world.shop.add_product("Elden Ring Steam Key", "199.00")
    world.points = world.shop.add_product("王者荣耀 点券 60元", "60.00")
    world.shop.add_order(email="alice@example.com", items=[(world.key, 1)], status="completed")
    world.shop.add_order(email="bob@example.com", items=[(world.key, 1)], status="completed")
    world.shop.add_order(email="carol@example.com", items=[(world.key, 1)], status="pending")
    return world


def sync(world):
    run = world.cli("sync")
    assert run.code == 0, run.output
    return run


def product_topic(world, name):
    [topic] = [
        t
        for t in world.forum.topics()
        if name in t["title"] and t["deleted_at"] is None and "-product-" in (t["external_id"] or "")
    ]
    return topic


def card_of(world, name):
    topic = product_topic(world, name)
    return world.forum.posts_of_topic(topic["id"])[0]


def an_hour_passes(world):
    """The coalescing period runs out: every card's last write is moved an hour back in the state store."""
    with sqlite3.connect(world.db_path) as db:
        rows = db.execute("SELECT community, product_id, written_at FROM product_cards").fetchall()
        for community, product, written in rows:
            earlier = datetime.fromisoformat(written) - timedelta(hours=1, seconds=1)
            db.execute(
                "UPDATE product_cards SET written_at = ? WHERE community = ? AND product_id = ?",
                (earlier.isoformat(sep=" "), community, product),
            )


def card_edits(world):
    return world.forum.count("PUT", r"^/posts/\d+")


def announcements(world):
    with world.forum.state.lock:
        news = [c for c in world.forum.state.categories.values() if c["name"] == "Shop news"]
    if not news:
        return []
    return [t for t in world.forum.topics() if t["category_id"] == news[0]["id"] and t["deleted_at"] is None]


def test_the_card_shows_the_product_and_coalesces_twenty_price_changes_into_one_edit(shop_world):
    world = shop_world
    sync(world)
    card = card_of(world, "Elden Ring")
    assert card["post_number"] == 1 and card["username"] == "system"
    raw = card["raw"]
    assert "## Elden Ring Steam Key" in raw and "**Price:** 199\\.00" in raw
    assert "✅ in stock" in raw and "no reviews yet" in raw
    assert "2 verified buyers" in raw  # the pending order is not a purchase
    assert f"(https://shop.example.com/product/product-{world.key}/)" in raw
    assert announcements(world) == []  # the catalogue as found is the baseline: nothing to announce
    topic_before = product_topic(world, "王者荣耀")

    an_hour_passes(world)
    world.forum.reset_log()
    prices = [f"{60 + step}.00" for step in range(1, 21)]  # 20 changes, all rises: no price-drop announcement
    for price in prices:
        world.shop.set_price(world.points, price)
        sync(world)
    assert card_edits(world) == 1  # the first change edited the card; the other 19 wait for the period to end
    assert "61\\.00" in card_of(world, "王者荣耀")["raw"]

    an_hour_passes(world)
    sync(world)
    assert card_edits(world) == 2
    card = card_of(world, "王者荣耀")
    assert "80\\.00" in card["raw"] and "61\\.00" not in card["raw"]  # the last value won
    topic = product_topic(world, "王者荣耀")
    assert topic["bumped_at"] == topic_before["bumped_at"]  # edited in place: the topic did not rise
    assert len(world.forum.posts_of_topic(topic["id"])) == 1  # and no new post
    assert announcements(world) == []

    world.forum.reset_log()
    sync(world)
    assert world.forum.writes() == []  # nothing changed: nothing written


def test_sold_out_then_back_in_stock_announces_once_within_the_daily_cap_and_pings_nobody(shop_world):
    world = shop_world
    sync(world)
    an_hour_passes(world)
    world.shop.set_stock(world.key, 0)
    sync(world)
    assert "❌ sold out" in card_of(world, "Elden Ring")["raw"]
    assert announcements(world) == []  # selling out is no news
    sync(world)
    assert announcements(world) == []

    world.shop.set_stock(world.key, 4)
    sync(world)
    sync(world)
    [restock] = announcements(world)
    assert restock["title"].startswith("Back in stock") and "Elden Ring" in restock["title"]
    assert "✅ in stock (4 left)" not in card_of(world, "Elden Ring")["raw"]  # the card waits for its period

    # three new products in a day whose cap is 2 (the restock was one): one more announcement, two dropped
    for name in ("Netflix @admin 月卡", "Spotify Premium @everyone", "网易云 年卡"):
        world.shop.add_product(name, "25.00")
    run = sync(world)
    assert "daily cap" in run.output
    found = announcements(world)
    assert len(found) == 2 and sum(t["title"].startswith("New in the shop") for t in found) == 1
    sync(world)
    assert len(announcements(world)) == 2  # dropped events are not planned again

    new = next(t for t in found if t["title"].startswith("New in the shop"))
    raw = world.forum.posts_of_topic(new["id"])[0]["raw"]
    assert "`@admin`" in raw  # a mention in a product's name is inert (a code span)
    assert not re.search(r"(?<!`)@(admin|everyone)\b", raw)
    for topic in world.forum.topics():
        for post in world.forum.posts_of_topic(topic["id"]):
            assert not re.search(r"(?<!`)@(admin|everyone)\b", post["raw"]), post["raw"]


def test_a_price_drop_of_x_percent_is_announced_and_a_smaller_one_is_not(shop_world):
    world = shop_world
    sync(world)
    world.shop.set_price(world.key, "189.00")  # −5 %
    sync(world)
    assert announcements(world) == []
    world.shop.set_price(world.key, "149.00")  # −21.2 % from 189.00
    sync(world)
    sync(world)
    [drop] = announcements(world)
    raw = world.forum.posts_of_topic(drop["id"])[0]["raw"]
    assert drop["title"].startswith("Price drop") and "149\\.00" in raw and "189\\.00" in raw and "21.2%" in raw


def test_reviews_and_the_card_share_the_topic_and_a_moderators_edit_of_the_card_is_a_conflict(shop_world):
    world = shop_world
    world.forum.add_user("alice", "alice@example.com")
    world.shop.add_review(world.key, "Alice", "alice@example.com", 5, "Key arrived at once, works.")
    world.shop.add_review(world.key, "Mallory", "m@example.com", 4, "Fine.")
    sync(world)
    topic = product_topic(world, "Elden Ring")
    posts = world.forum.posts_of_topic(topic["id"])
    assert len(posts) == 3 and "cardbridge product" in posts[0]["raw"]  # the card first, then the two reviews
    assert "★ 4.5/5 from 2 reviews" in posts[0]["raw"]

    world.forum.edit_post_by_hand(posts[0]["id"], posts[0]["raw"] + "\n\nPinned by the moderators.")
    an_hour_passes(world)
    world.shop.set_price(world.key, "205.00")
    sync(world)
    listing = world.cli("conflicts").stdout
    assert f"card #{world.key}" in listing and "edited on the forum" in listing, listing
    assert "205" not in card_of(world, "Elden Ring")["raw"]  # the moderator's card is not overwritten
    world.forum.reset_log()
    sync(world)
    assert world.forum.count("PUT", r"^/posts/") == 0  # held while the conflict is open

    conflict_id = re.search(r"│\s*(\d+)\s*│\s*forum\s*│\s*card", listing).group(1)
    resolved = world.cli("conflicts", "resolve", conflict_id, "--keep", "shop")
    assert resolved.code == 0, resolved.output
    sync(world)
    raw = card_of(world, "Elden Ring")["raw"]
    assert "205\\.00" in raw and "Pinned by the moderators" not in raw


def test_a_community_that_starts_announcing_gets_no_backlog_of_old_news(world):
    world.write_config(extra=PRODUCTS.split("[products.announce]")[0])  # cards, no announcements yet
    key = world.shop.add_product("Elden Ring Steam Key", "199.00")
    sync(world)
    world.shop.add_product("Netflix 月卡", "25.00")
    world.shop.set_price(key, "99.00")
    sync(world)  # two events, and nobody announces them
    world.write_config(extra=PRODUCTS)
    sync(world)
    assert announcements(world) == []
    world.shop.add_product("Spotify Premium", "11.00")
    sync(world)
    [new] = announcements(world)
    assert new["title"] == "New in the shop: Spotify Premium"
