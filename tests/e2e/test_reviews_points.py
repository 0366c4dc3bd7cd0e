"""Issue: shop reviews become forum posts marked as verified purchases; points per order and review, once."""

from __future__ import annotations

import re
import signal

import pytest

REVIEWS = """
[reviews]
forum = { category = "Reviews" }
[points]
per_order = 10
per_currency_unit = 0.1
per_review = 5
forum = { mode = "gamification" }
"""

HOSTILE = "<script>alert(1)</script> @everyone [quote]fake[/quote] [free keys](https://evil.example) #sale"


@pytest.fixture
def reviews_world(world):
    shop, forum = world.shop, world.forum
    world.write_config(extra=REVIEWS)
    world.key = shop.add_product("Elden Ring Steam Key", "199.00")
    world.card = shop.add_product("王者荣耀 点券 60元", "60.00")
    alice = shop.add_customer("alice@example.com", "Alice", "Liu")
    world.alice_order = shop.add_order(
        customer_id=alice, email="alice@example.com", items=[(world.key, 1)], status="completed"
    )
    world.bob_order = shop.add_order(email="bob@example.com", items=[(world.card, 1)], status="processing")
    forum.add_user("alice", "alice@example.com")
    forum.add_user("bob", "bob@example.com")
    world.r_alice = shop.add_review(
        world.key, "Alice", "alice@example.com", 5, "秒发货，卡密直接可用，好评！Works great."
    )
    world.r_stranger = shop.add_review(world.key, "Mallory", "mallory@example.com", 1, HOSTILE)
    world.r_bob = shop.add_review(world.card, "Bob", "bob@example.com", 4, "Arrived in two minutes, recharge worked.")
    return world


def review_posts(forum):
    """Review posts by topic title (the topic's first post is the connector's introduction)."""
    found = {}
    for topic in forum.topics():
        posts = [p for p in forum.posts_of_topic(topic["id"]) if p["post_number"] > 1 and not p.get("deleted_at")]
        found[topic["title"]] = posts
    return found


def post_of(forum, review_id):
    for posts in review_posts(forum).values():
        for post in posts:
            if f"cardbridge review {review_id}" in post["raw"]:
                return post
    return None


def test_one_topic_per_product_one_post_per_review_and_reruns_post_nothing(reviews_world):
    world = reviews_world
    run = world.cli("sync")
    assert run.code == 0, run.output
    posts = review_posts(world.forum)
    assert sorted(posts) == ["Verified reviews: Elden Ring Steam Key", "Verified reviews: 王者荣耀 点券 60元"]
    assert len(posts["Verified reviews: Elden Ring Steam Key"]) == 2
    assert len(posts["Verified reviews: 王者荣耀 点券 60元"]) == 1
    alice = post_of(world.forum, world.r_alice)
    assert "Verified purchase" in alice["raw"] and "alice" in alice["raw"] and "★★★★★" in alice["raw"]
    stranger = post_of(world.forum, world.r_stranger)
    assert "no paid order" in stranger["raw"] and "a shop customer" in stranger["raw"]
    assert all(p["username"] == "system" for ps in posts.values() for p in ps)  # never attributed to the reviewer
    world.forum.reset_log()
    again = world.cli("sync")
    assert again.code == 0, again.output
    assert world.forum.writes() == []


def test_hostile_review_text_arrives_inert(reviews_world):
    world = reviews_world
    assert world.cli("sync").code == 0
    post = post_of(world.forum, world.r_stranger)
    raw = post["raw"]
    assert "<script" not in raw and "&lt;script&gt;" in raw  # HTML shown as text
    assert "\\[quote\\]" in raw and "\\[free keys\\]" in raw  # BBCode and markdown links escaped
    assert "`@everyone`" in raw and "`#sale`" in raw  # mention and hashtag inert in code spans
    assert "`https://evil.example)`" in raw  # the link is text, not a link
    assert "<script" not in post["cooked"]


def test_shop_edit_updates_the_same_post_and_delete_removes_it(reviews_world):
    world = reviews_world
    assert world.cli("sync").code == 0
    before = post_of(world.forum, world.r_bob)
    world.shop.edit_review(world.r_bob, text="Arrived in two minutes. Update: second card also fine.")
    assert world.cli("sync").code == 0
    after = post_of(world.forum, world.r_bob)
    assert after["id"] == before["id"] and "second card also fine" in after["raw"]
    world.shop.edit_review(world.r_bob, status="hold")  # unapproved in the shop
    assert world.cli("sync").code == 0
    assert post_of(world.forum, world.r_bob) is None


def test_moderator_edit_becomes_a_conflict_not_an_overwrite(reviews_world):
    world = reviews_world
    assert world.cli("sync").code == 0
    post = post_of(world.forum, world.r_bob)
    world.forum.edit_post_by_hand(post["id"], post["raw"].replace("recharge worked", "recharge worked (edited by mod)"))
    world.shop.edit_review(world.r_bob, text="Changed my mind, it took an hour.")
    run = world.cli("sync")
    assert run.code == 0, run.output
    kept = world.forum.posts_of_topic(post["topic_id"])
    assert any("edited by mod" in p["raw"] for p in kept)
    listing = world.cli("conflicts")
    assert "edited on the forum" in listing.stdout
    match = re.search(r"│\s*(\d+)\s*│\s*forum", listing.stdout)
    conflict_id = match.group(1) if match else None
    status = world.cli("status", "--json").json()
    assert status["open_conflicts"] == 1
    assert conflict_id and conflict_id.isdigit(), listing.stdout
    assert world.cli("conflicts", "resolve", conflict_id, "--keep", "shop").code == 0
    assert world.cli("sync").code == 0
    assert "took an hour" in post_of(world.forum, world.r_bob)["raw"]
    assert world.cli("status", "--json").json()["open_conflicts"] == 0


def test_points_awarded_once_and_reversed_on_refund(reviews_world):
    world = reviews_world
    assert world.cli("sync").code == 0
    alice_id = world.forum.user("alice")["id"]
    events = world.forum.score_events(alice_id)
    # order 199.00 → 10 + floor(19.9) = 29; review → 5
    assert sorted(e["points"] for e in events) == [5, 29]
    assert world.cli("sync").code == 0
    assert len(world.forum.score_events(alice_id)) == 2  # awarded once
    world.shop.set_status(world.alice_order, "refunded")
    assert world.cli("sync").code == 0
    assert sorted(e["points"] for e in world.forum.score_events(alice_id)) == [-29, 5, 29]
    shown = world.cli("points", "show", "alice@example.com")
    assert shown.code == 0 and "Total: 5" in shown.stdout and "reversed" in shown.stdout


def test_a_registered_buyer_who_also_checks_out_as_a_guest_keeps_one_review_award(reviews_world):
    """Her review is found by email from both her account (c:ID) and her guest orders (e:EMAIL): its points are
    recorded once, and the pass does not fail on the second customer (it did: a duplicate ledger key)."""
    world = reviews_world
    assert world.cli("sync").code == 0
    world.shop.add_order(email="alice@example.com", items=[(world.card, 1)], status="processing")  # as a guest
    run = world.cli("sync")
    assert run.code == 0, run.output
    events = world.cli("points", "show", "alice@example.com", "--json").json()["events"]
    assert [e["key"] for e in events].count(f"review:{world.r_alice}") == 1


def test_crash_mid_pass_leaves_no_duplicate_post_or_score_event(reviews_world):
    world = reviews_world
    world.forum.knobs.add_fault(r"^/posts\.json$", kind="hang_after", method="POST", seconds=60)
    process = world.spawn("sync")
    assert world.forum.knobs.hung.wait(30)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    world.forum.knobs.clear_faults()
    world.forum.knobs.add_fault(r"score_events", kind="hang_after", method="POST", seconds=60)
    world.forum.knobs.hung.clear()
    process = world.spawn("sync")
    assert world.forum.knobs.hung.wait(30)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    world.forum.knobs.clear_faults()
    run = world.cli("sync")
    assert run.code == 0, run.output
    posts = review_posts(world.forum)
    assert sum(len(p) for p in posts.values()) == 3
    assert len(posts) == 2
    alice_id = world.forum.user("alice")["id"]
    assert sorted(e["points"] for e in world.forum.score_events(alice_id)) == [5, 29]


def test_moderation_hold_and_min_rating(reviews_world):
    world = reviews_world
    world.write_config(extra=REVIEWS.replace("[reviews]", "[reviews]\nhold = true\nmin_rating = 2"))
    assert world.cli("sync").code == 0
    assert review_posts(world.forum) == {}
    held = world.cli("reviews", "held")
    assert "3 review(s) held" in held.stdout
    assert world.cli("reviews", "approve", str(world.r_stranger), str(world.r_alice)).code == 0
    assert world.cli("sync").code == 0
    assert post_of(world.forum, world.r_alice) is not None
    assert post_of(world.forum, world.r_stranger) is None  # rated 1, below min_rating


def test_keep_forum_leaves_the_moderators_version_and_shop_delete_removes(reviews_world):
    world = reviews_world
    assert world.cli("sync").code == 0
    post = post_of(world.forum, world.r_alice)
    world.forum.edit_post_by_hand(post["id"], post["raw"] + "\n\n(moderator note: confirmed)")
    world.shop.edit_review(world.r_alice, text="Still works a week later.")
    assert world.cli("sync").code == 0
    [conflict] = [line for line in world.cli("conflicts").stdout.splitlines() if "edited on the forum" in line]
    conflict_id = re.search(r"│\s*(\d+)", conflict).group(1)
    assert world.cli("conflicts", "resolve", conflict_id, "--keep", "forum").code == 0
    world.forum.reset_log()
    assert world.cli("sync").code == 0
    assert any("moderator note" in p["raw"] for p in world.forum.posts_of_topic(post["topic_id"]))
    assert [w for w in world.forum.writes() if w["path"].startswith("/posts")] == []  # not overwritten
    world.shop.delete_review(world.r_stranger)
    assert world.cli("sync").code == 0
    assert post_of(world.forum, world.r_stranger) is None


def test_points_as_a_user_field_total(reviews_world):
    world = reviews_world
    field_id = world.forum.add_user_field("Shop points")
    world.write_config(
        extra=REVIEWS.replace(
            'forum = { mode = "gamification" }', f'forum = {{ mode = "user_field", user_field_id = {field_id} }}'
        )
    )
    assert world.cli("sync").code == 0
    assert str(world.forum.user("alice")["user_fields"][str(field_id)]) == "34"
    world.shop.set_status(world.alice_order, "refunded")
    assert world.cli("sync").code == 0
    assert str(world.forum.user("alice")["user_fields"][str(field_id)]) == "5"
