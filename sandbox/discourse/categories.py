"""Categories: ``CategoriesController`` (index, create) and the category lookup topic creation uses."""

from __future__ import annotations

from typing import Any

from sandbox.discourse import serializers as ser
from sandbox.discourse.errors import forbidden, json_error, require
from sandbox.discourse.rails import blank, cast_int, slug, strict_int
from sandbox.discourse.routing import Ctx, Endpoint, J, route
from sandbox.discourse.state import ForumState, Row, is_staff, new_category


def find_category(forum: ForumState, value: Any) -> Row | None:
    """A category by id, or by name (case-insensitive)."""
    if blank(value):
        return None
    number = strict_int(value)
    if number is not None:
        return forum.categories.get(number)
    return next((c for c in forum.categories.values() if c["name"].lower() == str(value).lower()), None)


class Categories:
    def __init__(self, forum: ForumState) -> None:
        self.forum = forum

    def routes(self) -> list[Endpoint]:
        return [
            route("GET", rf"/categories{J}", self.index),
            route("POST", rf"/categories{J}", self.create),
        ]

    def index(self, ctx: Ctx) -> Any:
        forum = self.forum
        categories = sorted(forum.categories.values(), key=lambda c: (c["position"], c["id"]))
        shown = [
            c for c in categories
            if c["parent_category_id"] is None and (c["id"] != 1 or forum.settings.allow_uncategorized_topics)
            and (not c["read_restricted"] or is_staff(ctx.actor))
        ]  # fmt: skip
        return {"category_list": {"can_create_category": bool(ctx.actor["admin"]), "can_create_topic": True,
                                  "categories": [ser.category_json(forum, c) for c in shown]}}  # fmt: skip

    def create(self, ctx: Ctx) -> Any:
        forum = self.forum
        if not ctx.actor["admin"]:
            raise forbidden()
        p = ctx.params
        name = str(require(p, "name")).strip()
        parent = cast_int(p.get("parent_category_id"))
        errors = []
        if any(
            c["name"].lower() == name.lower() and c["parent_category_id"] == parent for c in forum.categories.values()
        ):
            errors.append("Category Name has already been taken")
        wanted_slug = str(p.get("slug") or "").strip() or slug(name, "")
        if wanted_slug and any(
            c["slug"] == wanted_slug and c["parent_category_id"] == parent for c in forum.categories.values()
        ):
            errors.append("Slug is already in use")
        if errors:
            raise json_error(errors)
        category_id = forum.take_id("category")
        category = new_category(category_id, name, wanted_slug or f"{category_id}-category",
                                str(p.get("color") or "0088CC"), str(p.get("text_color") or "FFFFFF"),
                                parent_category_id=parent)  # fmt: skip
        forum.categories[category_id] = category
        return {"category": ser.category_json(forum, category)}
