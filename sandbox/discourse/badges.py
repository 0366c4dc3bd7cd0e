"""Badges: ``Admin::BadgesController`` (index, create, update, destroy) and destroying a badge with its grants."""

from __future__ import annotations

from typing import Any

from sandbox.discourse import serializers as ser
from sandbox.discourse.errors import Answer, json_error, not_found
from sandbox.discourse.rails import blank, cast_bool, cast_int
from sandbox.discourse.routing import Ctx, Endpoint, J, route
from sandbox.discourse.state import BADGE_GROUPINGS, BADGE_TYPES, ForumState, Row, new_badge

#: Badge columns an admin may set through ``POST/PUT /admin/badges`` (every column but id/timestamps/grant_count/query).
BADGE_WRITABLE = (
    "name", "description", "long_description", "badge_type_id", "icon", "image_upload_id", "allow_title",
    "multiple_grant", "listable", "enabled", "badge_grouping_id", "target_posts", "show_posts",
    "show_in_post_header", "auto_revoke", "trigger",
)  # fmt: skip
BADGE_BOOLEANS = {"allow_title", "multiple_grant", "listable", "enabled", "target_posts", "show_posts",
                  "show_in_post_header", "auto_revoke"}  # fmt: skip


def destroy_badge(forum: ForumState, badge: Row) -> None:
    """Its grants go too, and titles equal to its name are cleared."""
    for grant in [ub for ub in forum.user_badges.values() if ub["badge_id"] == badge["id"]]:
        del forum.user_badges[grant["id"]]
    for user in forum.users.values():
        if user["title"] == badge["name"]:
            user["title"] = None
    del forum.badges[badge["id"]]


class Badges:
    def __init__(self, forum: ForumState) -> None:
        self.forum = forum

    def routes(self) -> list[Endpoint]:
        return [
            route("GET", rf"/admin/badges{J}", self.index, admin_only=True),
            route("POST", rf"/admin/badges{J}", self.create, admin_only=True),
            route("PUT", rf"/admin/badges/(?P<id>\d+){J}", self.update, admin_only=True),
            route("DELETE", rf"/admin/badges/(?P<id>\d+){J}", self.destroy, admin_only=True),
        ]

    def index(self, ctx: Ctx) -> Any:
        position = {g["id"]: g["position"] for g in BADGE_GROUPINGS}
        badges = sorted(
            self.forum.badges.values(),
            key=lambda b: (position.get(b["badge_grouping_id"], 99), b["badge_type_id"], b["name"]),
        )
        return {
            "badges": [ser.badge_json(b) for b in badges],
            "badge_types": [dict(t) for t in BADGE_TYPES],
            "badge_groupings": [dict(g) for g in BADGE_GROUPINGS],
            "admin_badges": {
                "protected_system_fields": ["name", "badge_type_id", "multiple_grant", "target_posts", "show_posts",
                                            "query", "trigger", "auto_revoke", "listable"],
                "triggers": {"user_change": 8, "none": 0, "post_revision": 2, "trust_level_change": 4, "post_action": 1},
                "badge_ids": [b["id"] for b in badges],
                "badge_grouping_ids": [g["id"] for g in BADGE_GROUPINGS],
                "badge_type_ids": [t["id"] for t in BADGE_TYPES],
            },
        }  # fmt: skip

    def _apply_params(self, badge: Row, p: dict[str, Any]) -> list[str]:
        """``update_badge_from_params``: each permitted key is assigned *if truthy in Ruby* (JSON ``false`` is skipped)."""
        candidate = dict(badge)
        for key in BADGE_WRITABLE:
            if key not in p or p[key] is None or p[key] is False:
                continue
            value = p[key]
            if key in BADGE_BOOLEANS:
                cast = cast_bool(value)
                candidate[key] = bool(cast) if cast is not None else candidate[key]
            elif key in {"badge_type_id", "badge_grouping_id", "image_upload_id", "trigger"}:
                candidate[key] = cast_int(value)
            else:
                candidate[key] = str(value)
        errors = []
        if blank(candidate["name"]):
            errors.append("Name can't be blank")
        elif any(b["name"] == candidate["name"] and b["id"] != badge["id"] for b in self.forum.badges.values()):
            errors.append("Name has already been taken")
        if candidate["badge_type_id"] not in {t["id"] for t in BADGE_TYPES}:
            errors.append("Badge type can't be blank")
        if not errors:
            badge.update(candidate)
        return errors

    def create(self, ctx: Ctx) -> Any:
        badge = new_badge(0, "", 0)
        badge["badge_type_id"] = None
        errors = self._apply_params(badge, ctx.params)
        if errors:
            raise json_error(errors)  # render_json_error(errors): 422, no error_type
        badge["id"] = self.forum.take_id("badge")
        self.forum.badges[badge["id"]] = badge
        self.forum.staff_actions.append(
            {"action": "create_badge", "acting_user": ctx.actor["username"], "badge_id": badge["id"]}
        )
        return {"badge_types": ser.badge_types_for([badge]), "badge": ser.badge_json(badge)}

    def update(self, ctx: Ctx) -> Any:
        badge = self.forum.badges.get(int(ctx.path_params["id"]))
        if badge is None:
            raise not_found()
        old_name = badge["name"]
        errors = self._apply_params(badge, ctx.params)
        if errors:
            raise json_error(errors)
        if badge["name"] != old_name:  # Jobs::BulkUserTitleUpdate
            for user in self.forum.users.values():
                if user["title"] == old_name:
                    user["title"] = badge["name"]
        return {"badge_types": ser.badge_types_for([badge]), "badge": ser.badge_json(badge)}

    def destroy(self, ctx: Ctx) -> Any:
        badge = self.forum.badges.get(int(ctx.path_params["id"]))
        if badge is None:
            raise not_found()
        destroy_badge(self.forum, badge)
        return Answer(200, None)
