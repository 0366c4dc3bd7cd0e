"""``ListController#category_latest``: ``GET /c/{slug}/{id}/l/latest.json`` (and ``/c/{id}/l/latest.json``).

``TopicQuery#list_latest`` in the category and its subcategories (``no_subcategories`` unset), live, regular topics
only (``Topic.listable_topics``: no PMs; trashed topics hidden by ``Trashable``), newest ``bumped_at`` first, 30 a
page with ``page=``. ``status=deleted`` lists the trashed topics instead, for staff
(lib/topics_filter.rb ``filter_status``: ``can_see_deleted_topics?``, else none) (``per_page_setting``), ``more_topics_url`` while a page is full. A slug that does not match the
id redirects in the real forum; the sandbox answers by id alone.
"""

from __future__ import annotations

from typing import Any

from sandbox.discourse.errors import not_found
from sandbox.discourse.pm_access import is_pm
from sandbox.discourse.private_messages import page_param, topic_list
from sandbox.discourse.routing import Ctx, Endpoint, J, route
from sandbox.discourse.state import ForumState, is_staff


class TopicLists:
    def __init__(self, forum: ForumState) -> None:
        self.forum = forum

    def routes(self) -> list[Endpoint]:
        return [
            route("GET", rf"/c/(?P<slug>[^/]+)/(?P<id>\d+)/l/latest{J}", self.category_latest),
            route("GET", rf"/c/(?P<id>\d+)/l/latest{J}", self.category_latest),
        ]

    def category_latest(self, ctx: Ctx) -> Any:
        forum = self.forum
        category = forum.categories.get(int(ctx.path_params["id"]))
        if category is None or (category["read_restricted"] and not is_staff(ctx.actor)):
            raise not_found()
        ids = {category["id"]} | {
            c["id"] for c in forum.categories.values() if c["parent_category_id"] == category["id"]
        }
        deleted = ctx.params.get("status") == "deleted"
        if deleted and not is_staff(ctx.actor):
            topics = []
        else:
            topics = [
                t
                for t in forum.topics.values()
                if t["category_id"] in ids and (t["deleted_at"] is not None) == deleted and not is_pm(t)
            ]
        more = f"/c/{category['slug']}/{category['id']}/l/latest"
        return topic_list(forum, topics, page_param(ctx), more)
