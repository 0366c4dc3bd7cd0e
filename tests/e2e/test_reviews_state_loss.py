"""Issue 13: a lost or a second state store never posts a review twice.

Discourse takes no idempotency key and lets an admin post the same text again (``unique_post_validator`` skips staff);
only ``PostsController#create``'s 120-second memo of identical API requests would hide a second post, so each test
moves the forum's clock an hour on before the next pass, as a real restart would be.
"""

from __future__ import annotations

import re

from sandbox.discourse.posts import add_post

REVIEWS = """
[reviews]
forum = { category = "Reviews" }
"""

MARKER = re.compile(r"^<small>cardbridge review (.+)</small>$", re.MULTILINE)


def lose_state(world) -> None:
    for suffix in ("", "-wal", "-shm"):
        world.db_path.with_name(world.db_path.name + suffix).unlink(missing_ok=True)


def an_hour_later(world) -> None:
    """The forum's clock moves on past the post-creation memo (and the minute of the rate limit)."""
    before = world.forum.clock
    world.forum.clock = lambda: before() + 3600


def reviews_on_forum(world) -> list[str]:
    """The review ids the API user's live posts carry, one entry per post."""
    found: list[str] = []
    for topic in world.forum.topics():
        for post in world.forum.posts_of_topic(topic["id"]):
            if post["deleted_at"] is None and post["username"] == "system":
                found += MARKER.findall(post["raw"])
    return sorted(found)


def setup_shop(world, reviews_per_product: int = 1) -> list[str]:
    shop = world.shop
    world.write_config(extra=REVIEWS)
    key = shop.add_product("Elden Ring Steam Key", "199.00")
    card = shop.add_product("王者荣耀 点券 60元", "60.00")
    ids = []
    for n in range(reviews_per_product):
        ids.append(shop.add_review(key, f"Buyer {n}", f"buyer{n}@example.com", 5, f"Key {n} worked at once."))
        ids.append(shop.add_review(card, f"Buyer {n}", f"buyer{n}@example.com", 4, f"点券 {n} 秒到，好评"))
    return sorted(str(i) for i in ids)


def test_a_lost_state_store_posts_no_review_twice(world):
    reviews = setup_shop(world)
    assert world.cli("sync").code == 0
    assert reviews_on_forum(world) == reviews
    # A member quotes a marker line in a reply to a product's topic: it is not the connector's post.
    topic = world.forum.topics()[0]
    member = world.forum.add_user("mallory", "mallory@example.com")
    with world.forum.state.lock:
        row = world.forum.state.topics[topic["id"]]
        add_post(world.forum.state, row, world.forum.state.users[member], "Me too!\n\n<small>cardbridge review 999</small>",
                 None, None)  # fmt: skip
    late = world.shop.add_review(world.shop.add_product("Steam Wallet 10", "10.00"), "Eve", "e@example.com", 5,
                                 "Arrived in seconds.")  # fmt: skip
    an_hour_later(world)
    lose_state(world)
    world.forum.reset_log()
    run = world.cli("sync")
    assert run.code == 0, run.output
    assert reviews_on_forum(world) == sorted([*reviews, str(late)])  # each once; the new review posted
    assert world.forum.count("POST", r"^/posts") == 2  # the new product's topic and its review, nothing else
    an_hour_later(world)
    lose_state(world)
    world.forum.reset_log()
    assert world.cli("sync").code == 0
    assert world.forum.writes() == []
    assert reviews_on_forum(world) == sorted([*reviews, str(late)])
    assert "failed 0, dead 0" in world.cli("status").output


def test_a_second_state_store_posts_no_review_twice(world):
    reviews = setup_shop(world)
    first = world.config_path
    second = world.dir / "second.toml"
    second.write_text(first.read_text().replace("sqlite:///state.db", "sqlite:///state2.db"), encoding="utf-8")
    assert world.cli("sync").code == 0
    an_hour_later(world)
    world.config_path = second
    try:
        run = world.cli("sync")
        assert run.code == 0, run.output
        assert reviews_on_forum(world) == reviews
        # A review both stores plan: the one that goes second finds the other's post.
        new = world.shop.add_review(int(world.shop.state.reviews[int(reviews[0])]["product_id"]), "Zoe",
                                    "zoe@example.com", 5, "Second key worked too.")  # fmt: skip
        assert world.cli("sync").code == 0
    finally:
        world.config_path = first
    an_hour_later(world)
    world.forum.reset_log()
    assert world.cli("sync").code == 0
    assert world.forum.count("POST", r"^/posts") == 0
    assert reviews_on_forum(world) == sorted([*reviews, str(new)])


def test_a_topic_longer_than_one_read_is_read_whole(world):
    # Some 130 posts: at the real 60 admin requests a minute this would take minutes (the limit has its own tests).
    world.forum.rate_limit_per_minute = None
    reviews = setup_shop(world, reviews_per_product=110)
    assert world.cli("sync").code == 0
    assert reviews_on_forum(world) == reviews
    an_hour_later(world)
    lose_state(world)
    world.forum.reset_log()
    run = world.cli("sync")
    assert run.code == 0, run.output
    assert world.forum.count("POST", r"^/posts") == 0
    assert reviews_on_forum(world) == reviews
    # One read of each topic: its stream, then its 111 posts' text in two batches of at most 100.
    assert world.forum.count("GET", r"^/t/\d+/posts") == 4


def test_after_a_lost_state_store_a_moderators_deletion_and_edit_stand(world):
    reviews = setup_shop(world)
    assert world.cli("sync").code == 0
    posts = {
        MARKER.findall(p["raw"])[0]: p
        for t in world.forum.topics()
        for p in world.forum.posts_of_topic(t["id"])
        if MARKER.findall(p["raw"])
    }
    deleted, edited = reviews[0], reviews[1]
    world.forum.delete_post_by_hand(posts[deleted]["id"])
    moderated = f"Shortened by a moderator.\n\n<small>cardbridge review {edited}</small>"
    world.forum.edit_post_by_hand(posts[edited]["id"], moderated)
    an_hour_later(world)
    lose_state(world)
    world.forum.reset_log()
    run = world.cli("sync")
    assert run.code == 0, run.output
    assert world.forum.writes() == []  # the deleted review is not posted again, the edit not overwritten
    assert reviews_on_forum(world) == sorted(set(reviews) - {deleted})
    # The shop changes the edited review: the moderator's version meets it as a conflict, not an overwrite.
    world.shop.edit_review(int(edited), text="Updated in the shop")
    assert world.cli("sync").code == 0
    assert world.forum.count("PUT", r"^/posts") == 0
    assert world.cli("status", "--json").json()["open_conflicts"] == 1
    assert (
        next(p for p in world.forum.posts_of_topic(posts[edited]["topic_id"]) if p["id"] == posts[edited]["id"])["raw"]
        == moderated
    )
