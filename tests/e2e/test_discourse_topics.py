"""Review topics the real forum treats differently: a moderator trashes one (its external id stays taken), product
names that break Discourse's title rules, and two products with the same name."""

from __future__ import annotations

import re
import sqlite3

import pytest

REVIEWS = """
[reviews]
forum = { category = "Reviews" }
"""


@pytest.fixture
def shop_world(world):
    world.write_config(extra=REVIEWS)
    world.key = world.shop.add_product("Elden Ring Steam Key", "199.00")
    world.card = world.shop.add_product("王者荣耀 点券 60元", "60.00")
    world.shop.add_order(email="alice@example.com", items=[(world.key, 1)], status="completed")
    world.forum.add_user("alice", "alice@example.com")
    world.r_alice = world.shop.add_review(world.key, "Alice", "alice@example.com", 5, "Key arrived at once, works.")
    world.r_mallory = world.shop.add_review(world.key, "Mallory", "m@example.com", 2, "Slow delivery this time.")
    world.r_bob = world.shop.add_review(world.card, "Bob", "bob@example.com", 4, "Recharge worked in two minutes.")
    return world


def live_topics(forum):
    return [t for t in forum.topics() if t["deleted_at"] is None]


def review_markers(forum, topic_id):
    """The review ids of the live review posts in a topic."""
    posts = [p for p in forum.posts_of_topic(topic_id) if p["post_number"] > 1 and p["deleted_at"] is None]
    return sorted(m.group(1) for p in posts for m in [re.search(r"cardbridge review (\S+?)<", p["raw"])] if m)


def status(world):
    return world.cli("status", "--json").json()


def test_a_trashed_review_topic_is_a_conflict_and_keep_shop_opens_a_new_topic_with_every_review(shop_world):
    world = shop_world
    assert world.cli("sync").code == 0
    [old] = [t for t in live_topics(world.forum) if "Elden Ring" in t["title"]]
    world.forum.delete_topic_by_hand(old["id"])  # a moderator deletes the product's whole topic
    world.r_carol = world.shop.add_review(world.key, "Carol", "carol@example.com", 5, "Second key worked too.")

    run = world.cli("sync")
    assert run.code == 0, run.output
    listing = world.cli("conflicts").stdout
    assert f"topic #{world.key}" in listing and "deleted" in listing, listing
    now = status(world)
    assert now["open_conflicts"] == 1 and now["outbox"]["dead"] == 0 and now["problems"] == [], now

    world.forum.reset_log()
    assert world.cli("sync").code == 0
    assert world.forum.writes() == []  # held while the conflict is open: no retry against the trashed topic

    conflict_id = re.search(r"│\s*(\d+)\s*│\s*forum\s*│\s*topic", listing).group(1)
    resolved = world.cli("conflicts", "resolve", conflict_id, "--keep", "shop")
    assert resolved.code == 0, resolved.output
    run = world.cli("sync")
    assert run.code == 0, run.output
    [new] = [t for t in live_topics(world.forum) if "Elden Ring" in t["title"]]
    assert new["id"] != old["id"] and new["external_id"] != old["external_id"]
    assert review_markers(world.forum, new["id"]) == sorted(
        str(r) for r in (world.r_alice, world.r_mallory, world.r_carol)
    )
    after = status(world)
    assert after["open_conflicts"] == 0 and after["outbox"]["dead"] == 0, after
    world.forum.reset_log()
    assert world.cli("sync").code == 0
    assert world.forum.writes() == []


def test_keep_forum_leaves_the_trashed_topic_alone(shop_world):
    world = shop_world
    assert world.cli("sync").code == 0
    [old] = [t for t in live_topics(world.forum) if "Elden Ring" in t["title"]]
    world.forum.delete_topic_by_hand(old["id"])
    world.shop.add_review(world.key, "Carol", "carol@example.com", 5, "Second key worked too.")
    assert world.cli("sync").code == 0
    listing = world.cli("conflicts").stdout
    conflict_id = re.search(r"│\s*(\d+)\s*│\s*forum\s*│\s*topic", listing).group(1)
    assert world.cli("conflicts", "resolve", conflict_id, "--keep", "forum").code == 0
    world.forum.reset_log()
    assert world.cli("sync").code == 0
    assert world.forum.writes() == []
    assert [t for t in live_topics(world.forum) if "Elden Ring" in t["title"]] == []
    assert status(world)["outbox"]["dead"] == 0


def test_product_names_that_break_title_rules_and_duplicate_names_still_get_topics(world):
    world.write_config(extra=REVIEWS)
    long_word = world.shop.add_product("Pneumonoultramicroscopicsilicovolcanoconiosis Deluxe Edition Key", "9.00")
    shouting = world.shop.add_product("GTA V PREMIUM ONLINE EDITION", "19.00")
    first = world.shop.add_product("Steam Wallet Code", "50.00")
    second = world.shop.add_product("Steam Wallet Code", "100.00")
    long_cjk = world.shop.add_product("王者荣耀" * 9 + "点券", "60.00")
    reviews = {
        product: world.shop.add_review(product, "Dana", "dana@example.com", 5, "Delivered at once, works fine.")
        for product in (long_word, shouting, first, second, long_cjk)
    }
    run = world.cli("sync")
    assert run.code == 0, run.output
    topics = live_topics(world.forum)
    assert len(topics) == 5, [t["title"] for t in topics]
    found = sorted(marker for t in topics for marker in review_markers(world.forum, t["id"]))
    assert found == sorted(str(r) for r in reviews.values())
    assert len({t["title"].lower() for t in topics}) == 5
    now = status(world)
    assert now["outbox"]["dead"] == 0 and now["open_conflicts"] == 0, now


def test_an_edit_to_a_review_in_a_trashed_topic_is_a_conflict_not_an_invisible_edit(shop_world):
    world = shop_world
    assert world.cli("sync").code == 0
    [old] = [t for t in live_topics(world.forum) if "Elden Ring" in t["title"]]
    world.forum.delete_topic_by_hand(old["id"])
    world.shop.edit_review(world.r_alice, text="Key arrived at once, still works a month later.")
    run = world.cli("sync")
    assert run.code == 0, run.output
    assert f"topic #{world.key}" in world.cli("conflicts").stdout
    edited = [p for p in world.forum.posts_of_topic(old["id"]) if "a month later" in p["raw"]]
    assert edited == []  # nothing written where nobody can see it


def test_conflicts_show_shop_ids_and_forum_words_as_text(shop_world):
    world = shop_world
    assert world.cli("sync").code == 0
    with sqlite3.connect(world.db_path) as db:
        db.execute(
            "INSERT INTO conflicts (community, kind, target, reason, status, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            ("forum", "topic", "[VIP]", "the forum said [/] and [bold]no[/bold]", "open", "2026-11-30 12:00:00"),
        )
    listing = world.cli("conflicts")
    assert listing.code == 0, listing.output
    assert "topic #[VIP]" in listing.stdout and "[/] and [bold]no[/bold]" in listing.stdout
