"""The JSON shapes the forum answers (``app/serializers``): users, badges and grants, groups, categories and posts.

Each takes the forum state and the rows to render; the viewer (the acting user) where the real serializer checks
permissions. One module because the serializers embed each other (a user embeds groups, a post embeds the author's
flair, a grant embeds its post and topic)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from sandbox.discourse.likes import actions_summary
from sandbox.discourse.rails import cook, slug
from sandbox.discourse.state import BADGE_GROUPINGS, BADGE_TYPES, ForumState, Row, is_staff

# ---- users -----------------------------------------------------------------------------------------------------------------


def avatar(user: Row) -> str:
    letter = (user["username"][:1] or "x").lower()
    return f"/letter_avatar_proxy/v4/letter/{quote(letter)}/8e7dd6/{{size}}.png"


def basic_user(user: Row) -> dict[str, Any]:
    return {
        "id": user["id"],
        "username": user["username"],
        "name": user["name"],
        "avatar_template": avatar(user),
    }


def flair_fields(forum: ForumState, user: Row) -> dict[str, Any]:
    primary = forum.group_of(user["primary_group_id"])
    flair = forum.group_of(user["flair_group_id"])
    return {
        "primary_group_name": primary["name"] if primary else None,
        "flair_name": flair["name"] if flair else None,
        "flair_url": (flair["flair_icon"] or (f"/uploads/default/{flair['flair_upload_id']}.png" if flair["flair_upload_id"] else None)) if flair else None,
        "flair_bg_color": flair["flair_bg_color"] if flair else None,
        "flair_color": flair["flair_color"] if flair else None,
        "flair_group_id": user["flair_group_id"],
    }  # fmt: skip


def admin_list_user(forum: ForumState, user: Row, emails: bool) -> dict[str, Any]:
    data: dict[str, Any] = {**basic_user(user)}
    if emails:
        data["email"] = user["email"]
        data["secondary_emails"] = list(user["secondary_emails"])
    data.update(
        {
            # always there, for every row (app/serializers/admin_user_list_serializer.rb:6 at 000ef5e5: no include_
            # condition): whether the owner confirmed the email
            "active": user["active"],
            "admin": user["admin"],
            "moderator": user["moderator"],
            "last_seen_at": user["last_seen_at"],
            "last_emailed_at": None,
            "created_at": user["created_at"],
            "last_seen_age": None,
            "last_emailed_age": None,
            "created_at_age": 0.0,
            "trust_level": user["trust_level"],
            "manual_locked_trust_level": None,
            "title": user["title"],
            "time_read": 0,
            "staged": user["staged"],
            "days_visited": 0,
            "posts_read_count": 0,
            "topics_entered": 0,
            "post_count": forum.post_count(user),
            "can_be_deleted": user["id"] > 0 and not user["admin"],
        }
    )
    if user["suspended"]:
        data["suspended_at"] = user["created_at"]
        data["suspended_till"] = "3000-01-01T00:00:00.000Z"
    if user["silenced"]:
        data["silenced_till"] = "3000-01-01T00:00:00.000Z"
    return data


def user_fields_of(forum: ForumState, user: Row) -> dict[str, Any]:
    return {str(fid): user["user_fields"].get(str(fid)) for fid in sorted(forum.user_fields)}


def user_json(forum: ForumState, user: Row, viewer: Row) -> dict[str, Any]:
    data = {
        **basic_user(user),
        "last_posted_at": None,
        "last_seen_at": user["last_seen_at"],
        "created_at": user["created_at"],
        "ignored": False,
        "muted": False,
        "can_ignore_user": False,
        "can_mute_user": False,
        "can_send_private_messages": True,
        "can_send_private_message_to_user": True,
        "trust_level": user["trust_level"],
        "moderator": user["moderator"],
        "admin": user["admin"],
        "title": user["title"],
        "badge_count": sum(1 for ub in forum.user_badges.values() if ub["user_id"] == user["id"]),
        "user_fields": user_fields_of(forum, user),
        "custom_fields": {},
        "time_read": 0,
        "recent_time_read": 0,
        "primary_group_id": user["primary_group_id"],
        **flair_fields(forum, user),
        "featured_topic": None,
        "staged": user["staged"],
        "can_edit": is_staff(viewer) or viewer["id"] == user["id"],
        "can_edit_username": is_staff(viewer),
        "can_edit_email": is_staff(viewer),
        "can_edit_name": True,
        "post_count": forum.post_count(user),
        "topic_count": sum(1 for t in forum.topics.values() if t["user_id"] == user["id"] and t["deleted_at"] is None),
        "groups": [basic_group(forum, g, viewer) for g in forum.groups_of(user, automatic=True)],
    }
    return data


def granted_by_json(forum: ForumState, user: Row) -> dict[str, Any]:
    return {
        **basic_user(user),
        "flair_name": flair_fields(forum, user)["flair_name"],
        "admin": user["admin"],
        "moderator": user["moderator"],
        "trust_level": user["trust_level"],
        "primary_group_name": flair_fields(forum, user)["primary_group_name"],
    }


# ---- badges ---------------------------------------------------------------------------------------------------------------


def badge_json(badge: Row, admin: bool = True) -> dict[str, Any]:
    data = {
        "id": badge["id"],
        "name": badge["name"],
        "description": badge["description"],
        "grant_count": badge["grant_count"],
        "allow_title": badge["allow_title"],
        "multiple_grant": badge["multiple_grant"],
        "icon": badge["icon"],
        "image_url": None,
        "listable": badge["listable"],
        "enabled": badge["enabled"],
        "badge_grouping_id": badge["badge_grouping_id"],
        "system": badge["system"],
        "slug": slug(badge["name"], "-"),
        "manually_grantable": not badge["system"] and not badge["query"],
        "badge_type_id": badge["badge_type_id"],
    }
    if admin:
        data.update(
            {
                "long_description": badge["long_description"],
                "query": badge["query"],
                "trigger": badge["trigger"],
                "target_posts": badge["target_posts"],
                "auto_revoke": badge["auto_revoke"],
                "show_posts": badge["show_posts"],
                "i18n_name": None,
                "image_upload_id": badge["image_upload_id"],
                "show_in_post_header": badge["show_in_post_header"],
            }
        )
    return data


def badge_types_for(badges: list[Row]) -> list[dict[str, Any]]:
    wanted = {b["badge_type_id"] for b in badges}
    return [dict(t) for t in BADGE_TYPES if t["id"] in wanted]


def grouping_position(badge: Row) -> int:
    return next((g["position"] for g in BADGE_GROUPINGS if g["id"] == badge["badge_grouping_id"]), 14)


def detailed_user_badge(forum: ForumState, grant: Row, viewer: Row, count: int | None = None) -> dict[str, Any]:
    badge = forum.badges[grant["badge_id"]]
    data: dict[str, Any] = {"id": grant["id"], "granted_at": grant["granted_at"], "created_at": grant["created_at"]}
    if count is not None:
        data["count"] = count
    data.update(
        {
            "grouping_position": grouping_position(badge),
            "is_favorite": None,
            "can_favorite": viewer["id"] == grant["user_id"] and not 1 <= badge["id"] <= 4,
            "badge_id": badge["id"],
            "granted_by_id": grant["granted_by_id"],
        }
    )
    post = forum.posts.get(grant["post_id"]) if grant["post_id"] is not None else None
    if post is not None:
        topic = forum.topics.get(post["topic_id"])
        data["post_number"] = post["post_number"]
        data["topic_id"] = post["topic_id"]
        data["topic_title"] = topic["title"] if topic else None
    return data


# ---- groups ---------------------------------------------------------------------------------------------------------------


def basic_group(forum: ForumState, group: Row, viewer: Row) -> dict[str, Any]:
    return {
        "id": group["id"],
        "automatic": group["automatic"],
        "name": group["name"],
        "user_count": len(forum.member_ids(group)),
        "mentionable_level": group["mentionable_level"],
        "messageable_level": group["messageable_level"],
        "visibility_level": group["visibility_level"],
        "primary_group": group["primary_group"],
        "title": group["title"],
        "grant_trust_level": group["grant_trust_level"],
        "incoming_email": group["incoming_email"],
        "has_messages": False,
        "flair_url": group["flair_icon"] or (f"/uploads/default/{group['flair_upload_id']}.png" if group["flair_upload_id"] else None),
        "flair_icon": group["flair_icon"],
        "flair_bg_color": group["flair_bg_color"],
        "flair_color": group["flair_color"],
        "bio_raw": group["bio_raw"],
        "bio_cooked": cook(group["bio_raw"]) if group["bio_raw"] else None,
        "bio_excerpt": group["bio_raw"][:300] if group["bio_raw"] else None,
        "public_admission": group["public_admission"],
        "public_exit": group["public_exit"],
        "allow_membership_requests": group["allow_membership_requests"],
        "full_name": group["full_name"],
        "default_notification_level": group["default_notification_level"],
        "membership_request_template": group["membership_request_template"],
        "members_visibility_level": group["members_visibility_level"],
        "can_see_members": True,
        "can_admin_group": bool(viewer["admin"]),
        "can_edit_group": bool(viewer["admin"]) and not group["automatic"],
        "publish_read_state": group["publish_read_state"],
    }  # fmt: skip


def group_show_json(forum: ForumState, group: Row, viewer: Row) -> dict[str, Any]:
    data = basic_group(forum, group, viewer)
    data.update(
        {
            "is_group_user": forum.is_member(group, viewer),
            "is_group_owner_display": bool(group["_members"].get(viewer["id"], {}).get("owner")),
            "mentionable": group["mentionable_level"] > 0,
            "messageable": group["messageable_level"] > 0,
            "automatic_membership_email_domains": group["automatic_membership_email_domains"],
            "smtp_updated_at": None,
            "smtp_updated_by": None,
            "smtp_enabled": False,
            "smtp_server": None,
            "smtp_port": None,
            "smtp_ssl_mode": None,
            "email_username": None,
            "email_from_alias": None,
            "email_password": None,
            "message_count": 0,
            "allow_unknown_sender_topic_replies": False,
            "associated_group_ids": [],
            "watching_category_ids": [],
            "tracking_category_ids": [],
            "watching_first_post_category_ids": [],
            "regular_category_ids": [],
            "muted_category_ids": [],
            "watching_tags": [],
            "watching_first_post_tags": [],
            "tracking_tags": [],
            "regular_tags": [],
            "muted_tags": [],
        }
    )
    return data


# ---- categories and posts -------------------------------------------------------------------------------------------------


def category_json(forum: ForumState, category: Row) -> dict[str, Any]:
    topics = [t for t in forum.topics.values() if t["category_id"] == category["id"] and t["deleted_at"] is None]
    children = [c for c in forum.categories.values() if c["parent_category_id"] == category["id"]]
    return {
        "id": category["id"],
        "name": category["name"],
        "color": category["color"],
        "text_color": category["text_color"],
        "style_type": "square",
        "emoji": None,
        "icon": None,
        "slug": category["slug"],
        "topic_count": len(topics),
        "post_count": sum(1 for p in forum.posts.values() if p["deleted_at"] is None and p["topic_id"] in {t["id"] for t in topics}),
        "position": category["position"],
        "description": category["description"],
        "description_text": category["description"],
        "description_excerpt": category["description"],
        "topic_url": f"/t/about-the-{category['slug']}-category",
        "read_restricted": category["read_restricted"],
        "permission": 1,
        "notification_level": 1,
        "can_edit": True,
        "topic_template": None,
        "has_children": bool(children),
        "subcategory_count": len(children),
        "parent_category_id": category["parent_category_id"],
        "sort_order": None,
        "sort_ascending": None,
        "show_subcategory_list": False,
        "num_featured_topics": 3,
        "default_view": None,
        "subcategory_list_style": "rows_with_featured_topics",
        "default_top_period": "all",
        "default_list_filter": "all",
        "minimum_required_tags": 0,
        "navigate_to_first_post_after_read": False,
        "is_uncategorized": category["id"] == 1,
        "subcategory_ids": [c["id"] for c in children],
    }  # fmt: skip


def post_json(forum: ForumState, post: Row, viewer: Row, add_raw: bool = False) -> dict[str, Any]:
    author = forum.users.get(post["user_id"]) or forum.users[-1]
    topic = forum.topics[post["topic_id"]]
    staff = is_staff(viewer)
    data = {
        "id": post["id"],
        "name": author["name"],
        "username": author["username"],
        "avatar_template": avatar(author),
        "created_at": post["created_at"],
        "cooked": post["cooked"],
        "post_number": post["post_number"],
        "post_type": post["post_type"],
        "posts_count": len(forum.live_posts(topic)),
        "updated_at": post["updated_at"],
        "reply_count": 0,
        "reply_to_post_number": post["reply_to_post_number"],
        "quote_count": 0,
        "incoming_link_count": 0,
        "reads": 1,
        "readers_count": 0,
        "score": 0,
        "yours": author["id"] == viewer["id"],
        "topic_id": topic["id"],
        "topic_slug": topic["slug"],
        "display_username": author["name"],
        **flair_fields(forum, author),
        "version": post["version"],
        "can_edit": staff or author["id"] == viewer["id"],
        "can_delete": staff and post["deleted_at"] is None,
        "can_recover": staff and post["deleted_at"] is not None,
        "can_see_hidden_post": staff,
        "can_wiki": staff,
        "user_title": author["title"],
        "bookmarked": False,
        "actions_summary": actions_summary(forum, post, viewer),
        "moderator": author["moderator"],
        "admin": author["admin"],
        "staff": is_staff(author),
        "user_id": author["id"],
        "hidden": bool(post.get("hidden")),
        "trust_level": author["trust_level"],
        "deleted_at": post["deleted_at"],
        "user_deleted": post["user_deleted"],
        "edit_reason": post["edit_reason"],
        "can_view_edit_history": True,
        "wiki": False,
        "reviewable_id": None,
        "reviewable_score_count": 0,
        "reviewable_score_pending_count": 0,
        "post_url": f"/t/{topic['slug']}/{topic['id']}/{post['post_number']}",
        "mentioned_users": [],
    }
    if staff and post.get("hidden"):
        data["hidden_reason_id"] = post.get("hidden_reason_id")  # PostSerializer#include_hidden_reason_id?
    if forum.settings.solved_enabled:
        # discourse-solved plugin.rb (at e4ed91dd): ``add_to_serializer(:post, :accepted_answer)`` etc.
        solved_post = forum.solved.get(topic["id"])
        data["accepted_answer"] = solved_post == post["id"]
        data["topic_accepted_answer"] = solved_post is not None
    if add_raw:
        data["raw"] = post["raw"]
    return data
