"""A forum installed under a subfolder (``base_url = "http://host/forum"``, Discourse's DISCOURSE_RELATIVE_URL_ROOT):
grants and reviews work, and the external-id lookup's redirect (which carries the subfolder) is followed once."""

from __future__ import annotations

import pytest

from sandbox.discourse import DiscourseSandbox
from sandbox.server import SandboxServer
from tests.e2e.conftest import ENV

REVIEWS = """
[reviews]
forum = { category = "Reviews" }
"""


@pytest.fixture
def subfolder_world(world):
    """The harness's world with its forum replaced by one served under ``/forum``."""
    world.forum_server.stop()
    world.forum = DiscourseSandbox(
        api_key=ENV["DISCOURSE_API_KEY"],
        api_username="system",
        rate_limit_per_minute=world.forum.rate_limit_per_minute,  # the harness's limit, whatever it is
        base_path="/forum",
    )
    world.forum_server = SandboxServer(world.forum.app).start()
    world.write_config(extra=REVIEWS)
    root = world.forum_server.url
    text = world.config_path.read_text(encoding="utf-8")
    world.config_path.write_text(text.replace(f'"{root}"', f'"{root}/forum"'), encoding="utf-8")
    key = world.shop.add_product("Elden Ring Steam Key", "199.00")
    world.shop.add_order(email="alice@example.com", items=[(key, 1)], status="completed")
    world.forum.add_user("alice", "alice@example.com")
    world.reviews = [
        world.shop.add_review(key, "Alice", "alice@example.com", 5, "Key arrived at once, works."),
        world.shop.add_review(key, "Mallory", "m@example.com", 2, "Slow delivery this time."),
    ]
    return world


def test_grants_and_reviews_on_a_subfolder_forum_and_the_topic_found_again_through_its_redirect(subfolder_world):
    world = subfolder_world
    run = world.cli("sync")
    assert run.code == 0, run.output
    assert "Verified Buyer" in world.forum.badges_of("alice")
    assert "verified-buyers" in world.forum.groups_of("alice")
    [topic] = world.forum.topics()
    posted = {r for r in world.reviews for p in world.forum.posts_of_topic(topic["id"]) if marker(r) in p["raw"]}
    assert posted == set(world.reviews)
    paths = [r["path"] for r in world.forum.requests]
    assert paths and all(p.startswith("/forum/") and not p.startswith("/forum/forum/") for p in paths), paths

    # The state store is lost: the topic is found again by its external id, through the 301 whose Location carries
    # the subfolder, instead of a second topic (or a failure) for the product.
    world.db_path.unlink()
    world.forum.reset_log()
    run = world.cli("sync")
    assert run.code == 0, run.output
    assert len(world.forum.topics()) == 1
    followed = [r for r in world.forum.requests if r["path"].startswith(f"/forum/t/{topic['slug']}/")]
    assert followed and all(r["status"] == 200 for r in followed), [(r["path"], r["status"]) for r in followed]
    status = world.cli("status", "--json").json()
    assert status["outbox"]["dead"] == 0 and status["problems"] == [], status
    world.forum.reset_log()
    assert world.cli("sync").code == 0
    assert world.forum.writes() == []


def marker(review_id):
    return f"cardbridge review {review_id}<"
