"""Posts: ``PostsController`` (create, show, update, destroy, recover).

Creation goes through ``PostCreator``/``TopicCreator`` validations and answers ``NewPostResultSerializer`` errors
(422 ``{"action":"create_post","errors":[..],"success":false}``): title length and uniqueness, category,
``external_id`` format/length/uniqueness, body length. Identical API post creations are memoized 120 s. Updates
answer 409 on an ``original_text`` mismatch and go through ``PostRevisor``; deletes are soft."""

from __future__ import annotations

import json
import re
from typing import Any

from sandbox.discourse import serializers as ser
from sandbox.discourse.categories import find_category
from sandbox.discourse.errors import (
    MSG_EDIT_CONFLICT,
    MSG_TOPIC_NOT_FOUND,
    Answer,
    forbidden,
    json_error,
    not_found,
    require,
)
from sandbox.discourse.member_limits import on_new_post, on_new_topic
from sandbox.discourse.pm_access import PRIVATE_MESSAGE, can_see_topic, is_pm, with_non_human_user
from sandbox.discourse.post_revisor import revise_post, trash_post
from sandbox.discourse.private_messages import (
    MSG_JUST_POSTED_THAT,
    can_send_private_messages,
    duplicate_body,
    min_pm_post_length,
    recipients,
    remember_body,
)
from sandbox.discourse.rails import blank, cast_bool, cast_int, clean_raw, cook, now_iso, ruby_int, slug
from sandbox.discourse.routing import Ctx, Endpoint, J, route
from sandbox.discourse.state import ForumState, Row, is_staff
from sandbox.discourse.topics import MSG_BODY_UNCLEAR, body_sentinel_valid, title_errors

#: ``Topic::EXTERNAL_ID_MAX_LENGTH``
EXTERNAL_ID_MAX_LENGTH = 50
#: ``PostsController#create`` memoizes API post creations this long (``DistributedMemoizer.memoize(signature_for(
#: manager_params), 120)``, discourse/discourse app/controllers/posts_controller.rb at 002becf8). Past it the same
#: post is created again: ``unique_posts_mins`` (``PostValidator#unique_post_validator``, app/validators/
#: post_validator.rb) returns at once for a staff acting user, as every CardBridge API user is; members acting
#: through ``Api-Username`` meet it (:mod:`sandbox.discourse.private_messages`).
POST_MEMO_SECONDS = 120
#: ``activerecord.errors.models.topic.attributes.base.cant_send_pm`` (TopicCreator#check_can_send_permission!,
#: ``rollback_with!(topic, :cant_send_pm)``); the English text as server.en.yml has it to our knowledge (the source
#: index did not hold that file's line): nothing in CardBridge reads it.
MSG_CANT_SEND_PM = "Sorry, you cannot send a message to that user."
#: ``activerecord.errors.models.topic.attributes.base.no_user_selected`` (TopicCreator#add_users), same caveat.
MSG_NO_USER_SELECTED = "You must select a valid user."


def add_post(forum: ForumState, topic: Row, author: Row, raw: str, reply_to: int | None, created_at: Any) -> Row:
    topic["highest_post_number"] += 1
    post_id = forum.take_id("post")
    stamp = str(created_at) if created_at else now_iso()
    raw = clean_raw(raw)
    post = {
        "id": post_id,
        "topic_id": topic["id"],
        "post_number": topic["highest_post_number"],
        "post_type": 1,
        "user_id": author["id"],
        "raw": raw,
        "cooked": cook(raw),
        "version": 1,
        "created_at": stamp,
        "updated_at": stamp,
        "deleted_at": None,
        "deleted_by_id": None,
        "user_deleted": False,
        "edit_reason": None,
        "last_editor_id": author["id"],
        "reply_to_post_number": reply_to,
        # ``Post#hide!`` (flags past the threshold): ``hidden``, ``hidden_at``, ``hidden_reason_id``.
        "hidden": False,
        "hidden_at": None,
        "hidden_reason_id": None,
        "_last_version_clock": forum.clock(),
        "_version_raw": raw,
    }
    forum.posts[post_id] = post
    topic["updated_at"] = stamp
    # A new regular post bumps its topic (``PostCreator#update_topic_stats``: ``bumped_at``), PMs included.
    topic["bumped_at"] = max(str(topic.get("bumped_at") or ""), stamp)
    return post


class Posts:
    def __init__(self, forum: ForumState) -> None:
        self.forum = forum
        #: ``PostsController#create`` memo: signature -> (expires at, status, JSON body).
        self.memo: dict[str, tuple[float, int, str]] = {}

    def routes(self) -> list[Endpoint]:
        return [
            route("POST", rf"/posts{J}", self.create),
            route("GET", rf"/posts/(?P<id>\d+){J}", self.show),
            route("PUT", rf"/posts/(?P<id>\d+){J}", self.update),
            route("DELETE", rf"/posts/(?P<id>\d+){J}", self.destroy),
            route("PUT", rf"/posts/(?P<id>\d+)/recover{J}", self.recover),
        ]

    def _raw_errors(self, raw: Any, minimum: int, private_message: bool = False) -> list[str]:
        """``PostValidator#stripped_length`` then ``#raw_quality`` (both errors when both fail, as Rails collects).

        ``raw_quality`` (``TextSentinel.body_sentinel``) applies to every post on a real forum; the sandbox checks it
        in personal messages only, for now: older sandbox tests post bodies like ``"x" * 30`` into public topics,
        which a real forum would refuse as unclear."""
        if blank(raw):
            return ["Body can't be blank"]
        stripped = str(raw).strip()
        errors: list[str] = []
        maximum = self.forum.settings.max_post_length
        if len(stripped) < minimum:
            errors.append(f"Body is too short (minimum is {minimum} characters)")
        elif len(stripped) > maximum:
            errors.append(f"Body is too long (maximum is {maximum} characters)")
        if private_message and not body_sentinel_valid(self.forum, str(raw), private_message):
            errors.append(MSG_BODY_UNCLEAR)
        return errors

    def _signature(self, ctx: Ctx) -> str:
        keys = ("raw", "topic_id", "archetype", "category", "target_recipients", "reply_to_post_number", "auto_track",
                "visible", "draft_key", "skip_validations", "import_mode", "embed_url", "created_at", "external_id",
                "title", "tags")  # fmt: skip
        subset = {k: ctx.params[k] for k in keys if k in ctx.params}
        return json.dumps([ctx.actor["id"], sorted((k, json.dumps(v, sort_keys=True)) for k, v in subset.items())])

    def create(self, ctx: Ctx) -> Any:
        """``PostsController#create``: API creations are memoized 120 s; failures answer 422 ``create_post`` errors."""
        now = self.forum.clock()
        for key in [k for k, (expires, _, _) in self.memo.items() if expires <= now]:
            del self.memo[key]
        signature = self._signature(ctx)
        if signature in self.memo:
            _, status, body = self.memo[signature]
            return Answer(status, json.loads(body))
        status, answer = self._create(ctx)
        self.memo[signature] = (now + POST_MEMO_SECONDS, status, json.dumps(answer))
        return Answer(status, answer)

    def _create(self, ctx: Ctx) -> tuple[int, Any]:
        forum = self.forum
        settings = forum.settings
        p = ctx.params
        actor = ctx.actor
        skip = str(p.get("skip_validations")).lower() == "true"

        def failed(errors: list[str]) -> tuple[int, Any]:
            return 422, {"action": "create_post", "errors": errors, "success": False}

        if actor["suspended"] and not skip:
            return failed(["Suspended users are not allowed to post."])
        raw = p.get("raw")
        if blank(p.get("topic_id")) and p.get("archetype") == PRIVATE_MESSAGE:
            return self._create_pm(ctx, skip)
        if blank(p.get("topic_id")):
            title = p.get("title")
            errors = [] if skip else title_errors(forum, title, None)
            if blank(title) and skip:
                errors = ["Title can't be blank"]
            category = find_category(forum, p.get("category"))
            if category is None:
                if settings.allow_uncategorized_topics:
                    category = forum.categories[1]
                elif not skip:
                    errors.append("Category can't be blank")
            external_id = p.get("external_id")
            if external_id is not None:
                external_id = str(external_id)
                if any(
                    (t["external_id"] or "").lower() == external_id.lower()
                    for t in forum.topics.values()
                    if t["external_id"]
                ):
                    errors.append("External has already been taken")  # Rails humanizes external_id as "External"
                if len(external_id) > EXTERNAL_ID_MAX_LENGTH:
                    errors.append(f"External is too long (maximum is {EXTERNAL_ID_MAX_LENGTH} characters)")
                # ``format: { with: /\A[\w-]+\z/ }`` (app/models/topic.rb, ``validates :external_id``): Ruby's \w is
                # ASCII-only, so a product id with Chinese letters is invalid; uniqueness is checked on
                # ``klass.unscoped`` (rails activerecord/lib/active_record/validations/uniqueness.rb,
                # ``build_relation``), past Trashable's default scope, so a trashed topic keeps its id taken.
                if not re.fullmatch(r"[A-Za-z0-9_-]+", external_id):
                    errors.append("External is invalid")
            if errors:
                return failed(errors)
            if not skip:
                errors = self._body_errors({"archetype": "regular"}, actor, raw, settings.min_first_post_length)
                if errors:
                    return failed(errors)
                on_new_topic(forum, actor, private_message=False)
                on_new_post(forum, actor)
            topic_id = forum.take_id("topic")
            tags = p.get("tags") or []
            topic: Row = {
                "id": topic_id,
                "title": str(title).strip(),
                "slug": slug(str(title)),
                "category_id": category["id"] if category else None,
                "external_id": external_id,
                "user_id": actor["id"],
                "created_at": str(p.get("created_at") or now_iso()),
                "updated_at": now_iso(),
                "deleted_at": None,
                "deleted_by_id": None,
                "tags": [str(t) for t in (tags if isinstance(tags, list) else str(tags).split(","))],
                "archetype": "regular",
                "visible": cast_bool(p.get("visible")) is not False,
                "closed": False,
                "archived": False,
                "highest_post_number": 0,
            }
            forum.topics[topic_id] = topic
        else:
            found = forum.topics.get(ruby_int(p.get("topic_id")))
            # ``guardian.can_create?(Post, topic)`` is false for a PM the user cannot see: ``topic_not_found``.
            if found is None or found["deleted_at"] is not None or not can_see_topic(found, actor):
                return failed([MSG_TOPIC_NOT_FOUND])
            topic = found
            if not skip:
                errors = self._body_errors(topic, actor, raw, settings.min_post_length)
                if errors:
                    return failed(errors)
                on_new_post(forum, actor)
        post = add_post(
            forum, topic, actor, str(raw or ""), cast_int(p.get("reply_to_post_number")), p.get("created_at")
        )
        if is_pm(topic) and is_staff(actor) and actor["id"] not in topic["_allowed_user_ids"]:
            topic["_allowed_user_ids"].append(actor["id"])  # PostCreator#ensure_in_allowed_users (staff)
        remember_body(forum, actor, post)
        return 200, ser.post_json(forum, post, actor, add_raw=True)

    def _body_errors(self, topic: Row, actor: Row, raw: Any, minimum: int) -> list[str]:
        """``PostValidator``: the length (a PM's own minimum; none in a PM with a bot), then the duplicate body."""
        if is_pm(topic):
            if with_non_human_user(topic) and not blank(raw):
                errors: list[str] = []  # ``post_body_validator`` returns for ``pm_with_non_human_user?``
            else:
                errors = self._raw_errors(raw, min_pm_post_length(self.forum), private_message=True)
        else:
            errors = self._raw_errors(raw, minimum)
        if not errors and duplicate_body(self.forum, actor, str(raw)):
            errors.append(MSG_JUST_POSTED_THAT)
        return errors

    def _create_pm(self, ctx: Ctx, skip: bool) -> tuple[int, Any]:
        """A new personal message (``archetype=private_message``, ``target_recipients``): ``PostCreator#valid?``
        (the title by ``min_personal_message_title_length``, no quality or uniqueness check for PMs; then the body),
        then ``TopicCreator#process_private_message`` (recipients; ``can_send_private_message?``)."""
        forum = self.forum
        settings = forum.settings
        p = ctx.params
        actor = ctx.actor

        def failed(errors: list[str]) -> tuple[int, Any]:
            return 422, {"action": "create_post", "errors": errors, "success": False}

        title = p.get("title")
        raw = p.get("raw")
        targets, _missing = recipients(forum, p.get("target_recipients") or p.get("target_usernames"))
        if not skip:
            if blank(title):
                return failed(["Title can't be blank"])
            minimum = settings.min_personal_message_title_length
            if len(str(title).strip()) < minimum:
                return failed([f"Title is too short (minimum is {minimum} characters)"])
            if len(str(title).strip()) > settings.max_topic_title_length:
                return failed([f"Title is too long (maximum is {settings.max_topic_title_length} characters)"])
            # ``PostValidator.new(skip_topic: true, private_message: archetype == private_message)`` (PostCreator
            # #valid?, newest lib/post_creator.rb): a PM's lengths; the post has no topic yet, so
            # ``pm_with_non_human_user?`` cannot waive them for a new message, even one to ``system``.
            errors = self._body_errors({"archetype": PRIVATE_MESSAGE}, actor, raw, settings.min_post_length)
            if errors:
                return failed(errors)
        if not targets:
            return failed([MSG_NO_USER_SELECTED])
        if not skip and not can_send_private_messages(forum, actor):
            return failed([MSG_CANT_SEND_PM])
        if not skip:
            on_new_topic(forum, actor, private_message=True)
            on_new_post(forum, actor)
        topic_id = forum.take_id("topic")
        topic: Row = {
            "id": topic_id,
            "title": str(title).strip(),
            "slug": slug(str(title)),
            "category_id": None,
            "external_id": None,
            "user_id": actor["id"],
            "created_at": str(p.get("created_at") or now_iso()),
            "updated_at": now_iso(),
            "deleted_at": None,
            "deleted_by_id": None,
            "tags": [],
            "archetype": PRIVATE_MESSAGE,
            "visible": True,
            "closed": False,
            "archived": False,
            "highest_post_number": 0,
            # ``topic_allowed_users``: the sender and every recipient.
            "_allowed_user_ids": [actor["id"], *(u["id"] for u in targets if u["id"] != actor["id"])],
        }
        forum.topics[topic_id] = topic
        post = add_post(forum, topic, actor, str(raw or ""), None, p.get("created_at"))
        remember_body(forum, actor, post)
        return 200, ser.post_json(forum, post, actor, add_raw=True)

    def _find(self, ctx: Ctx) -> Row:
        """``find_post_using``: deleted posts (or posts of deleted topics) are visible to staff only."""
        post = self.forum.posts.get(int(ctx.path_params["id"]))
        if post is None:
            raise not_found()
        topic = self.forum.topics.get(post["topic_id"])
        if (post["deleted_at"] or (topic and topic["deleted_at"])) and not is_staff(ctx.actor):
            raise not_found()
        if topic is not None and not can_see_topic(topic, ctx.actor):
            raise forbidden()  # ``guardian.ensure_can_see!(post)``: InvalidAccess
        return post

    def show(self, ctx: Ctx) -> Any:
        return ser.post_json(self.forum, self._find(ctx), ctx.actor, add_raw=True)

    def update(self, ctx: Ctx) -> Any:
        """``PostsController#update``: 409 on ``original_text`` mismatch; ``{"post": {...}}``."""
        forum = self.forum
        post_params = require(ctx.params, "post")
        if not isinstance(post_params, dict):
            post_params = {}
        post = forum.posts.get(int(ctx.path_params["id"]))
        staff = is_staff(ctx.actor)
        if post is None or (post["deleted_at"] is not None and not staff):
            raise not_found()
        if not staff and post["user_id"] != ctx.actor["id"]:
            raise forbidden()
        if post["deleted_at"] is not None:
            raise forbidden()  # guardian.can_edit? is false for a deleted post (unverified for staff)
        original = post_params.get("original_text") or post_params.get("raw_old")
        if not blank(original) and original != post["raw"]:
            raise json_error(MSG_EDIT_CONFLICT, status=409)
        topic = forum.topics[post["topic_id"]]
        if post["post_number"] == 1 and ctx.params.get("title") is not None and ctx.params["title"] != topic["title"]:
            errors = title_errors(forum, ctx.params["title"], topic["id"])
            if errors:
                raise json_error(errors)
            topic["title"] = str(ctx.params["title"]).strip()
            topic["slug"] = slug(topic["title"])
        if post["post_number"] == 1 and not blank(post_params.get("category_id")):
            category = find_category(forum, post_params["category_id"])
            if category is None:
                raise json_error("Category not found!")
            topic["category_id"] = category["id"]
        raw = post_params.get("raw")
        if raw is not None:
            settings = forum.settings
            errors = self._raw_errors(
                raw, settings.min_first_post_length if post["post_number"] == 1 else settings.min_post_length
            )
            if errors:
                raise json_error(errors)
        # PostsController#update: ``bypass_bump`` at the top level or under ``post``, cast to a boolean, for staff
        # or TL4 (``guardian.can_update_bumped_at?``; app/controllers/posts_controller.rb @ 002becf)
        flag = ctx.params.get("bypass_bump", post_params.get("bypass_bump"))
        bypass = (staff or ctx.actor["trust_level"] >= 4) and flag in (True, "true", "1", 1, "t", "on")
        revise_post(
            forum, post, ctx.actor, {"raw": raw, "edit_reason": post_params.get("edit_reason")}, bypass_bump=bypass
        )
        result = ser.post_json(forum, post, ctx.actor, add_raw=True)
        result["draft_sequence"] = 0
        return {"post": result}

    def destroy(self, ctx: Ctx) -> Any:
        post = self._find(ctx)
        if is_staff(ctx.actor):
            trash_post(self.forum, post, ctx.actor)
        elif post["user_id"] == ctx.actor["id"]:
            post["user_deleted"] = True
        else:
            raise forbidden()
        return Answer(200, None, media_type="text/plain; charset=utf-8")

    def recover(self, ctx: Ctx) -> Any:
        post = self._find(ctx)
        if not is_staff(ctx.actor):
            raise forbidden()
        post["deleted_at"] = None
        post["deleted_by_id"] = None
        if post["post_number"] == 1:
            self.forum.topics[post["topic_id"]]["deleted_at"] = None
        return ser.post_json(self.forum, post, ctx.actor, add_raw=True)
