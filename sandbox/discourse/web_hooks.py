"""What the forum's outgoing webhooks carry for posts: ``WebHookPostSerializer`` (discourse/discourse
app/serializers/web_hook_post_serializer.rb at 00ec81dd): the ``PostSerializer`` fields with ``raw``, ``topic_title``
and ``category_id`` always, plus ``topic_posts_count``, ``topic_filtered_posts_count``, ``topic_archetype`` and
``category_slug``; the viewer-dependent fields (``can_edit``, ``actions_summary``, ``yours``, …) left out. Rendered
for the system user (``WebHook.guardian``). ``WebHook.enqueue_post_hooks`` sends it for ``post_created`` whatever
the topic's archetype."""

from __future__ import annotations

from typing import Any

from sandbox.discourse import serializers as ser
from sandbox.discourse.state import ForumState, Row

_LEFT_OUT = ("can_edit", "can_delete", "can_recover", "can_see_hidden_post", "can_wiki", "actions_summary",
             "can_view_edit_history", "yours", "flair_url", "flair_bg_color", "flair_color", "mentioned_users",
             "readers_count")  # fmt: skip


def web_hook_post(forum: ForumState, post: Row) -> dict[str, Any]:
    topic = forum.topics[post["topic_id"]]
    data = ser.post_json(forum, post, forum.users[-1], add_raw=True)
    for name in _LEFT_OUT:
        data.pop(name, None)
    category = forum.categories.get(topic["category_id"]) if topic["category_id"] is not None else None
    live = [p for p in forum.posts.values() if p["topic_id"] == topic["id"] and not p["user_deleted"]]
    data.update(
        {
            "topic_title": topic["title"],
            "category_id": topic["category_id"],
            "topic_posts_count": len(live),
            "topic_filtered_posts_count": sum(1 for p in live if p["post_type"] == 1),
            "topic_archetype": topic["archetype"],
        }
    )
    if category is not None:
        data["category_slug"] = category["slug"]
    return data
