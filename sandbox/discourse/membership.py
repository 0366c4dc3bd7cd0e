"""Group membership and its side effects on the member (``GroupUser`` callbacks, ``User#match_primary_group_changes``,
``User#next_best_title``): shared by the groups controller, the user update and the in-process helpers."""

from __future__ import annotations

from sandbox.discourse.rails import now_iso
from sandbox.discourse.state import ForumState, Row


def set_primary_group(forum: ForumState, user: Row, new_id: int | None) -> None:
    old_id = user["primary_group_id"]
    if old_id == new_id:
        return
    user["primary_group_id"] = new_id
    old_group = forum.group_of(old_id)
    if old_group is not None and user["title"] is not None and old_group["title"] == user["title"]:
        new_group = forum.group_of(new_id)
        user["title"] = new_group["title"] if new_group else None
    if user["flair_group_id"] == old_id:
        user["flair_group_id"] = new_id


def add_member(forum: ForumState, group: Row, user: Row, owner: bool = False) -> bool:
    if user["id"] in group["_members"]:
        if owner:
            group["_members"][user["id"]]["owner"] = True
        return False
    group["_members"][user["id"]] = {"added_at": now_iso(), "owner": owner, "_seq": forum.next_seq()}
    if group["title"] and not user["title"]:  # GroupUser#update_title
        user["title"] = group["title"]
    if group["primary_group"]:  # GroupUser#set_primary_group
        set_primary_group(forum, user, group["id"])
    if group["grant_trust_level"] is not None:  # TrustLevelGranter only raises
        user["trust_level"] = max(user["trust_level"], int(group["grant_trust_level"]))
    return True


def next_best_title(forum: ForumState, user: Row) -> str | None:
    """``User#next_best_title``: another group's title (primary first), else a title-granting badge's name."""
    titled = [g for g in forum.groups_of(user) if g["title"]]
    titled.sort(key=lambda g: (g["id"] != user["primary_group_id"], not g["primary_group"], g["id"]))
    if titled:
        return str(titled[0]["title"])
    for grant in forum.grants_of(user):
        badge = forum.badges.get(grant["badge_id"])
        if badge and badge["allow_title"]:
            return str(badge["name"])
    return None


def remove_member(forum: ForumState, group: Row, user: Row) -> bool:
    if user["id"] not in group["_members"]:
        return False
    del group["_members"][user["id"]]
    if group["title"] and group["title"] == user["title"]:  # GroupUser#grant_other_available_title
        user["title"] = next_best_title(forum, user)
    # GroupUser#remove_primary_and_flair_group, then User#match_primary_group_changes on that save
    new_flair = None if user["flair_group_id"] == group["id"] else user["flair_group_id"]
    if user["primary_group_id"] == group["id"]:
        if user["title"] is not None and group["title"] == user["title"]:
            user["title"] = None
        user["primary_group_id"] = None
    user["flair_group_id"] = new_flair
    return True


def destroy_group(forum: ForumState, group: Row) -> None:
    for user_id in list(group["_members"]):
        if user_id in forum.users:
            remove_member(forum, group, forum.users[user_id])
    del forum.groups[group["id"]]
