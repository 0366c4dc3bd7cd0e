"""``ListController#category_latest``: ``GET /c/{slug}/{id}/l/latest.json`` (and ``/c/{id}/l/latest.json``).

``TopicQuery#list_latest`` in the category and its subcategories (``no_subcategories`` unset), live, regular topics
only (``Topic.listable_topics``: no PMs; trashed topics hidden by ``Trashable``), newest ``bumped_at`` first, 30 a
page with ``page=``. ``status=deleted`` lists the trashed topics instead, for staff
(lib/topics_filter.rb ``filter_status``: ``can_see_deleted_topics?``, else none) (``per_page_setting``), ``more_topics_url`` while a page is full. A slug that does not match the
id redirects in the real forum; the sandbox answers by id alone.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote

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
            route("GET", rf"/tag/(?P<name>[^/]+?)(?:/l/latest)?{J}", self.tag_latest),
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

    def tag_latest(self, ctx: Ctx) -> Any:
        """``TagsController#show`` (``show_latest``): ``TopicQuery#list_latest`` with ``tags: [name]``, the same
        order and page size; ``more_topics_url`` is ``/tag/{name}?page=N`` (``construct_url_with`` drops the
        ``.json``). A tag no topic carries and no ``Tag`` row names answers 404 (``permalink_redirect_or_not_found``);
        the sandbox keeps no tag table, so a tag exists while a topic (live or trashed) carries it. Topics in
        read-restricted categories are left out for non-staff (``TopicQuery`` secures categories)."""
        forum = self.forum
        name = unquote(ctx.path_params["name"]).lower()
        carrying = [t for t in forum.topics.values() if name in [str(tag).lower() for tag in t.get("tags") or []]]
        if not carrying:
            raise not_found()
        topics = [
            t
            for t in carrying
            if t["deleted_at"] is None and not is_pm(t) and self._visible(t["category_id"], ctx.actor)
        ]
        return topic_list(forum, topics, page_param(ctx), f"/tag/{quote(name, safe='')}")

    def _visible(self, category_id: int | None, actor: dict[str, Any]) -> bool:
        category = self.forum.categories.get(category_id) if category_id else None
        return category is None or not category["read_restricted"] or is_staff(actor)
