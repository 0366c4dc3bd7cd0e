"""Likes as posts show them: the likes of a post, whether a user may like it (``PostGuardian#post_can_act?``), and the
like entry of ``PostSerializer#actions_summary``. Sources: :mod:`sandbox.discourse.post_actions`."""

from __future__ import annotations

from typing import Any

from sandbox.discourse.pm_access import can_see_topic
from sandbox.discourse.state import ForumState, Row

#: ``PostActionType.types[:like]``
LIKE = 2


def likers(forum: ForumState, post: Row) -> list[Row]:
    """The post's likes, oldest first."""
    found = [a for a in forum.post_actions.values() if a["post_id"] == post["id"] and a["post_action_type_id"] == LIKE]
    return sorted(found, key=lambda a: (a["created_at"], a["id"]))


def can_like(forum: ForumState, post: Row, user: Row) -> bool:
    """``post_can_act?(post, :like)``."""
    topic = forum.topics.get(post["topic_id"])
    if topic is None or not can_see_topic(topic, user) or topic["archived"]:
        return False
    if post["deleted_at"] is not None or post["user_id"] == user["id"]:
        return False
    return not any(a["user_id"] == user["id"] for a in likers(forum, post))


def actions_summary(forum: ForumState, post: Row, viewer: Row) -> list[dict[str, Any]]:
    """The like entry of ``PostSerializer#actions_summary`` (the other types are flags, never counted here)."""
    count = len(likers(forum, post))
    summary: dict[str, Any] = {"id": LIKE}
    if count:
        summary["count"] = count
    if any(a["user_id"] == viewer["id"] for a in likers(forum, post)):
        summary["acted"] = True
    elif can_like(forum, post, viewer):
        summary["can_act"] = True
    return [summary] if summary.get("can_act") or summary.get("count") else []
