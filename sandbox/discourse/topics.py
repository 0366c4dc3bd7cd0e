"""Topics: ``TopicsController`` (``show`` with 20 posts per ``post_stream`` chunk, 301 to the canonical slug,
``show_by_external_id``) and the ``Topic`` title validations topic creation and first-post edits share."""

from __future__ import annotations

import html
import unicodedata
from typing import Any

from sandbox.discourse import serializers as ser
from sandbox.discourse.errors import Answer, forbidden, not_found
from sandbox.discourse.pm_access import allowed_user_ids, can_see_topic, is_pm
from sandbox.discourse.private_messages import min_pm_post_length
from sandbox.discourse.rails import blank, strict_int
from sandbox.discourse.routing import Ctx, Endpoint, J, route
from sandbox.discourse.solved import accepted_answer_info
from sandbox.discourse.state import ForumState, Row, is_staff

#: ``TopicView#chunk_size``
TOPIC_CHUNK_SIZE = 20


#: ``TextSentinel#skipped_locales``: "hard to tell 'word length' for CJK languages".
CJK_LOCALES = ("ja", "ko", "zh_CN", "zh_TW")
#: ``TextSentinel::ENTROPY_SCALE``
ENTROPY_SCALE = 0.7
#: ``activerecord.errors.messages.is_invalid`` (config/locales/server.en.yml), added by ``QualityTitleValidator``.
MSG_TITLE_UNCLEAR = "Title seems unclear, is it a complete sentence?"


def _alnum_run(text: str) -> int:
    """The longest run of ``\\p{Alnum}`` characters (letters of every script and digits, as Onigmo reads it)."""
    longest = run = 0
    for char in text:
        run = run + 1 if char.isalnum() else 0
        longest = max(longest, run)
    return longest


def quality_title(forum: ForumState, title: str) -> bool:
    """``TextSentinel.title_sentinel(title).valid?`` (discourse/discourse lib/text_sentinel.rb at 143037131's version:
    ``title_sentinel``, ``entropy``, ``seems_meaningful?``, ``seems_pronounceable?``, ``seems_unpretentious?``,
    ``seems_quiet?``), with the site settings' defaults (config/site_settings.yml: ``title_min_entropy`` 10,
    ``title_max_word_length`` 30, ``allow_uppercase_posts`` false)."""
    settings = forum.settings
    if settings.min_topic_title_length > settings.title_min_entropy:
        min_entropy = settings.title_min_entropy
    else:
        min_entropy = int(settings.min_topic_title_length * ENTROPY_SCALE)
    text = title.strip()
    if not text:
        return False
    if len(set(text.encode("utf-8"))) < min_entropy:  # "Number of unique bytes"
        return False
    if not any(char.isalnum() for char in text):  # seems_pronounceable?: /\p{Alnum}/
        return False
    # seems_unpretentious?: no run of more than title_max_word_length letters or digits, except on CJK forums
    if forum.locale not in CJK_LOCALES and _alnum_run(text) > settings.title_max_word_length:
        return False
    # seems_quiet?: a lowercase letter or a letter without case (CJK), or no letter at all
    if not settings.allow_uppercase_posts:
        categories = {unicodedata.category(char) for char in text}
        has_letter = any(category.startswith("L") for category in categories)
        if has_letter and not categories & {"Ll", "Lo"}:
            return False
    return True


#: ``PostValidator#raw_quality``: ``errors.add(:raw, I18n.t(:is_invalid))``, as the title's.
MSG_BODY_UNCLEAR = "Body seems unclear, is it a complete sentence?"


def body_sentinel_valid(forum: ForumState, raw: str, private_message: bool) -> bool:
    """``TextSentinel.body_sentinel(raw, private_message:).valid?`` (lib/text_sentinel.rb at 143037131's version):
    the minimum entropy (``body_min_entropy``, 7, or 3 on ja/zh_CN/zh_TW forums, config/site_settings.yml at
    00011e9c; scaled by ``min_personal_message_post_length / min_post_length`` in a PM), a letter or digit, and a
    lowercase (or caseless) letter unless ``allow_uppercase_posts``. A body has no word-length limit."""
    settings = forum.settings
    entropy = 3 if forum.locale in ("ja", "zh_CN", "zh_TW") else 7
    if private_message:
        pm_minimum = min_pm_post_length(forum)
        entropy = int(entropy * (pm_minimum / settings.min_post_length))
        if entropy > pm_minimum:
            entropy = int(pm_minimum * ENTROPY_SCALE)
    elif entropy > settings.min_post_length:
        entropy = int(settings.min_post_length * ENTROPY_SCALE)
    text = raw.strip()
    if not raw or len(set(text.encode("utf-8"))) < entropy:
        return False
    if not any(char.isalnum() for char in raw):
        return False
    if not settings.allow_uppercase_posts:
        categories = {unicodedata.category(char) for char in raw}
        if any(c.startswith("L") for c in categories) and not categories & {"Ll", "Lo"}:
            return False
    return True


def title_errors(forum: ForumState, title: Any, exclude_topic_id: int | None) -> list[str]:
    """``Topic``'s title validations (discourse/discourse app/models/topic.rb, ``validates :title``: presence,
    ``topic_title_length``, ``quality_title``, ``unique_among``). ``UniqueAmongValidator`` (lib/validators/
    unique_among_validator.rb) keeps a duplicate only if ``Topic.listable_topics`` has it, whose default scope hides
    trashed topics (``Trashable``): a deleted topic's title is free again. Rails runs each validator."""
    settings = forum.settings
    if blank(title):
        return ["Title can't be blank"]
    title = str(title).strip()
    errors: list[str] = []
    if len(title) < settings.min_topic_title_length:
        errors.append(f"Title is too short (minimum is {settings.min_topic_title_length} characters)")
    if len(title) > settings.max_topic_title_length:
        errors.append(f"Title is too long (maximum is {settings.max_topic_title_length} characters)")
    if errors:
        # Rails would list the quality error as well; the sandbox has long answered a length error alone (and its
        # tests pin that), which changes no status and no decision.
        return errors
    if not quality_title(forum, title):
        errors.append(MSG_TITLE_UNCLEAR)
    if not settings.allow_duplicate_topic_titles:
        for topic in forum.topics.values():
            if (
                topic["id"] != exclude_topic_id
                and topic["deleted_at"] is None
                and topic["title"].lower() == title.lower()
            ):
                errors.append("Title has already been used")
                break
    return errors


class Topics:
    def __init__(self, forum: ForumState) -> None:
        self.forum = forum

    def routes(self) -> list[Endpoint]:
        return [
            # The route constraint ``external_id: /[\w-]+/`` (config/routes.rb) is Ruby's ASCII ``\w``.
            route("GET", rf"/t/external_id/(?P<external_id>[A-Za-z0-9_-]+){J}", self.show_by_external_id),
            route("GET", rf"/t/(?P<id>\d+)/posts{J}", self.posts),
            route("GET", rf"/t/(?P<slug>[^/]+)/(?P<id>\d+){J}", self.show),
            route("GET", rf"/t/(?P<id>[^/]+?){J}", self.show),
        ]

    def _redirect(self, ctx: Ctx, topic: Row) -> Answer:
        location = f"{ctx.base_url}/t/{topic['slug']}/{topic['id']}" + (".json" if ctx.wants_json else "")
        body = f'<html><body>You are being <a href="{html.escape(location)}">redirected</a>.</body></html>'
        return Answer(301, body, {"Location": location}, media_type="text/html; charset=utf-8")

    def show_by_external_id(self, ctx: Ctx) -> Any:
        """``TopicsController#show_by_external_id`` (discourse/discourse app/controllers/topics_controller.rb:48-53 at
        0045e7d1): ``Topic.find_by(external_id:)`` goes through ``Trashable``'s default scope (``deleted_at IS NULL``),
        so a trashed topic is 404 to everyone, admins included; then ``redirect_to_correct_topic`` answers 301 to
        ``topic.relative_url`` (which carries ``Discourse.base_path``) with ``.json`` kept."""
        wanted = ctx.path_params["external_id"]
        topics = self.forum.topics.values()
        topic = next((t for t in topics if t["external_id"] == wanted and t["deleted_at"] is None), None)
        if topic is None:
            raise not_found()
        return self._redirect(ctx, topic)

    def posts(self, ctx: Ctx) -> Any:
        """``TopicsController#posts`` with ``post_ids[]`` (discourse/discourse app/controllers/topics_controller.rb
        ``def posts`` at 0045e7d1; lib/topic_view.rb ``filter_posts_by_ids``): the topic's posts among the ids asked,
        as many as asked (no cap), in ``sort_order``, deleted ones included for staff (``with_deleted`` when
        ``can_see_deleted_posts?``), each with ``raw`` when ``include_raw`` is given (any value: ``!!params``).
        Without ids, the first page of ``TopicView::CHUNK_SIZE`` posts. Serialized by ``TopicViewPostsSerializer``:
        ``{"post_stream": {"posts": [...]}, "id": topic_id}`` (no ``stream``)."""
        forum = self.forum
        topic = forum.topics.get(int(ctx.path_params["id"]))
        staff = is_staff(ctx.actor)
        if topic is None or (topic["deleted_at"] is not None and not staff):
            raise not_found()
        if not can_see_topic(topic, ctx.actor):
            raise forbidden()
        every = sorted(
            (p for p in forum.posts.values() if p["topic_id"] == topic["id"]), key=lambda p: p["post_number"]
        )
        asked = ctx.params.get("post_ids")
        if asked:
            wanted = {strict_int(str(i)) for i in (asked if isinstance(asked, list) else [asked])}
            chosen = [p for p in every if p["id"] in wanted and (staff or p["deleted_at"] is None)]
        else:
            chosen = [p for p in every if p["deleted_at"] is None][:TOPIC_CHUNK_SIZE]
        add_raw = ctx.params.get("include_raw") is not None
        return {
            "post_stream": {"posts": [ser.post_json(forum, p, ctx.actor, add_raw=add_raw) for p in chosen]},
            "id": topic["id"],
        }

    def show(self, ctx: Ctx) -> Any:
        forum = self.forum
        not_found_extras = {"title": "Page Not Found", "html": '<div class="page-not-found"></div>', "group": None}
        topic_id = strict_int(ctx.path_params["id"])
        if topic_id is None:  # a slug instead of an id: redirect when it names a topic
            topic = next(
                (t for t in forum.topics.values() if t["slug"] == ctx.path_params["id"] and t["deleted_at"] is None),
                None,
            )
            if topic is None:
                raise not_found(not_found_extras)
            return self._redirect(ctx, topic)
        found = forum.topics.get(topic_id)
        if found is None or (found["deleted_at"] is not None and not is_staff(ctx.actor)):
            raise not_found(not_found_extras)
        topic = found
        if not can_see_topic(topic, ctx.actor):
            raise forbidden()  # ``guardian.ensure_can_see!(topic)``: a PM the user is not part of
        slug = ctx.path_params.get("slug")
        if slug is not None and slug != topic["slug"]:
            return self._redirect(ctx, topic)
        show_deleted = is_staff(ctx.actor) and str(ctx.params.get("show_deleted")).lower() == "true"
        every = sorted(
            (p for p in forum.posts.values() if p["topic_id"] == topic["id"]), key=lambda p: p["post_number"]
        )
        visible = [p for p in every if show_deleted or p["deleted_at"] is None]
        live = [p for p in every if p["deleted_at"] is None]
        author = forum.users.get(topic["user_id"]) or forum.users[-1]
        last = forum.users.get(live[-1]["user_id"]) if live else author
        participants: dict[int, int] = {}
        for post in live:
            participants[post["user_id"]] = participants.get(post["user_id"], 0) + 1
        data: dict[str, Any] = {
            "post_stream": {
                "posts": [ser.post_json(forum, p, ctx.actor) for p in visible[:TOPIC_CHUNK_SIZE]],
                "stream": [p["id"] for p in visible],
            },
            "timeline_lookup": [],
            "suggested_topics": [],
            "tags": list(topic["tags"]),
            "tags_descriptions": {},
            "id": topic["id"],
            "title": topic["title"],
            "fancy_title": html.escape(topic["title"]),
            "posts_count": len(live),
            "created_at": topic["created_at"],
            "views": int(topic.get("views") or 0),
            "reply_count": max(0, len(live) - 1),
            "like_count": 0,
            "last_posted_at": live[-1]["created_at"] if live else None,
            "visible": topic["visible"],
            "closed": topic["closed"],
            "archived": topic["archived"],
            "has_summary": False,
            "archetype": topic["archetype"],
            "slug": topic["slug"],
            "category_id": topic["category_id"],
            "word_count": sum(len(p["raw"].split()) for p in live),
            "deleted_at": topic["deleted_at"],
            "user_id": topic["user_id"],
            "featured_link": None,
            "pinned_globally": False,
            "pinned_at": None,
            "pinned_until": None,
            "image_url": None,
            "slow_mode_seconds": 0,
            "draft": None,
            "draft_key": f"topic_{topic['id']}",
            "draft_sequence": 0,
            "unpinned": None,
            "pinned": False,
            "current_post_number": 1,
            "highest_post_number": topic["highest_post_number"],
            "deleted_by": ser.basic_user(forum.users[topic["deleted_by_id"]])
            if topic["deleted_by_id"] in forum.users
            else None,
            "has_deleted": any(p["deleted_at"] for p in every),
            "actions_summary": [],
            "chunk_size": TOPIC_CHUNK_SIZE,
            "bookmarked": False,
            "bookmarks": [],
            "topic_timer": None,
            "message_bus_last_id": 0,
            "participant_count": len(participants),
            "show_read_indicator": False,
            "thumbnails": None,
            "slow_mode_enabled_until": None,
            "details": {
                "can_edit": is_staff(ctx.actor),
                "notification_level": 1,
                "can_create_post": topic["deleted_at"] is None,
                "participants": [
                    {
                        **ser.basic_user(forum.users[uid]),
                        "post_count": n,
                        **ser.flair_fields(forum, forum.users[uid]),
                        "admin": forum.users[uid]["admin"],
                        "moderator": forum.users[uid]["moderator"],
                        "trust_level": forum.users[uid]["trust_level"],
                    }
                    for uid, n in participants.items()
                    if uid in forum.users
                ],
                "created_by": ser.basic_user(author),
                "last_poster": ser.basic_user(last or author),
            },
        }
        if topic["external_id"]:
            data["external_id"] = topic["external_id"]
        if is_pm(topic):
            # TopicViewDetailsSerializer: ``allowed_users`` / ``allowed_groups`` of a PM.
            data["details"]["allowed_users"] = [
                ser.basic_user(forum.users[uid]) for uid in allowed_user_ids(topic) if uid in forum.users
            ]
            data["details"]["allowed_groups"] = []
        if forum.settings.solved_enabled:
            # discourse-solved TopicViewSerializerExtension: the topic's accepted answer, if any.
            data["accepted_answer"] = accepted_answer_info(forum, topic)
        return data
