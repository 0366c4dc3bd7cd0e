"""Personal messages: who may see and post in a PM topic, the validations ``POST /posts.json`` applies to one (body
and title lengths, the duplicate-body check, who may send), and ``ListController``'s message lists
(``/topics/private-messages/{username}``, ``/topics/private-messages-sent/{username}``).

Sources (discourse/discourse):

- app/validators/post_validator.rb (newest stored version): ``stripped_length`` takes
  ``SiteSetting.private_message_post_length`` (``min_personal_message_post_length..max_post_length``) in a PM;
  ``unique_post_validator`` returns for ``unique_posts_mins == 0`` or a staff acting user, and applies to PMs like
  any post; ``post_body_validator`` skips body checks in ``pm_with_non_human_user?`` topics.
- config/site_settings.yml at 00011e9c: ``min_personal_message_post_length`` 10 (``locale_default`` ja/zh_CN/zh_TW
  3), ``min_personal_message_title_length`` 2, ``personal_message_enabled_groups`` "11" (trust_level_1).
- app/models/post.rb: ``unique_post_key`` is ``unique-post-#{user_id}:#{raw_hash}``, ``raw_hash`` the SHA1 of
  ``raw.gsub(/\\s+/, "")``; ``store_unique_post_key`` keeps the post id ``unique_posts_mins`` minutes and
  ``matches_recent_post?`` compares it with the post's own id. The error is ``:raw`` + ``just_posted_that``.
- app/models/topic.rb ``validates :title``: ``quality_title`` and ``unique_among`` are skipped for
  ``private_message?``; the length is ``private_message_title_length``.
- lib/guardian/topic_guardian.rb ``can_see_topic?``: a PM is visible to its allowed users and to admins.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from sandbox.discourse import serializers as ser
from sandbox.discourse.errors import forbidden, not_found
from sandbox.discourse.pm_access import allowed_user_ids, is_pm
from sandbox.discourse.rails import blank, strict_int
from sandbox.discourse.routing import Ctx, Endpoint, J, route
from sandbox.discourse.state import ForumState, Row, is_staff

#: ``TopicQuery`` page size of topic lists (``per_page_setting``: 30).
TOPICS_PER_PAGE = 30
#: Locales whose ``min_personal_message_post_length`` default is 3 (config/site_settings.yml ``locale_default``).
SHORT_PM_LOCALES = ("ja", "zh_CN", "zh_TW")
#: ``activerecord.errors.models.post.attributes.raw`` + ``just_posted_that`` (config/locales/server.en.yml):
#: ``errors.add(:raw, I18n.t(:just_posted_that))`` renders as the attribute's name and the message.
MSG_JUST_POSTED_THAT = "Body is too similar to what you recently posted"


def min_pm_post_length(forum: ForumState) -> int:
    configured = forum.settings.min_personal_message_post_length
    if configured is not None:
        return configured
    return 3 if forum.locale in SHORT_PM_LOCALES else 10


def can_send_private_messages(forum: ForumState, user: Row) -> bool:
    """``Guardian#can_send_private_messages?``: staff, or a member of ``personal_message_enabled_groups``."""
    return is_staff(user) or user["trust_level"] >= forum.settings.personal_message_min_trust_level


def recipients(forum: ForumState, value: Any) -> tuple[list[Row], list[str]]:
    """``target_recipients`` (or the older ``target_usernames``): comma-separated usernames → the users, and the
    names that find nobody."""
    names = value if isinstance(value, list) else str(value or "").split(",")
    found: list[Row] = []
    missing: list[str] = []
    for name in (str(n).strip() for n in names):
        if not name:
            continue
        user = forum.find_user(name)
        if user is None:
            missing.append(name)
        elif user not in found:
            found.append(user)
    return found, missing


def _unique_key(user: Row, raw: str) -> str:
    return f"unique-post-{user['id']}:" + hashlib.sha1(re.sub(r"\s+", "", raw).encode()).hexdigest()


def duplicate_body(forum: ForumState, user: Row, raw: str) -> bool:
    """``PostValidator#unique_post_validator``: the same body by the same member within ``unique_posts_mins``."""
    if forum.settings.unique_posts_mins == 0 or is_staff(user) or blank(raw):
        return False
    held = forum.unique_posts.get(_unique_key(user, raw))
    return held is not None and held[0] > forum.clock()


def remember_body(forum: ForumState, user: Row, post: Row) -> None:
    """``Post#store_unique_post_key`` after a post is created (for every user; only the check skips staff)."""
    minutes = forum.settings.unique_posts_mins
    if minutes > 0:
        forum.unique_posts[_unique_key(user, post["raw"])] = (forum.clock() + minutes * 60, post["id"])


def _poster_ids(topic: Row, live: list[Row]) -> list[int]:
    """``TopicPostersSummary`` (app/models/topic_posters_summary.rb ``user_ids``, ``top_posters``,
    ``shuffle_last_poster_to_back_in``): the creator, the last poster and the featured users (``TopicFeaturedUsers``:
    up to four most frequent other posters), unique, at most five, the last poster moved to the end unless they
    created the topic. A topic with many repliers names five of them, not all."""
    if not live:
        return []
    last = live[-1]["user_id"]
    counts: dict[int, int] = {}
    for post in live:
        if post["user_id"] not in (topic["user_id"], last):
            counts[post["user_id"]] = counts.get(post["user_id"], 0) + 1
    featured = sorted(counts, key=lambda uid: (-counts[uid], uid))[:4]
    ids = list(dict.fromkeys([topic["user_id"], last, *featured]))[:5]
    if last != topic["user_id"]:
        ids = [uid for uid in ids if uid != last] + [last]
    return ids


def topic_list_item(forum: ForumState, topic: Row) -> dict[str, Any]:
    """``TopicListItemSerializer`` (with discourse-solved's ``has_accepted_answer``), the fields lists show."""
    every = sorted((p for p in forum.posts.values() if p["topic_id"] == topic["id"]), key=lambda p: p["post_number"])
    live = [p for p in every if p["deleted_at"] is None]
    last = forum.users.get(live[-1]["user_id"]) if live else None
    posters = _poster_ids(topic, live)
    item: dict[str, Any] = {
        "id": topic["id"],
        "title": topic["title"],
        "slug": topic["slug"],
        "posts_count": len(live),
        "reply_count": max(0, len(live) - 1),
        "highest_post_number": topic["highest_post_number"],
        "created_at": topic["created_at"],
        "last_posted_at": live[-1]["created_at"] if live else None,
        "bumped": True,
        "bumped_at": topic.get("bumped_at") or topic["created_at"],
        "archetype": topic["archetype"],
        "visible": topic["visible"],
        "closed": topic["closed"],
        "archived": topic["archived"],
        "like_count": sum(1 for a in forum.post_actions.values() if a["post_id"] in {p["id"] for p in live}),
        # ``TopicListItemSerializer`` ``views`` (the ``topics.views`` counter, raised by ``TopicViewItem.add`` once per
        # visitor and day; the sandbox's ``add_views`` stands in for visitors) and ``TopicTagsMixin`` ``tags``
        # (tag names, while ``tagging_enabled``).
        "views": int(topic.get("views") or 0),
        "tags": list(topic.get("tags") or []),
        "category_id": topic["category_id"],
        "last_poster_username": last["username"] if last else None,
        "posters": [{"extras": None, "description": "", "user_id": uid, "primary_group_id": None} for uid in posters],
    }
    if forum.settings.solved_enabled:
        item["has_accepted_answer"] = topic["id"] in forum.solved
    if is_pm(topic):
        item["allowed_user_count"] = len(allowed_user_ids(topic))
    return item


def topic_list(forum: ForumState, topics: list[Row], page: int, more_path: str) -> dict[str, Any]:
    """``TopicListSerializer``: ``topic_list.topics`` (30 a page) and ``more_topics_url`` while a page is full."""
    ordered = sorted(topics, key=lambda t: (t.get("bumped_at") or t["created_at"], t["id"]), reverse=True)
    shown = ordered[page * TOPICS_PER_PAGE : (page + 1) * TOPICS_PER_PAGE]
    user_ids = {p["user_id"] for t in shown for p in forum.posts.values() if p["topic_id"] == t["id"]}
    body: dict[str, Any] = {
        "users": [ser.basic_user(forum.users[uid]) for uid in sorted(user_ids) if uid in forum.users],
        "primary_groups": [],
        "topic_list": {
            "can_create_topic": True,
            "per_page": TOPICS_PER_PAGE,
            "topics": [topic_list_item(forum, t) for t in shown],
        },
    }
    if len(shown) == TOPICS_PER_PAGE:
        body["topic_list"]["more_topics_url"] = f"{more_path}?page={page + 1}"
    return body


def page_param(ctx: Ctx) -> int:
    """``ListController``: ``page`` is ``params[:page].to_i`` clamped at 0 (a junk value is page 0)."""
    value = strict_int(ctx.params.get("page"))
    return max(0, value or 0)


class PrivateMessages:
    """``ListController#private_messages`` / ``#private_messages_sent`` (``TopicQuery#list_private_messages``)."""

    def __init__(self, forum: ForumState) -> None:
        self.forum = forum

    def routes(self) -> list[Endpoint]:
        return [
            route("GET", rf"/topics/private-messages/(?P<username>[^/]+?){J}", self.inbox),
            route("GET", rf"/topics/private-messages-sent/(?P<username>[^/]+?){J}", self.sent),
        ]

    def _owner(self, ctx: Ctx) -> Row:
        user = self.forum.find_user(ctx.path_params["username"])
        if user is None:
            raise not_found()
        # ``guardian.ensure_can_see_private_messages!(user.id)``: an admin, or the user themself.
        if not ctx.actor["admin"] and ctx.actor["id"] != user["id"]:
            raise forbidden()
        return user

    def inbox(self, ctx: Ctx) -> Any:
        """Every live PM the user is an allowed user of, newest bumped first."""
        user = self._owner(ctx)
        topics = [
            t
            for t in self.forum.topics.values()
            if is_pm(t) and t["deleted_at"] is None and user["id"] in allowed_user_ids(t)
        ]
        return topic_list(self.forum, topics, page_param(ctx), f"/topics/private-messages/{user['username']}")

    def sent(self, ctx: Ctx) -> Any:
        """The PMs the user wrote in (``TopicQuery#list_private_messages_sent``: a post of theirs exists)."""
        user = self._owner(ctx)
        posted = {p["topic_id"] for p in self.forum.posts.values() if p["user_id"] == user["id"]}
        topics = [t for t in self.forum.topics.values() if is_pm(t) and t["deleted_at"] is None and t["id"] in posted]
        return topic_list(self.forum, topics, page_param(ctx), f"/topics/private-messages-sent/{user['username']}")
