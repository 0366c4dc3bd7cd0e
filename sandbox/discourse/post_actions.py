"""Likes: ``PostActionsController#create`` (``POST /post_actions``) and ``PostActionUsersController#index``
(``GET /post_action_users``), and the ``actions_summary`` a post carries.

Sources (discourse/discourse):

- app/controllers/post_actions_controller.rb ``fetch_post_from_params``: staff find deleted posts too; then
  ``guardian.ensure_can_see!(@post)`` (InvalidAccess, 403, for a post the user cannot see or that does not exist).
- lib/post_action_creator.rb ``perform``: unless ``guardian.post_can_act?`` → ``result.forbidden = true`` and
  ``add_error(I18n.t("invalid_access"))``; the controller's ``render_json_error(result)`` answers 403
  (``status_code``: ``forbidden``) with ``{"errors": [...]}`` and no ``error_type``.
- lib/guardian/post_guardian.rb ``post_can_act?``: no action on a trashed post or an archived topic, not the same
  action twice (``taken_actions``), and "don't like your own stuff" (``action_key == :like && is_my_own?(post)``).
- app/controllers/post_action_users_controller.rb (newest stored version): ``INDEX_LIMIT = 200``; ``page`` by
  ``fetch_int_from_params`` and ``limit`` by ``fetch_limit_from_params(default: 200, max: 200)`` (400
  ``invalid_parameters`` outside them); ``Post.with_deleted``; ordered by ``post_actions.created_at, id``; likes are
  a public type, so every liker is listed (``can_see_post_actors?``); ``total_rows_post_action_users`` and
  ``load_more_post_action_users`` only when the total passes the page size. ``PostActionUserSerializer`` is a
  ``BasicUserSerializer`` plus ``post_url`` and ``username_lower``: no ``created_at``.
- app/serializers/post_serializer.rb ``actions_summary``: ``{id, count, can_act, acted}``; a zero count is dropped
  and an entry shown only with ``can_act`` or a count.
"""

from __future__ import annotations

from typing import Any

from sandbox.discourse import serializers as ser
from sandbox.discourse.errors import Answer, error_body, fetch_int, forbidden, require
from sandbox.discourse.likes import LIKE, can_like, likers
from sandbox.discourse.locales import t
from sandbox.discourse.member_limits import on_like
from sandbox.discourse.pm_access import can_see_topic
from sandbox.discourse.rails import now_iso, ruby_int
from sandbox.discourse.routing import Ctx, Endpoint, J, route
from sandbox.discourse.state import ForumState, Row, is_staff

#: ``PostActionUsersController::INDEX_LIMIT``
INDEX_LIMIT = 200


def visible_post(forum: ForumState, ctx: Ctx, key: str = "id") -> Row:
    """``fetch_post_from_params`` / ``Post.with_deleted.find_by`` + ``ensure_can_see!``: 403 for none or unseen."""
    post = forum.posts.get(ruby_int(ctx.params.get(key)))
    if post is None:
        raise forbidden()
    topic = forum.topics.get(post["topic_id"])
    staff = is_staff(ctx.actor)
    if topic is None or not can_see_topic(topic, ctx.actor) or (post["deleted_at"] is not None and not staff):
        raise forbidden()
    return post


class PostActions:
    def __init__(self, forum: ForumState) -> None:
        self.forum = forum

    def routes(self) -> list[Endpoint]:
        return [
            route("POST", rf"/post_actions{J}", self.create),
            route("GET", rf"/post_action_users{J}", self.users),
        ]

    def create(self, ctx: Ctx) -> Any:
        forum = self.forum
        require(ctx.params, "id")
        post = visible_post(forum, ctx)
        type_id = ruby_int(require(ctx.params, "post_action_type_id"))
        if type_id != LIKE or not can_like(forum, post, ctx.actor):
            # Flags and other types are not part of the sandbox; a refused like is what PostActionCreator answers.
            raise Answer(403, error_body([t("invalid_access")]))
        on_like(forum, ctx.actor)
        action_id = forum.take_id("post_action")
        forum.post_actions[action_id] = {"id": action_id, "post_id": post["id"], "user_id": ctx.actor["id"],
                                         "post_action_type_id": LIKE, "created_at": now_iso()}  # fmt: skip
        return ser.post_json(forum, post, ctx.actor)

    def users(self, ctx: Ctx) -> Any:
        forum = self.forum
        require(ctx.params, "post_action_type_id")
        require(ctx.params, "id")
        type_id = ruby_int(ctx.params["post_action_type_id"])
        page = fetch_int(ctx.params, "page", 0)
        limit = fetch_int(ctx.params, "limit", INDEX_LIMIT, maximum=INDEX_LIMIT)
        post = forum.posts.get(ruby_int(ctx.params["id"]))
        if post is None:
            raise forbidden()
        topic = forum.topics.get(post["topic_id"])
        if topic is None or not can_see_topic(topic, ctx.actor) or (post["deleted_at"] and not is_staff(ctx.actor)):
            raise forbidden()
        actions = likers(forum, post) if type_id == LIKE else []
        shown = actions[page * limit : (page + 1) * limit]
        data: dict[str, Any] = {
            "post_action_users": [
                {
                    **ser.basic_user(forum.users[a["user_id"]]),
                    "post_url": None,
                    "username_lower": forum.users[a["user_id"]]["username"].lower(),
                }
                for a in shown
                if a["user_id"] in forum.users
            ]
        }
        if len(actions) > limit:
            data["total_rows_post_action_users"] = len(actions)
            if len(actions) > (page + 1) * limit:
                data["load_more_post_action_users"] = (
                    f"/post_action_users?id={post['id']}&limit={limit}&page={page + 1}&post_action_type_id={type_id}"
                )
        return data
