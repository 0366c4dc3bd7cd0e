"""Demand topics and posts' text read by the Discourse adapter from the sandbox forum over loopback: topics in a
category or with a tag with their likes, replies, views and posters; the latest posts paged with a cursor."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from adapters.communities.discourse import DiscourseCommunity, DiscourseSettings
from adapters.insights import PostTextSource, TopicSource
from sandbox.discourse import DiscourseSandbox
from sandbox.server import SandboxServer

KEY = "insights-key"


@pytest.fixture
def forum():
    forum = DiscourseSandbox(api_key=KEY, api_username="cardbridge")
    for name in ("alice", "bob", "carol"):
        forum.add_user(name, f"{name}@example.com", trust_level=1)
    forum.add_category("需求")
    forum.add_category("General")
    forum.rate_limit_create_topic = forum.rate_limit_create_post = 0
    forum.rate_limit_new_user_create_topic = forum.rate_limit_new_user_create_post = 0
    # A Chinese forum lowers the length minimums (20 characters of 汉字 is a paragraph); admins do, as here.
    forum.min_topic_title_length = forum.min_first_post_length = forum.min_post_length = 4
    return forum


@pytest.fixture
def url(forum):
    with SandboxServer(forum.app) as server:
        yield server.url


def community(url: str) -> DiscourseCommunity:
    config = DiscourseSettings(
        kind="discourse", base_url=url, api_key=KEY, api_username="cardbridge", requests_per_minute=10_000
    )
    return DiscourseCommunity("forum", config, sleep=lambda s: None)


def act(url: str, username: str, method: str, path: str, **body) -> dict:
    with httpx.Client(base_url=url, headers={"Api-Key": KEY, "Api-Username": username}, timeout=10) as http:
        response = http.request(method, path, json=body or None)
    assert response.status_code == 200, response.text
    return response.json() if response.content else {}


def test_the_adapter_reads_topics_and_posts(url):
    forum = community(url)
    assert isinstance(forum, TopicSource) and isinstance(forum, PostTextSource)


def test_demand_topics_by_category_and_tag_with_their_numbers(url, forum):
    asked = act(url, "alice", "POST", "/posts.json", title="求原神月卡补货，什么时候有？", raw="等了好久了，求补货。",
                category="需求", created_at="2026-11-28T10:00:00Z")  # fmt: skip
    act(url, "bob", "POST", "/posts.json", topic_id=asked["topic_id"], raw="同求，我也在等原神月卡。")
    act(url, "carol", "POST", "/post_actions.json", id=asked["id"], post_action_type_id=2)
    forum.add_views(asked["topic_id"], 120)
    tagged = act(url, "carol", "POST", "/posts.json", title="Could you sell Xbox Game Pass codes?",
                 raw="Many of us would buy them every month.", category="General", tags=["request"])  # fmt: skip
    act(url, "alice", "POST", "/posts.json", title="What do you play this weekend", raw="Racing games mostly here.",
        category="General")  # fmt: skip

    topics = community(url).demand_topics("需求", "request", limit=50)
    by_id = {t.topic_id: t for t in topics}
    assert set(by_id) == {str(asked["topic_id"]), str(tagged["topic_id"])}
    first = by_id[str(asked["topic_id"])]
    assert (first.like_count, first.reply_count, first.views) == (1, 1, 120)
    assert first.created_at == datetime(2026, 11, 28, 10, tzinfo=UTC)
    assert first.participants == (str(forum.user("alice")["id"]), str(forum.user("bob")["id"]))
    assert by_id[str(tagged["topic_id"])].tags == ("request",)


def test_an_unknown_tag_or_category_lists_nothing(url):
    assert community(url).demand_topics("No such category", "nosuchtag", limit=10) == []


def test_posts_are_read_after_the_cursor_oldest_first_across_pages(url, forum):
    first = act(url, "alice", "POST", "/posts.json", title="Weekly chat thread for everyone", raw="hello everyone here",
                category="General")  # fmt: skip
    source = community(url)
    texts, cursor = source.posts_since(None, limit=500)
    assert [t.post_id for t in texts] == [str(first["id"])]
    assert "Weekly chat thread" in texts[0].text  # the first post carries its topic's title
    made = [
        act(
            url,
            ("bob", "carol")[n % 2],
            "POST",
            "/posts.json",
            topic_id=first["topic_id"],
            raw=f"reply number {n} here",
        )
        for n in range(61)
    ]
    act(url, "cardbridge", "DELETE", f"/posts/{made[5]['id']}.json")
    texts, cursor2 = source.posts_since(cursor, limit=500)
    expected = [str(p["id"]) for n, p in enumerate(made) if n != 5]
    assert [t.post_id for t in texts] == expected  # two pages of 50, oldest first, the deleted one left out
    assert cursor2 == f"v1:{made[-1]['id']}"
    again, cursor3 = source.posts_since(cursor2, limit=500)
    assert again == [] and cursor3 == cursor2
