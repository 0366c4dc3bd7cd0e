"""The Discourse sandbox's lists that insights read, as the real forum serves them: ``GET /posts.json``
(``LatestPostsQuery``: public, visible, regular posts, id descending, 50 a page, ``before``), ``GET /tag/{name}.json``
(404 for a tag nothing carries) and topic lists' ``views``, ``tags`` and at most five ``posters``."""

from __future__ import annotations

import httpx
import pytest

from sandbox.discourse import DiscourseSandbox
from sandbox.server import SandboxServer

KEY = "insights-routes-key"


@pytest.fixture
def forum():
    forum = DiscourseSandbox(api_key=KEY, api_username="system")
    forum.rate_limit_create_topic = forum.rate_limit_create_post = 0
    forum.rate_limit_new_user_create_topic = forum.rate_limit_new_user_create_post = 0
    forum.min_post_length = 4
    forum.add_category("General")
    for n in range(7):
        forum.add_user(f"member{n}", f"member{n}@example.com", trust_level=1)
    return forum


@pytest.fixture
def url(forum):
    with SandboxServer(forum.app) as server:
        yield server.url


def call(url, who, method, path, **kwargs):
    headers = {"Api-Key": KEY, "Api-Username": who}
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        return client.request(method, path, **kwargs)


def test_latest_posts_are_public_visible_regular_newest_first_fifty_a_page(url, forum):
    topic = call(url, "member0", "POST", "/posts.json",
                 json={"title": "A long thread about gift cards", "raw": "The first post of the thread.",
                       "category": "General"}).json()  # fmt: skip
    ids = [
        call(url, f"member{n % 7}", "POST", "/posts.json",
             json={"topic_id": topic["topic_id"], "raw": f"Reply number {n} in the thread."}).json()["id"]
        for n in range(60)
    ]  # fmt: skip
    pm = call(url, "member1", "POST", "/posts.json",
              json={"title": "A private question for you", "raw": "Only for the two of us here.",
                    "archetype": "private_message", "target_recipients": "member2"})  # fmt: skip
    assert pm.status_code == 200
    forum.hide_post_by_hand(ids[10])
    forum.delete_post_by_hand(ids[20])

    first = call(url, "system", "GET", "/posts.json").json()["latest_posts"]
    shown = [i for i in sorted(ids, reverse=True) if i not in (ids[10], ids[20])]  # hidden, deleted
    assert [p["id"] for p in first] == shown[:50]
    assert all(p["raw"] and p["topic_title"] == "A long thread about gift cards" for p in first)
    second = call(url, "system", "GET", "/posts.json", params={"before": first[-1]["id"]}).json()["latest_posts"]
    listed = [p["id"] for p in first + second]
    assert ids[10] not in listed and ids[20] not in listed and pm.json()["id"] not in listed
    assert set(listed) == {topic["id"], *ids} - {ids[10], ids[20]}


def test_tag_lists_and_topic_list_fields(url, forum):
    tagged = call(url, "member0", "POST", "/posts.json",
                  json={"title": "Please sell Xbox Game Pass codes", "raw": "Would buy them every month.",
                        "category": "General", "tags": ["request"]}).json()  # fmt: skip
    call(url, "member1", "POST", "/posts.json",
         json={"title": "What do you play on weekends", "raw": "Racing games mostly, and you?",
               "category": "General"})  # fmt: skip
    for n in range(1, 7):
        call(
            url,
            f"member{n}",
            "POST",
            "/posts.json",
            json={"topic_id": tagged["topic_id"], "raw": f"+1 from member {n}"},
        ).raise_for_status()
    forum.add_views(tagged["topic_id"], 42)

    assert call(url, "system", "GET", "/tag/nosuchtag.json").status_code == 404
    listed = call(url, "system", "GET", "/tag/request.json").json()["topic_list"]["topics"]
    assert [t["id"] for t in listed] == [tagged["topic_id"]]
    [item] = listed
    assert item["tags"] == ["request"] and item["views"] == 42
    assert item["posts_count"] == 7 and item["reply_count"] == 6
    posters = [p["user_id"] for p in item["posters"]]
    assert len(posters) == 5  # TopicPostersSummary: creator, featured, last poster; not all seven
    assert posters[0] == forum.user("member0")["id"] and posters[-1] == forum.user("member6")["id"]
