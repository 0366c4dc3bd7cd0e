"""``PostsController#latest``: ``GET /posts.json`` (routes.rb: ``get "posts" => "posts#latest", id: "latest_posts"``).

app/controllers/posts_controller.rb ``latest``: ``before`` is ``params[:before].to_i`` (≤ 0: none); the posts are
``LatestPostsQuery#public_posts`` (app/queries/latest_posts_query.rb): ``Post.public_posts.visible`` (no PMs, no
hidden posts; trashed posts and topics hidden by ``Trashable``), ``post_type`` regular only, in categories the viewer
may see, ``order(id: :desc)``, ``PAGE_SIZE = 50``, ``posts.id < before``. Serialized with ``PostSerializer`` under the
root ``latest_posts``, with ``add_raw: true``, ``add_excerpt`` and ``add_title`` (``topic_title``, ``category_id``).
There is no ``more`` link: a client pages with ``before=<smallest id seen>`` until a page is empty.
"""

from __future__ import annotations

from typing import Any

from sandbox.discourse import serializers as ser
from sandbox.discourse.pm_access import is_pm
from sandbox.discourse.rails import strict_int
from sandbox.discourse.routing import Ctx, Endpoint, J, route
from sandbox.discourse.state import ForumState, is_staff

#: ``LatestPostsQuery::PAGE_SIZE``.
PAGE_SIZE = 50
REGULAR = 1


class LatestPosts:
    def __init__(self, forum: ForumState) -> None:
        self.forum = forum

    def routes(self) -> list[Endpoint]:
        return [route("GET", rf"/posts{J}", self.latest)]

    def latest(self, ctx: Ctx) -> Any:
        forum = self.forum
        before = strict_int(ctx.params.get("before")) or 0
        shown: list[dict[str, Any]] = []
        for post in sorted(forum.posts.values(), key=lambda p: p["id"], reverse=True):
            if before > 0 and post["id"] >= before:
                continue
            topic = forum.topics.get(post["topic_id"])
            if topic is None or topic["deleted_at"] is not None or is_pm(topic):
                continue
            if post["deleted_at"] is not None or post.get("hidden") or post["post_type"] != REGULAR:
                continue
            category = forum.categories.get(topic["category_id"]) if topic["category_id"] else None
            if category is not None and category["read_restricted"] and not is_staff(ctx.actor):
                continue  # ``Category.secured(guardian)``
            data = ser.post_json(forum, post, ctx.actor, add_raw=True)
            data["topic_title"] = topic["title"]
            data["category_id"] = topic["category_id"]
            shown.append(data)
            if len(shown) == PAGE_SIZE:
                break
        return {"latest_posts": shown}
