"""``DiscourseSandbox``: one forum (state, controllers, HTTP app) and the in-process helpers tests, the demo and the
benchmarks use to set it up and inspect it — as a moderator would through the admin UI."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

from sandbox.discourse.app import ForumApp, RequestLog
from sandbox.discourse.badges import destroy_badge
from sandbox.discourse.categories import find_category
from sandbox.discourse.errors import Answer
from sandbox.discourse.likes import LIKE, can_like, likers
from sandbox.discourse.mass_award import jobs
from sandbox.discourse.member_limits import on_like
from sandbox.discourse.membership import add_member, destroy_group, remove_member
from sandbox.discourse.post_revisor import post_record, revise_post, trash_post
from sandbox.discourse.rails import now_iso, slug
from sandbox.discourse.rate_limit import RateLimiter
from sandbox.discourse.state import ForumState, new_badge, new_category
from sandbox.discourse.user_badges import revoke
from sandbox.discourse.users import rename_user
from sandbox.discourse.web_hooks import web_hook_post
from sandbox.faults import FaultInjector, Knobs
from sandbox.forward import Forwarded


class DiscourseSandbox:
    """An in-memory Discourse forum behind a Starlette app (``.app``, wrapped in the shared fault injector)."""

    api_key = Forwarded[str]("state")
    api_username = Forwarded[str]("state")
    clock = Forwarded[Callable[[], float]]("state")
    #: Side channels a test may inspect: invitations sent by ``emails=``, staff action log entries.
    invites = Forwarded[list[dict[str, Any]]]("state")
    staff_actions = Forwarded[list[dict[str, Any]]]("state")
    #: The admin-API limiter (``None``: unlimited); ``plain_text_429`` answers the per-IP middleware's text/plain 429
    #: instead of the admin-API JSON one; ``rate_limited_count`` counts the 429s.
    rate_limit_per_minute = Forwarded[int | None]("limiter", "per_minute")
    plain_text_429 = Forwarded[bool]("limiter")
    rate_limited_count = Forwarded[int]("limiter", "rejected")
    #: ``False``: a forum from before ``activation=`` existed; its user list ignores the parameter (see ``ForumState``).
    activation_filter = Forwarded[bool]("state")
    #: The site's ``default_locale`` (``en``, ``zh_CN``): every error the forum answers is in it (``sandbox.discourse.locales``).
    locale = Forwarded[str]("state")
    #: Site settings that change answers.
    allow_uncategorized_topics = Forwarded[bool]("state.settings")
    allow_duplicate_topic_titles = Forwarded[bool]("state.settings")
    gamification_enabled = Forwarded[bool]("state.settings")
    gamification_installed = Forwarded[bool]("state.settings")
    editing_grace_period = Forwarded[int]("state.settings")
    editing_grace_period_max_diff = Forwarded[int]("state.settings")
    editing_grace_period_max_diff_high_trust = Forwarded[int]("state.settings")
    min_topic_title_length = Forwarded[int]("state.settings")
    max_topic_title_length = Forwarded[int]("state.settings")
    title_min_entropy = Forwarded[int]("state.settings")
    title_max_word_length = Forwarded[int]("state.settings")
    allow_uppercase_posts = Forwarded[bool]("state.settings")
    min_post_length = Forwarded[int]("state.settings")
    min_first_post_length = Forwarded[int]("state.settings")
    max_post_length = Forwarded[int]("state.settings")
    #: Personal messages and the duplicate-body check (:mod:`sandbox.discourse.private_messages`): None keeps the
    #: locale's default (10; 3 on ja/zh_CN/zh_TW forums).
    min_personal_message_post_length = Forwarded[int | None]("state.settings")
    min_personal_message_title_length = Forwarded[int]("state.settings")
    unique_posts_mins = Forwarded[int]("state.settings")
    personal_message_min_trust_level = Forwarded[int]("state.settings")
    #: discourse-solved (:mod:`sandbox.discourse.solved`).
    solved_enabled = Forwarded[bool]("state.settings")
    allow_solved_on_all_topics = Forwarded[bool]("state.settings")
    accept_solutions_topic_author = Forwarded[bool]("state.settings")
    #: Members' rate limits (:mod:`sandbox.discourse.member_limits`; 0 switches one off, as on a real forum).
    rate_limit_create_topic = Forwarded[int]("state.settings")
    rate_limit_create_post = Forwarded[int]("state.settings")
    rate_limit_new_user_create_topic = Forwarded[int]("state.settings")
    rate_limit_new_user_create_post = Forwarded[int]("state.settings")
    max_topics_per_day = Forwarded[int]("state.settings")
    max_personal_messages_per_day = Forwarded[int]("state.settings")
    max_likes_per_day = Forwarded[int]("state.settings")

    def __init__(
        self,
        api_key: str = "sandbox-key",
        api_username: str = "system",
        knobs: Knobs | None = None,
        rate_limit_per_minute: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        base_path: str = "",
    ) -> None:
        """``base_path``: serve as a subfolder install (``/forum``): every route and redirect under it."""
        self.state = ForumState(api_key=api_key, api_username=api_username, clock=clock)
        self.limiter = RateLimiter(per_minute=rate_limit_per_minute)
        self.knobs = knobs or Knobs()
        self.requests = RequestLog()
        self._lock = self.state.lock
        self._app = ForumApp(self.state, self.limiter, self.requests, base_path)
        self.app = FaultInjector(self._app.starlette, self.knobs)

    @property
    def mass_award_delay(self) -> float | None:
        """Seconds before a mass award's jobs run (Sidekiq's queue latency); ``None`` holds them until
        :meth:`run_jobs`."""
        return jobs(self.state).delay

    @mass_award_delay.setter
    def mass_award_delay(self, seconds: float | None) -> None:
        jobs(self.state).delay = seconds

    def run_jobs(self) -> int:
        """Run the queued mass-award jobs now; returns how many requests' jobs ran."""
        return jobs(self.state).run_all()

    def pending_jobs(self) -> int:
        return jobs(self.state).pending()

    # ==== in-process helpers (tests, demo) =================================================================================

    def add_user(
        self,
        username: str,
        email: str,
        name: str | None = None,
        secondary_emails: tuple[str, ...] | list[str] = (),
        active: bool = True,
        *,
        trust_level: int = 0,
        admin: bool = False,
        moderator: bool = False,
        suspended: bool = False,
        silenced: bool = False,
        staged: bool = False,
        approved: bool = True,
        last_seen_at: str | None = None,
        created_at: str | None = None,
    ) -> int:
        """Create a forum account; returns its id. Emails are stored stripped and lower-cased, as ``UserEmail`` does.

        ``active=False``: signed up but the owner has not confirmed the email yet (anyone can type any address at
        sign-up); :meth:`activate` confirms it later."""
        forum = self.state
        with forum.lock:
            if forum.find_user(username) is not None:
                raise ValueError(f"username {username!r} is taken")
            for address in (email, *secondary_emails):
                if forum.user_by_any_email(address) is not None:
                    raise ValueError(f"email {address!r} is taken")
            user = forum.make_user(
                forum.take_id("user"),
                username,
                email,
                name=name,
                secondary_emails=tuple(secondary_emails),
                active=active,
                trust_level=trust_level,
                admin=admin,
                moderator=moderator,
                suspended=suspended,
                silenced=silenced,
                staged=staged,
                approved=approved,
                last_seen_at=last_seen_at,
                created_at=created_at,
            )
            return int(user["id"])

    def activate(self, username: str) -> None:
        """The owner clicks the confirmation link (``EmailToken.confirm`` sets ``user.active = true``,
        app/models/email_token.rb:45 at 01357453), or staff activate the account by hand."""
        with self.state.lock:
            user = self.state.find_user(username)
            if user is None:
                raise KeyError(username)
            user["active"] = True

    def rename_user(self, username: str, new_username: str) -> None:
        """The member (or an admin) changed the username, as ``PUT /u/{username}/preferences/username`` does: the old
        name now finds nobody; grants and memberships stay with the account."""
        with self.state.lock:
            user = self.state.find_user(username)
            if user is None:
                raise KeyError(username)
            errors = rename_user(self.state, user, new_username)
            if errors:
                raise ValueError(", ".join(errors))

    def user(self, username: str) -> dict[str, Any]:
        """The stored user plus what a member sees: group/badge names, primary and flair group names."""
        forum = self.state
        with forum.lock:
            user = forum.find_user(username)
            if user is None:
                raise KeyError(username)
            data = {k: v for k, v in user.items() if not k.startswith("_")}
            data["secondary_emails"] = list(user["secondary_emails"])
            data["user_fields"] = dict(user["user_fields"])
            data["groups"] = [g["name"] for g in forum.groups_of(user)]
            data["badges"] = forum.badge_names_of(user)
            primary = forum.group_of(user["primary_group_id"])
            flair = forum.group_of(user["flair_group_id"])
            data["primary_group_name"] = primary["name"] if primary else None
            data["flair_group_name"] = flair["name"] if flair else None
            return data

    def badges_of(self, username: str) -> list[str]:
        """Badge names, one entry per grant (a multiple-grant badge can appear more than once)."""
        with self.state.lock:
            user = self.state.find_user(username)
            return self.state.badge_names_of(user) if user else []

    def user_badge_count(self, badge_name: str) -> int:
        """How many grants (UserBadge rows) of that badge exist, all users together."""
        with self.state.lock:
            badge = self.state.badge_by_name(badge_name)
            if badge is None:
                return 0
            return sum(1 for ub in self.state.user_badges.values() if ub["badge_id"] == badge["id"])

    def groups_of(self, username: str, automatic: bool = False) -> list[str]:
        """Names of the custom groups the user belongs to (automatic ones like ``trust_level_0`` only if asked)."""
        with self.state.lock:
            user = self.state.find_user(username)
            if user is None:
                return []
            return [g["name"] for g in self.state.groups_of(user, automatic=automatic)]

    def group(self, name: str) -> dict[str, Any] | None:
        forum = self.state
        with forum.lock:
            group = forum.group_by_name(name)
            if group is None:
                return None
            data = {k: v for k, v in group.items() if not k.startswith("_")}
            members = forum.member_ids(group)
            data["user_count"] = len(members)
            data["members"] = [forum.users[uid]["username"] for uid in members if uid in forum.users]
            return data

    def badge(self, name: str) -> dict[str, Any] | None:
        with self.state.lock:
            badge = self.state.badge_by_name(name)
            return dict(badge) if badge else None

    def add_user_field(
        self, name: str, field_type: str = "text", *, editable: bool = True, required: bool = False
    ) -> int:
        """Define an admin user field (``UserField``); ``PUT /u/{username}`` ignores ids that are not defined."""
        with self.state.lock:
            field_id = self.state.take_id("user_field")
            self.state.user_fields[field_id] = {"id": field_id, "name": name, "field_type": field_type,
                                                "editable": editable, "required": required}  # fmt: skip
            return field_id

    def add_category(self, name: str, color: str = "0088CC", text_color: str = "FFFFFF") -> int:
        with self.state.lock:
            category_id = self.state.take_id("category")
            self.state.categories[category_id] = new_category(category_id, name, slug(name, f"{category_id}-category"),
                                                              color, text_color)  # fmt: skip
            return category_id

    def add_granular_key(self, key: str, *scopes: str) -> None:
        """A granular key (acting as any user named in ``Api-Username``) with some of ``ApiKeyScope``'s scopes
        (app/models/api_key_scope.rb): ``badges:list`` (``admin/badges#index``), ``global:read`` (every GET)."""
        routes = {"badges:list": (("GET", r"/admin/badges(\.json)?"), ("GET", r"/badges(\.json)?")),
                  "global:read": (("GET", r".*"),)}  # fmt: skip
        with self.state.lock:
            self.state.granular_keys[key] = tuple(r for scope in scopes for r in routes[scope])

    def add_badge(self, name: str, enabled: bool = True) -> int:
        """An admin made a badge (Admin → Badges → New), enabled or not; returns its id."""
        with self.state.lock:
            badge_id = self.state.take_id("badge")
            self.state.badges[badge_id] = new_badge(badge_id, name, 3, enabled=enabled)
            return badge_id

    def revoke_by_hand(self, username: str, badge_name: str) -> int:
        """A moderator removed the grant(s) in the admin UI. Returns how many grants were removed."""
        forum = self.state
        with forum.lock:
            user = forum.find_user(username)
            badge = forum.badge_by_name(badge_name)
            if user is None or badge is None:
                return 0
            grants = [
                ub for ub in forum.user_badges.values() if ub["user_id"] == user["id"] and ub["badge_id"] == badge["id"]
            ]
            for grant in grants:
                revoke(forum, grant)
            return len(grants)

    def remove_from_group_by_hand(self, username: str, group: str) -> bool:
        with self.state.lock:
            user = self.state.find_user(username)
            found = self.state.group_by_name(group)
            if user is None or found is None or found["automatic"]:
                return False
            return remove_member(self.state, found, user)

    def add_to_group_by_hand(self, username: str, group: str) -> bool:
        with self.state.lock:
            user = self.state.find_user(username)
            found = self.state.group_by_name(group)
            if user is None or found is None or found["automatic"]:
                return False
            return add_member(self.state, found, user)

    def delete_badge_by_hand(self, badge_name: str) -> bool:
        """An admin deleted the badge: its grants go too, and titles equal to its name are cleared."""
        with self.state.lock:
            badge = self.state.badge_by_name(badge_name)
            if badge is None:
                return False
            destroy_badge(self.state, badge)
            return True

    def delete_group_by_hand(self, name: str) -> bool:
        with self.state.lock:
            group = self.state.group_by_name(name)
            if group is None or group["automatic"]:
                return False
            destroy_group(self.state, group)
            return True

    def edit_post_by_hand(
        self, post_id: int, raw: str, editor: str = "moderator", edit_reason: str | None = None
    ) -> dict[str, Any]:
        """A moderator edited the post: another user, so ``PostRevisor`` always makes a new version."""
        forum = self.state
        with forum.lock:
            post = forum.posts[post_id]
            user = forum.find_user(editor)
            if user is None:
                user = forum.make_user(forum.take_id("user"), editor, f"{editor}@sandbox.invalid", name=editor,
                                       moderator=True, trust_level=4)  # fmt: skip
            revise_post(forum, post, user, {"raw": raw, "edit_reason": edit_reason})
            return post_record(forum, post)

    @property
    def base_path(self) -> str:
        """The subfolder the forum is served under ("" at the root)."""
        return self._app.base_path

    def delete_topic_by_hand(self, topic_id: int) -> None:
        """A moderator deleted the topic: ``PostDestroyer`` on its first post trashes the topic (soft delete)."""
        with self.state.lock:
            first = next(p for p in self.state.posts.values() if p["topic_id"] == topic_id and p["post_number"] == 1)
            trash_post(self.state, first, self.state.find_user("system"))

    def delete_post_by_hand(self, post_id: int) -> None:
        with self.state.lock:
            trash_post(self.state, self.state.posts[post_id], self.state.find_user("system"))

    def topics(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return [dict(t, tags=list(t["tags"])) for t in sorted(self.state.topics.values(), key=lambda t: t["id"])]

    def add_views(self, topic_id: int, views: int) -> None:
        """Visitors read the topic (``TopicViewItem.add`` raises ``topics.views`` once per visitor and day)."""
        topic = self.state.topics[topic_id]
        topic["views"] = int(topic.get("views") or 0) + views

    def posts_of_topic(self, topic_id: int) -> list[dict[str, Any]]:
        """Every post of the topic, deleted ones included, with ``last_editor_username``."""
        with self.state.lock:
            posts = [p for p in self.state.posts.values() if p["topic_id"] == topic_id]
            return [post_record(self.state, p) for p in sorted(posts, key=lambda p: p["post_number"])]

    def score_events(self, user_id: int | None = None) -> list[dict[str, Any]]:
        with self.state.lock:
            events = sorted(self.state.score_events.values(), key=lambda e: e["id"])
            return [dict(e) for e in events if user_id is None or e["user_id"] == user_id]

    def member_view(self) -> list[dict[str, Any]]:
        """What a forum member sees next to each name: badges, groups, title, flair and primary group."""
        forum = self.state
        with forum.lock:
            rows = []
            for user in sorted(forum.users.values(), key=lambda u: u["id"]):
                flair = forum.group_of(user["flair_group_id"])
                primary = forum.group_of(user["primary_group_id"])
                rows.append(
                    {
                        "username": user["username"],
                        "badges": sorted(set(forum.badge_names_of(user))),
                        "groups": [g["name"] for g in forum.groups_of(user)],
                        "title": user["title"],
                        "flair_group": flair["name"] if flair else None,
                        "flair_icon": (flair["flair_icon"] if flair else None),
                        "primary_group": primary["name"] if primary else None,
                    }
                )
            return rows

    # ==== likes, solutions, moderation, messages ==========================================================================

    def member_headers(self, username: str) -> dict[str, str]:
        """Headers that make a request act as ``username`` (the admin key with ``Api-Username``), as tests and the
        demo make members post, send PMs (``archetype=private_message``, ``target_recipients``), like and accept."""
        return {"Api-Key": self.api_key, "Api-Username": username}

    def like_as(self, username: str, post_id: int) -> bool:
        """``username`` likes the post in-process, refused as ``POST /post_actions`` refuses (own post, twice, a
        deleted post, a PM they are not part of, the daily limit); returns whether the like was made."""
        forum = self.state
        with forum.lock:
            user, post = forum.find_user(username), forum.posts.get(post_id)
            if user is None or post is None or not can_like(forum, post, user):
                return False
            try:
                on_like(forum, user)
            except Answer:
                return False
            action_id = forum.take_id("post_action")
            forum.post_actions[action_id] = {"id": action_id, "post_id": post_id, "user_id": user["id"],
                                             "post_action_type_id": LIKE, "created_at": now_iso()}  # fmt: skip
            return True

    def enable_solutions(self, category: str | int) -> int:
        """An admin turned on "accepted answers" for the category (discourse-solved's ``enable_accepted_answers``
        category setting); returns the category's id."""
        with self.state.lock:
            found = find_category(self.state, category)
            if found is None:
                raise KeyError(category)
            self.state.solved_categories.add(int(found["id"]))
            return int(found["id"])

    def hide_post_by_hand(self, post_id: int, reason_id: int = 1) -> None:
        """Flags reached the threshold and the post was hidden: ``Post#hide!`` sets ``hidden``, ``hidden_at`` and
        ``hidden_reason_id`` (``Post.hidden_reasons``: 1 ``flag_threshold_reached``, 2 ``…_again``, 3
        ``new_user_spam_threshold_reached``, 4 ``flagged_by_tl3_user``) and unlists the topic of a first post."""
        with self.state.lock:
            post = self.state.posts[post_id]
            post["hidden"] = True
            post["hidden_at"] = now_iso()
            post["hidden_reason_id"] = reason_id
            if post["post_number"] == 1:
                self.state.topics[post["topic_id"]]["visible"] = False

    def accepted_answer(self, topic_id: int) -> int | None:
        """The id of the topic's accepted solution (discourse-solved), or None."""
        with self.state.lock:
            return self.state.solved.get(topic_id)

    def likers_of(self, post_id: int) -> list[str]:
        """Usernames of the members who like the post, oldest like first."""
        with self.state.lock:
            post = self.state.posts[post_id]
            return [self.state.users[a["user_id"]]["username"] for a in likers(self.state, post)]

    def post_created_webhook(
        self, post_id: int, secret: str, event_id: int = 1, base_url: str = "http://forum.invalid"
    ) -> tuple[dict[str, str], bytes]:
        """The request the forum sends for ``post_created`` (headers, body): the body is ``{"post": {...}}`` with
        ``WebHookPostSerializer``'s fields (``topic_archetype`` says whether it is a PM), signed
        ``sha256=<hex HMAC-SHA256>`` (``shared/specs/discourse/ERRORS_RATE_LIMITS_WEBHOOKS.md`` §5)."""
        with self.state.lock:
            body = json.dumps({"post": web_hook_post(self.state, self.state.posts[post_id])}).encode()
        headers = {
            "content-type": "application/json",
            "x-discourse-instance": base_url,
            "x-discourse-event-id": str(event_id),
            "x-discourse-event-type": "post",
            "x-discourse-event": "post_created",
            "x-discourse-event-signature": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
        }
        return headers, body

    def writes(self) -> list[dict[str, Any]]:
        return self.requests.writes()

    def count(self, method: str, path_regex: str) -> int:
        return self.requests.count(method, path_regex)

    def reset_log(self) -> None:
        self.requests.reset()
