"""discourse-solved (bundled in core as ``plugins/discourse-solved``): ``POST /solution/accept`` and
``/solution/unaccept``, and what the serializers show.

Sources (discourse/discourse):

- plugins/discourse-solved/config/routes.rb: ``post "/accept" => "answer#accept"``, mounted ``at: "solution"``.
- plugins/discourse-solved/app/controllers/discourse_solved/answer_controller.rb (at 16910f84): the ``post`` model
  missing → ``Discourse::NotFound``; the ``can_accept_answer`` policy failing → ``Discourse::InvalidAccess`` (403).
  ``limit_accepts`` (4 per 30 s, 20 an hour for non-staff) is not reproduced.
- plugins/discourse-solved/app/services/discourse_solved/accept_answer.rb: ``Post.find_by(id:)`` (a trashed post is
  not found); accepting replaces a topic's earlier solution (``solved.destroy!`` then a new ``SolvedTopic``).
- plugins/discourse-solved/lib/discourse_solved/guardian_extensions.rb ``can_accept_answer?``: never the first post
  (``post.post_number <= 1``), only where ``allow_accepted_answers?`` (``allow_solved_on_all_topics`` or a category
  with answers enabled), staff always, else the topic's owner while it is open and ``accept_solutions_topic_author``.
- plugins/discourse-solved/plugin.rb (at e4ed91dd): ``add_to_serializer(:post, :accepted_answer) {
  topic&.solved&.answer_post_id == object.id }``, ``:topic_accepted_answer``, ``:can_accept_answer``; and
  ``on(:post_destroyed) { |post| DiscourseSolved.unaccept_answer!(post) }``: deleting the solution unaccepts it.
- plugins/discourse-solved/app/serializers/concerns/discourse_solved/topic_answer_mixin.rb: topic lists carry
  ``has_accepted_answer``.
"""

from __future__ import annotations

from typing import Any

from sandbox.discourse.errors import forbidden, not_found, require
from sandbox.discourse.pm_access import can_see_topic, is_pm
from sandbox.discourse.rails import ruby_int
from sandbox.discourse.routing import Ctx, Endpoint, J, route
from sandbox.discourse.state import ForumState, Row, is_staff


def allows_answers(forum: ForumState, topic: Row) -> bool:
    if forum.settings.allow_solved_on_all_topics:
        return True
    if is_pm(topic):
        return False  # ``allow_solved_in_groups`` is not reproduced: no PM takes solutions here
    return topic["category_id"] in forum.solved_categories


def can_accept(forum: ForumState, topic: Row, post: Row, user: Row) -> bool:
    """``Guardian#can_accept_answer?``."""
    if post["post_number"] <= 1 or not allows_answers(forum, topic) or not can_see_topic(topic, user):
        return False
    if post["deleted_at"] is not None and not user["moderator"] and not user["admin"]:
        return False
    if is_staff(user):
        return True
    return topic["user_id"] == user["id"] and not topic["closed"] and forum.settings.accept_solutions_topic_author


def accepted(forum: ForumState, post: Row) -> bool:
    return forum.solved.get(post["topic_id"]) == post["id"]


def accepted_answer_info(forum: ForumState, topic: Row) -> dict[str, Any] | None:
    """``Topic#accepted_answer_post_info`` as the topic view shows it (post number and author)."""
    post = forum.posts.get(forum.solved.get(topic["id"], 0))
    if post is None:
        return None
    author = forum.users.get(post["user_id"])
    return {"post_number": post["post_number"], "username": author["username"] if author else None,
            "name": author["name"] if author else None, "excerpt": post["raw"][:300]}  # fmt: skip


class Solved:
    def __init__(self, forum: ForumState) -> None:
        self.forum = forum

    def routes(self) -> list[Endpoint]:
        return [
            route("POST", rf"/solution/accept{J}", self.accept),
            route("POST", rf"/solution/unaccept{J}", self.unaccept),
        ]

    def _post_and_topic(self, ctx: Ctx) -> tuple[Row, Row]:
        if not self.forum.settings.solved_enabled:
            raise not_found()  # ``requires_plugin``: the plugin's routes answer 404 while it is disabled
        post = self.forum.posts.get(ruby_int(require(ctx.params, "id")))
        if post is None or post["deleted_at"] is not None:
            raise not_found()
        topic = self.forum.topics.get(post["topic_id"])
        if topic is None:
            raise not_found()
        return post, topic

    def accept(self, ctx: Ctx) -> Any:
        post, topic = self._post_and_topic(ctx)
        if not can_accept(self.forum, topic, post, ctx.actor):
            raise forbidden()
        self.forum.solved[topic["id"]] = post["id"]
        return {"accepted_answer": accepted_answer_info(self.forum, topic)}

    def unaccept(self, ctx: Ctx) -> Any:
        post, topic = self._post_and_topic(ctx)
        if not can_accept(self.forum, topic, post, ctx.actor) and not (
            is_staff(ctx.actor) and accepted(self.forum, post)
        ):
            raise forbidden()
        if accepted(self.forum, post):
            del self.forum.solved[topic["id"]]
        return {"accepted_answer": None}
