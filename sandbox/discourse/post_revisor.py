"""Changing and removing posts: ``PostRevisor#revise!`` (new versions outside the editing grace period) and
``PostDestroyer`` (soft deletes; deleting the first post deletes the topic)."""

from __future__ import annotations

import difflib
from typing import Any

from sandbox.discourse.rails import clean_raw, cook, now_iso
from sandbox.discourse.state import ForumState, Row, is_staff


def post_record(forum: ForumState, post: Row) -> dict[str, Any]:
    """A stored post as the in-process helpers show it, with ``username`` and ``last_editor_username``."""
    data = {k: v for k, v in post.items() if not k.startswith("_")}
    editor = forum.users.get(post["last_editor_id"])
    author = forum.users.get(post["user_id"])
    data["last_editor_username"] = editor["username"] if editor else None
    data["username"] = author["username"] if author else None
    return data


def _diff_size(before: str, after: str) -> int:
    changed = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, before, after, autojunk=False).get_opcodes():
        if tag != "equal":
            changed += max(i2 - i1, j2 - j1)
    return changed


def revise_post(forum: ForumState, post: Row, editor: Row, changes: dict[str, Any], bypass_bump: bool = False) -> bool:
    """``PostRevisor#revise!``: returns whether anything changed; bumps ``version`` only outside the grace period,
    and then bumps the topic when the post is its last one unless ``bypass_bump`` (lib/post_revisor.rb @ 00fc072
    ``revise_and_create_new_version`` → ``bump_topic``: ``return if bypass_bump? || !is_last_post?``)."""
    settings = forum.settings
    fields: dict[str, Any] = {}
    if changes.get("raw") is not None:
        fields["raw"] = clean_raw(str(changes["raw"]))
    if "edit_reason" in changes and changes["edit_reason"] is not None:
        fields["edit_reason"] = changes["edit_reason"]
    changed = any(fields[k] != post[k] for k in fields)
    if not changed:
        return False
    now = forum.clock()
    # ``should_create_new_version?``: another editor, past the grace period, or an edit reason other than the post's
    # (``edit_reason_specified?``, lib/post_revisor.rb @ 00fc072)
    new_version = (
        post["last_editor_id"] != editor["id"]
        or now - post["_last_version_clock"] > settings.editing_grace_period
        or ("edit_reason" in fields and fields["edit_reason"] != post["edit_reason"])
    )
    if not new_version and "raw" in fields:
        max_diff = (
            settings.editing_grace_period_max_diff_high_trust
            if is_staff(editor) or editor["trust_level"] > 1
            else settings.editing_grace_period_max_diff
        )
        original = post["_version_raw"]
        if abs(len(original) - len(fields["raw"])) > max_diff or _diff_size(original, fields["raw"]) > max_diff:
            new_version = True
    if "raw" in fields:
        post["raw"] = fields["raw"]
        post["cooked"] = cook(fields["raw"])
    if "edit_reason" in fields:
        post["edit_reason"] = fields["edit_reason"]
    post["last_editor_id"] = editor["id"]
    post["updated_at"] = now_iso()
    if new_version:
        post["version"] += 1
        post["_last_version_clock"] = now
        post["_version_raw"] = post["raw"]
        topic = forum.topics.get(post["topic_id"])
        if topic is not None and not bypass_bump and _is_last_post(forum, post):
            topic["bumped_at"] = post["updated_at"]
    return True


def _is_last_post(forum: ForumState, post: Row) -> bool:
    """``Post#is_last_post?``-like: no live post of the topic comes after it."""
    return not any(
        other["topic_id"] == post["topic_id"]
        and other["post_number"] > post["post_number"]
        and other["deleted_at"] is None
        for other in forum.posts.values()
    )


def trash_post(forum: ForumState, post: Row, by: Row | None) -> None:
    if forum.solved.get(post["topic_id"]) == post["id"]:
        # discourse-solved plugin.rb: ``on(:post_destroyed) { |post| DiscourseSolved.unaccept_answer!(post) }``
        del forum.solved[post["topic_id"]]
    if post["deleted_at"] is None:
        post["deleted_at"] = now_iso()
        post["deleted_by_id"] = by["id"] if by else None
    if post["post_number"] == 1:
        topic = forum.topics.get(post["topic_id"])
        if topic is not None and topic["deleted_at"] is None:
            topic["deleted_at"] = post["deleted_at"]
            topic["deleted_by_id"] = post["deleted_by_id"]
