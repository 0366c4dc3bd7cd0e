"""The Discourse sandbox reads a topic's posts as the real forum does: the whole post stream in ``/t/{id}.json``
(deleted posts too with ``show_deleted`` for staff) and ``/t/{id}/posts.json?post_ids[]=`` answering every id asked,
with ``raw`` only when ``include_raw`` is given (TopicsController#posts, TopicView#filter_posts_by_ids)."""

from __future__ import annotations

import httpx
import pytest

from sandbox.discourse import DiscourseSandbox
from sandbox.discourse.posts import add_post
from sandbox.server import SandboxServer

KEY = "posts-key"


@pytest.fixture
def forum():
    return DiscourseSandbox(api_key=KEY, api_username="system")


@pytest.fixture
def server(forum):
    with SandboxServer(forum.app) as running:
        yield running


def client(server, username: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Api-Key": KEY, "Api-Username": username}, timeout=10)


def test_a_long_topic_is_read_whole_by_stream_and_post_ids(forum, server):
    forum.add_user("member", "member@example.com")
    with client(server, "system") as api:
        created = api.post("/posts.json", json={"title": "Verified reviews: a long topic", "raw": "x" * 30,
                                                "category": 4})  # fmt: skip
        topic_id = created.json()["topic_id"]
        with forum.state.lock:
            topic, author = forum.state.topics[topic_id], forum.state.find_user("system")
            ids = [created.json()["id"]] + [add_post(forum.state, topic, author, f"post {n}", None, None)["id"]
                                            for n in range(129)]  # fmt: skip
        forum.delete_post_by_hand(ids[5])
        shown = api.get(f"/t/{topic_id}.json").json()["post_stream"]
        assert len(shown["posts"]) == 20 and shown["stream"] == [i for i in ids if i != ids[5]]
        assert api.get(f"/t/{topic_id}.json", params={"show_deleted": "true"}).json()["post_stream"]["stream"] == ids
        batch = api.get(f"/t/{topic_id}/posts.json", params={"post_ids[]": ids[:120], "include_raw": "true"}).json()
        assert "stream" not in batch["post_stream"] and batch["id"] == topic_id
        posts = batch["post_stream"]["posts"]
        assert [p["id"] for p in posts] == ids[:120]  # no cap on the ids asked
        assert posts[6]["raw"] == "post 5" and posts[5]["deleted_at"] is not None  # staff see deleted posts
        plain = api.get(f"/t/{topic_id}/posts.json", params={"post_ids[]": ids[:3]}).json()["post_stream"]["posts"]
        assert all("raw" not in p for p in plain)
        assert api.get("/t/99999/posts.json", params={"post_ids[]": [1]}).status_code == 404
    with client(server, "member") as member:
        seen = member.get(f"/t/{topic_id}/posts.json", params={"post_ids[]": ids[:10]}).json()["post_stream"]["posts"]
        assert [p["id"] for p in seen] == [i for i in ids[:10] if i != ids[5]]  # a deleted post is staff's only
