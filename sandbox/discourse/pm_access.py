"""Who takes part in a personal message, and who may see it (shared by the controllers and the serializers)."""

from __future__ import annotations

from sandbox.discourse.state import Row

PRIVATE_MESSAGE = "private_message"


def is_pm(topic: Row | None) -> bool:
    return topic is not None and topic.get("archetype") == PRIVATE_MESSAGE


def allowed_user_ids(topic: Row) -> list[int]:
    """``topic_allowed_users``: the sender and the recipients (and staff who replied)."""
    return list(topic.get("_allowed_user_ids") or [])


def can_see_topic(topic: Row, user: Row) -> bool:
    """``TopicGuardian#can_see_topic?`` for a PM: its allowed users, and admins (``is_admin?``)."""
    if not is_pm(topic):
        return True
    return bool(user["admin"]) or user["id"] in allowed_user_ids(topic)


def with_non_human_user(topic: Row) -> bool:
    """``Topic#pm_with_non_human_user?``: a PM between exactly one human (id > 0) and bots (id <= 0, e.g. system)."""
    return is_pm(topic) and sum(1 for uid in allowed_user_ids(topic) if uid > 0) == 1
