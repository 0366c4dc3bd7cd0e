"""Badge grants: ``BadgeGranter`` (grant, revoke) and ``UserBadgesController`` (index, create, destroy, and the
``/user-badges/{username}`` list). A single-grant badge answers the existing grant; a disabled or unknown badge is 404
since the controller looks up ``enabled: true`` badges; revoking clears a title equal to the badge name."""

from __future__ import annotations

import re
from typing import Any

from sandbox.discourse import serializers as ser
from sandbox.discourse.errors import MSG_BAD_BADGE_REASON, Answer, fetch_int, not_found, require
from sandbox.discourse.rails import blank, now_iso, ruby_int, strict_int
from sandbox.discourse.routing import Ctx, Endpoint, J, route, user_from_params
from sandbox.discourse.state import ForumState, Row, is_staff

#: ``UserBadgesController::MAX_BADGES`` / ``MAX_INDEX_LIMIT``
USER_BADGES_DEFAULT_LIMIT, USER_BADGES_MAX_LIMIT = 96, 50

# ==== badges (BadgeGranter) ============================================================================================


def grant(forum: ForumState, badge: Row, user: Row, granted_by: Row, post_id: int | None) -> Row:
    existing = None
    for ub in sorted(forum.user_badges.values(), key=lambda ub: ub["id"]):
        same = ub["badge_id"] == badge["id"] and ub["user_id"] == user["id"]
        if same and (not badge["multiple_grant"] or ub["post_id"] == post_id):
            existing = ub
            break
    if existing is not None and not (badge["multiple_grant"] and post_id is None):
        return existing
    seq = 0
    if badge["multiple_grant"]:
        seqs = [
            ub["seq"]
            for ub in forum.user_badges.values()
            if ub["badge_id"] == badge["id"] and ub["user_id"] == user["id"]
        ]
        seq = max(seqs, default=-1) + 1
    new = {
        "id": forum.take_id("user_badge"),
        "badge_id": badge["id"],
        "user_id": user["id"],
        "granted_at": now_iso(),
        "created_at": now_iso(),
        "granted_by_id": granted_by["id"],
        "post_id": post_id,
        "seq": seq,
    }
    forum.user_badges[new["id"]] = new
    badge["grant_count"] += 1
    return new


def revoke(forum: ForumState, user_badge: Row) -> None:
    del forum.user_badges[user_badge["id"]]
    badge = forum.badges.get(user_badge["badge_id"])
    user = forum.users.get(user_badge["user_id"])
    if badge is not None:
        badge["grant_count"] = max(0, badge["grant_count"] - 1)
        if user is not None and user["title"] == badge["name"]:
            user["title"] = None


class UserBadges:
    def __init__(self, forum: ForumState) -> None:
        self.forum = forum

    def routes(self) -> list[Endpoint]:
        return [
            route("GET", rf"/user_badges{J}", self.index),
            route("POST", rf"/user_badges{J}", self.create),
            route("DELETE", rf"/user_badges/(?P<id>[^/.]+){J}", self.destroy),
            route("GET", rf"/user-badges/(?P<username>[^/]+?){J}", self.username),
        ]

    def _badge_from_params(self, p: dict[str, Any]) -> Row:
        """``fetch_badge_from_params``: by name when ``badge_name`` is given, else ``badge_id`` (required); enabled only."""
        if p.get("badge_name") is None:
            require(p, "badge_id")
            badge = self.forum.badges.get(ruby_int(p["badge_id"]))
        else:
            badge = next((b for b in self.forum.badges.values() if b["name"] == p["badge_name"]), None)
        if badge is None or not badge["enabled"]:
            raise not_found()
        return badge

    def _reason_post_id(self, ctx: Ctx, reason: str) -> int | None:
        """``is_badge_reason_valid?`` + ``Discourse.route_for``: a topic or post URL on this forum."""
        match = re.match(r"\A(?:https?://(?P<host>[^/]+))?(?P<path>/[^?#]*)", reason.strip())
        own_host = ctx.headers.get("host", "")
        if not match or (match.group("host") and match.group("host") != own_host):
            raise Answer(400, {"failed": "FAILED", "message": MSG_BAD_BADGE_REASON})
        path = match.group("path")
        topic_match = re.fullmatch(r"/t/(?:[^/]+/)?(\d+)(?:/(\d+))?(?:\.json)?/?", path)
        if topic_match:
            topic_id, number = int(topic_match.group(1)), int(topic_match.group(2) or 1)
            post = next(
                (p for p in self.forum.posts.values() if p["topic_id"] == topic_id and p["post_number"] == number), None
            )
            return post["id"] if post else None
        if re.fullmatch(r"/(?:p|posts)/\d+(?:\.json)?/?", path):
            return None  # a posts route is a valid reason but does not set post_id
        raise Answer(400, {"failed": "FAILED", "message": MSG_BAD_BADGE_REASON})

    def create(self, ctx: Ctx) -> Any:
        forum = self.forum
        p = ctx.params
        require(p, "username")
        user = user_from_params(forum, ctx)
        if not is_staff(ctx.actor):
            raise Answer(403, {"failed": "FAILED"})
        badge = self._badge_from_params(p)
        post_id = self._reason_post_id(ctx, str(p["reason"])) if not blank(p.get("reason")) else None
        granted = grant(forum, badge, user, ctx.actor, post_id)
        granted_by = forum.users.get(granted["granted_by_id"])
        return {
            "badges": [ser.badge_json(badge, admin=False)],
            "badge_types": ser.badge_types_for([badge]),
            "granted_bies": [ser.granted_by_json(forum, granted_by)] if granted_by else [],
            "user_badge": ser.detailed_user_badge(forum, granted, ctx.actor),
        }

    def destroy(self, ctx: Ctx) -> Any:
        grant_id = strict_int(ctx.path_params["id"])
        user_badge = self.forum.user_badges.get(grant_id) if grant_id is not None else None
        if user_badge is None:
            raise not_found()
        if not is_staff(ctx.actor):
            raise Answer(403, {"failed": "FAILED"})
        revoke(self.forum, user_badge)
        self.forum.staff_actions.append(
            {"action": "revoke_badge", "acting_user": ctx.actor["username"], "user_badge_id": user_badge["id"]}
        )
        return {"success": "OK"}

    def username(self, ctx: Ctx) -> Any:
        forum = self.forum
        user = user_from_params(forum, ctx)
        grants = forum.grants_of(user)
        if ctx.params.get("grouped") not in (None, "", False, "false"):
            firsts: dict[int, Row] = {}
            counts: dict[int, int] = {}
            for ub in grants:
                firsts.setdefault(ub["badge_id"], ub)
                counts[ub["badge_id"]] = counts.get(ub["badge_id"], 0) + 1
            items = [ser.detailed_user_badge(forum, g, ctx.actor, counts[bid]) for bid, g in firsts.items()]
        else:
            items = [ser.detailed_user_badge(forum, g, ctx.actor) for g in grants]
        badges = list({g["badge_id"]: forum.badges[g["badge_id"]] for g in grants}.values())
        givers = list({g["granted_by_id"]: forum.users.get(g["granted_by_id"]) for g in grants}.values())
        return {
            "badges": [ser.badge_json(b, admin=False) for b in badges],
            "badge_types": ser.badge_types_for(badges),
            "granted_bies": [ser.granted_by_json(forum, u) for u in givers if u],
            "user_badges": items,
        }

    def index(self, ctx: Ctx) -> Any:
        """``UserBadgesController#index``: newest grants first, ``limit`` capped at 50, ``grant_count`` only per user."""
        forum = self.forum
        p = ctx.params
        ids: list[int] | None = None
        if "badge_ids" in p:
            raw_ids = p["badge_ids"]
            tokens = raw_ids if isinstance(raw_ids, list) else re.split(r"[,|\s]+", str(raw_ids or ""))
            ids = sorted({n for n in (strict_int(str(t)) for t in tokens) if n and n > 0}) or None
        elif not blank(p.get("badge_name")):
            badge = next((b for b in forum.badges.values() if b["name"] == p["badge_name"] and b["enabled"]), None)
            if badge is None:
                raise not_found()
            ids = [badge["id"]]
        elif not blank(p.get("badge_id")):
            badge = forum.badges.get(ruby_int(p["badge_id"]))
            if badge is None or not badge["enabled"]:
                raise not_found()
            ids = [badge["id"]]
        if ids is not None:
            grants = [
                ub
                for ub in forum.user_badges.values()
                if ub["badge_id"] in ids and forum.badges[ub["badge_id"]]["enabled"]
            ]
        else:
            grants = [
                ub
                for ub in forum.user_badges.values()
                if forum.badges[ub["badge_id"]]["enabled"] and forum.badges[ub["badge_id"]]["listable"]
            ]
        if not blank(p.get("badge_type_id")):
            type_id = fetch_int(p, "badge_type_id", 0, minimum=1)
            grants = [ub for ub in grants if forum.badges[ub["badge_id"]]["badge_type_id"] == type_id]
        grant_count = None
        if p.get("username"):
            user = user_from_params(forum, ctx)
            grants = [ub for ub in grants if ub["user_id"] == user["id"]]
            grant_count = len(grants)
        grants.sort(key=lambda ub: (ub["granted_at"], ub["id"]), reverse=True)
        limit = min(fetch_int(p, "limit", USER_BADGES_DEFAULT_LIMIT, minimum=1), USER_BADGES_MAX_LIMIT)
        offset = fetch_int(p, "offset", 0)
        page = grants[offset : offset + limit]
        items = []
        for ub in page:
            badge = forum.badges[ub["badge_id"]]
            item: dict[str, Any] = {"id": ub["id"], "granted_at": ub["granted_at"]}
            if badge["show_posts"] and ub["post_id"] in forum.posts:
                post = forum.posts[ub["post_id"]]
                item.update({"post_id": post["id"], "post_number": post["post_number"], "topic_id": post["topic_id"]})
            item.update({"badge_id": badge["id"], "user_id": ub["user_id"], "granted_by_id": ub["granted_by_id"]})
            items.append(item)
        badges = list({g["badge_id"]: forum.badges[g["badge_id"]] for g in page}.values())
        people = {g["user_id"] for g in page} | {g["granted_by_id"] for g in page}
        return {
            "badges": [ser.badge_json(b, admin=False) for b in badges],
            "badge_types": ser.badge_types_for(badges),
            "users": [ser.granted_by_json(forum, forum.users[uid]) for uid in sorted(people) if uid in forum.users],
            "user_badge_info": {"user_badges": items, "grant_count": grant_count, "username": p.get("username")},
        }  # fmt: skip
