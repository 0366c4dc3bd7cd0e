"""The forum's world state: site settings, the tables (users, groups, badges, grants, categories, topics, posts,
score events, user fields) as plain dicts, the id sequences, the seeded rows every fresh forum has, and the lookups
every controller shares. Everything is guarded by ``ForumState.lock`` (the server runs in another thread than the
tests); callers hold it, nothing here takes it."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox.discourse.locales import LocaleLock
from sandbox.discourse.rails import now_iso

Row = dict[str, Any]

AUTOMATIC_GROUPS = {
    0: "everyone",
    1: "admins",
    2: "moderators",
    3: "staff",
    10: "trust_level_0",
    11: "trust_level_1",
    12: "trust_level_2",
    13: "trust_level_3",
    14: "trust_level_4",
}
BADGE_TYPES: list[Row] = [
    {"id": 1, "name": "Gold", "sort_order": 9},
    {"id": 2, "name": "Silver", "sort_order": 8},
    {"id": 3, "name": "Bronze", "sort_order": 7},
]
BADGE_GROUPINGS: list[Row] = [
    {"id": 1, "name": "Getting Started", "description": None, "position": 10, "system": True},
    {"id": 2, "name": "Community", "description": None, "position": 11, "system": True},
    {"id": 3, "name": "Posting", "description": None, "position": 12, "system": True},
    {"id": 4, "name": "Trust Level", "description": None, "position": 13, "system": True},
    {"id": 5, "name": "Other", "description": None, "position": 14, "system": True},
]
#: The first id each table hands out (the seeded rows take the ids below these).
FIRST_IDS = {"user": 1, "group": 41, "badge": 100, "user_badge": 1, "category": 5, "topic": 11, "post": 101,
             "score_event": 1, "user_field": 1, "post_action": 1}  # fmt: skip


@dataclass
class SiteSettings:
    """Site settings that change answers."""

    allow_uncategorized_topics: bool = False
    allow_duplicate_topic_titles: bool = False
    gamification_enabled: bool = True
    #: The discourse-gamification plugin is installed at all (``/admin/plugins.json`` lists it); its routes answer only
    #: when it is also enabled.
    gamification_installed: bool = True
    editing_grace_period: int = 300
    editing_grace_period_max_diff: int = 100
    editing_grace_period_max_diff_high_trust: int = 400
    min_topic_title_length: int = 15
    max_topic_title_length: int = 255
    #: ``TextSentinel.title_sentinel`` (lib/text_sentinel.rb), defaults from config/site_settings.yml.
    title_min_entropy: int = 10
    title_max_word_length: int = 30
    allow_uppercase_posts: bool = False
    min_post_length: int = 20
    min_first_post_length: int = 20
    max_post_length: int = 32000
    #: ``min_personal_message_post_length``: None is the site setting's default for the forum's locale, 10, or 3 on a
    #: ja/zh_CN/zh_TW forum (config/site_settings.yml ``locale_default``, discourse/discourse at 00011e9c).
    min_personal_message_post_length: int | None = None
    min_personal_message_title_length: int = 2
    #: ``unique_posts_mins`` (default 5): a member's identical body (whitespace aside) is refused this long.
    unique_posts_mins: int = 5
    #: ``personal_message_enabled_groups`` (default ``11``, the automatic group trust_level_1): who may send PMs.
    personal_message_min_trust_level: int = 1
    #: discourse-solved: ``solved_enabled``, ``allow_solved_on_all_topics``, ``accept_solutions_topic_author``.
    solved_enabled: bool = True
    allow_solved_on_all_topics: bool = False
    accept_solutions_topic_author: bool = True
    #: Members' rate limits (config/site_settings.yml ``rate_limits``; 0 switches one off):
    #: :mod:`sandbox.discourse.member_limits`.
    rate_limit_create_topic: int = 15
    rate_limit_create_post: int = 5
    rate_limit_new_user_create_topic: int = 120
    rate_limit_new_user_create_post: int = 30
    max_topics_per_day: int = 20
    max_personal_messages_per_day: int = 20
    max_likes_per_day: int = 50


@dataclass(eq=False)
class ForumState:
    """One forum's data. Rows are dicts shaped like the Discourse tables; keys starting with ``_`` are internal."""

    api_key: str
    api_username: str
    clock: Callable[[], float]
    settings: SiteSettings = field(default_factory=SiteSettings)
    #: The site's ``default_locale``: the language of every error the forum answers (``en``, ``zh_CN``; see
    #: :mod:`sandbox.discourse.locales`). Holding ``lock`` makes it the current locale.
    locale: str = "en"
    lock: LocaleLock = field(init=False, repr=False)
    #: Side channels a test may inspect: invitations sent by ``emails=``, staff action log entries.
    invites: list[Row] = field(default_factory=list)
    staff_actions: list[Row] = field(default_factory=list)
    users: dict[int, Row] = field(default_factory=dict)
    groups: dict[int, Row] = field(default_factory=dict)
    badges: dict[int, Row] = field(default_factory=dict)
    user_badges: dict[int, Row] = field(default_factory=dict)
    categories: dict[int, Row] = field(default_factory=dict)
    topics: dict[int, Row] = field(default_factory=dict)
    posts: dict[int, Row] = field(default_factory=dict)
    score_events: dict[int, Row] = field(default_factory=dict)
    user_fields: dict[int, Row] = field(default_factory=dict)
    #: ``post_actions`` (likes): id -> {"id", "post_id", "user_id", "post_action_type_id", "created_at"}.
    post_actions: dict[int, Row] = field(default_factory=dict)
    #: discourse-solved ``SolvedTopic``: topic id -> the accepted post's id; and the categories where answers can be
    #: accepted (the category setting ``enable_accepted_answers``).
    solved: dict[int, int] = field(default_factory=dict)
    solved_categories: set[int] = field(default_factory=set)
    #: ``Post#store_unique_post_key`` (Redis ``unique-post-{user_id}:{sha1 of raw without whitespace}``): key ->
    #: (expires at on the forum clock, post id).
    unique_posts: dict[str, tuple[float, int]] = field(default_factory=dict)
    #: Members' ``RateLimiter`` rings: (user id, limiter key) -> the times (forum clock) of the recorded actions.
    member_limits: dict[tuple[int, str], deque[float]] = field(default_factory=dict)
    #: The next id of each table.
    next_ids: dict[str, int] = field(default_factory=lambda: dict(FIRST_IDS))
    seq: int = 0
    #: The admin user list honours ``activation=activated|not_activated`` (``AdminUserIndexQuery#filter_by_activation``,
    #: lib/admin_user_index_query.rb:85-92 in the newest discourse/discourse the index holds). ``False``: a forum from
    #: before that filter (lib/admin_user_index_query.rb at 000ef5e5 has none), which ignores the parameter and lists
    #: accounts whose owner never confirmed the email along with the others.
    activation_filter: bool = True
    #: Granular keys (Admin → API → Scope: Granular): key → the (method, path regex) its scopes allow, from
    #: ``ApiKeyScope.default_mappings`` (app/models/api_key_scope.rb). Any other route refuses the key as a key that
    #: does not exist: ``lookup_api_user`` returns nil when ``!api_key.request_allowed?(@env)`` and the provider raises
    #: ``InvalidAccess`` with ``invalid_api_credentials`` (lib/auth/default_current_user_provider.rb).
    granular_keys: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.lock = LocaleLock(lambda: self.locale)
        self._seed()

    # ==== seeding ==========================================================================================================

    def _seed(self) -> None:
        self.make_user(-1, "system", "no_email", name="system", admin=True, moderator=True, trust_level=4)
        if self.api_username.lower() != "system":
            self.make_user(self.take_id("user"), self.api_username, f"{self.api_username}@sandbox.invalid",
                           name=self.api_username, admin=True, trust_level=1)  # fmt: skip
        for group_id, name in AUTOMATIC_GROUPS.items():
            self.groups[group_id] = new_group(group_id, name, automatic=True, visibility_level=1 if group_id else 0)
        for badge_id, name, type_id in [(1, "Basic User", 3), (2, "Member", 2), (3, "Regular", 2), (4, "Leader", 1)]:
            self.badges[badge_id] = new_badge(badge_id, name, type_id, badge_grouping_id=4, allow_title=type_id < 3,
                                              system=True)  # fmt: skip
        self.badges[5] = new_badge(5, "Welcome", 3, badge_grouping_id=2, system=True)
        for category_id, name, slug, color in [
            (1, "Uncategorized", "uncategorized", "0088CC"),
            (2, "Site Feedback", "site-feedback", "808281"),
            (3, "Staff", "staff", "E45735"),
            (4, "General", "general", "25AAE2"),
        ]:
            self.categories[category_id] = new_category(category_id, name, slug, color, "FFFFFF",
                                                        read_restricted=category_id == 3)  # fmt: skip

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def take_id(self, table: str) -> int:
        value = self.next_ids[table]
        self.next_ids[table] += 1
        return value

    def make_user(self, user_id: int, username: str, email: str, **attrs: Any) -> Row:
        user = {
            "id": user_id,
            "username": username,
            "name": attrs.get("name"),
            "email": email.strip().lower(),
            "secondary_emails": [e.strip().lower() for e in attrs.get("secondary_emails", ())],
            # ``users.active``: false until the owner confirms the email (``EmailToken.confirm`` sets it,
            # app/models/email_token.rb:45 at 01357453) or staff activate the account.
            "active": attrs.get("active", True),
            "approved": attrs.get("approved", True),
            "admin": attrs.get("admin", False),
            "moderator": attrs.get("moderator", False),
            "trust_level": attrs.get("trust_level", 0),
            "staged": attrs.get("staged", False),
            "suspended": attrs.get("suspended", False),
            "silenced": attrs.get("silenced", False),
            "title": None,
            "primary_group_id": None,
            "flair_group_id": None,
            "created_at": attrs.get("created_at") or now_iso(),
            "last_seen_at": attrs.get("last_seen_at"),
            "user_fields": {},
            "external_ids": {},
            "_created": self.next_seq(),
        }
        self.users[user_id] = user
        return user

    # ==== lookups ==========================================================================================================

    def find_user(self, username: str | None) -> Row | None:
        if username is None:
            return None
        wanted = str(username).lower()
        return next((u for u in self.users.values() if u["username"].lower() == wanted), None)

    def user_by_primary_email(self, email: str) -> Row | None:
        wanted = email.strip().lower()
        return next((u for u in self.users.values() if u["email"] == wanted), None)

    def user_by_any_email(self, email: str) -> Row | None:
        wanted = email.strip().lower()
        return next((u for u in self.users.values() if u["email"] == wanted or wanted in u["secondary_emails"]), None)

    def group_by_name(self, name: str) -> Row | None:
        wanted = str(name).lower()
        return next((g for g in self.groups.values() if g["name"].lower() == wanted), None)

    def badge_by_name(self, name: str) -> Row | None:
        exact = next((b for b in self.badges.values() if b["name"] == name), None)
        return exact or next((b for b in self.badges.values() if b["name"].lower() == str(name).lower()), None)

    def grants_of(self, user: Row) -> list[Row]:
        """The user's badge grants (``UserBadge`` rows), oldest first."""
        return sorted((ub for ub in self.user_badges.values() if ub["user_id"] == user["id"]), key=lambda ub: ub["id"])

    def badge_names_of(self, user: Row) -> list[str]:
        return [self.badges[ub["badge_id"]]["name"] for ub in self.grants_of(user) if ub["badge_id"] in self.badges]

    def auto_member(self, group_id: int, user: Row) -> bool:
        if user["id"] <= 0 and group_id == 0:
            return False
        if group_id == 0:
            return True
        if group_id == 1:
            return bool(user["admin"])
        if group_id == 2:
            return bool(user["moderator"])
        if group_id == 3:
            return is_staff(user)
        if 10 <= group_id <= 14:
            return bool(user["trust_level"] >= group_id - 10)
        return False

    def member_ids(self, group: Row) -> list[int]:
        if group["automatic"]:
            if group["id"] == 0:
                return []
            return [
                u["id"] for u in sorted(self.users.values(), key=lambda u: u["id"]) if self.auto_member(group["id"], u)
            ]
        return sorted(group["_members"], key=lambda uid: group["_members"][uid]["_seq"])

    def is_member(self, group: Row, user: Row) -> bool:
        if group["automatic"]:
            return self.auto_member(group["id"], user)
        return user["id"] in group["_members"]

    def groups_of(self, user: Row, automatic: bool = False) -> list[Row]:
        groups = sorted(self.groups.values(), key=lambda g: g["id"])
        return [g for g in groups if (automatic or not g["automatic"]) and g["id"] != 0 and self.is_member(g, user)]

    def group_of(self, group_id: int | None) -> Row | None:
        """A user's ``primary_group_id``/``flair_group_id`` resolved (``None`` when unset or gone)."""
        return self.groups.get(group_id) if group_id is not None else None

    def post_count(self, user: Row) -> int:
        return sum(1 for p in self.posts.values() if p["user_id"] == user["id"] and p["deleted_at"] is None)

    def live_posts(self, topic: Row) -> list[Row]:
        posts = [p for p in self.posts.values() if p["topic_id"] == topic["id"] and p["deleted_at"] is None]
        return sorted(posts, key=lambda p: p["post_number"])


def is_staff(user: Row) -> bool:
    return bool(user["admin"] or user["moderator"])


# ==== new rows with the tables' column defaults ==================================================================================


def new_group(group_id: int, name: str, automatic: bool = False, **attrs: Any) -> Row:
    group = {
        "id": group_id,
        "name": name,
        "automatic": automatic,
        "full_name": None,
        "title": None,
        "flair_icon": None,
        "flair_upload_id": None,
        "flair_bg_color": None,
        "flair_color": None,
        "primary_group": False,
        "bio_raw": None,
        "visibility_level": 0,
        "members_visibility_level": 0,
        "mentionable_level": 0,
        "messageable_level": 0,
        "public_admission": False,
        "public_exit": False,
        "allow_membership_requests": False,
        "default_notification_level": 3,
        "grant_trust_level": None,
        "automatic_membership_email_domains": None,
        "membership_request_template": None,
        "publish_read_state": False,
        "incoming_email": None,
        "_members": {},
    }
    group.update(attrs)
    return group


def new_badge(badge_id: int, name: str, badge_type_id: int, **attrs: Any) -> Row:
    badge = {
        "id": badge_id,
        "name": name,
        "description": None,
        "long_description": None,
        "badge_type_id": badge_type_id,
        "icon": "certificate",
        "image_upload_id": None,
        "allow_title": False,
        "multiple_grant": False,
        "listable": True,
        "enabled": True,
        "badge_grouping_id": 5,
        "target_posts": False,
        "show_posts": False,
        "show_in_post_header": False,
        "auto_revoke": True,
        "trigger": None,
        "query": None,
        "system": False,
        "grant_count": 0,
    }
    badge.update(attrs)
    return badge


def new_category(category_id: int, name: str, slug: str, color: str, text_color: str, **attrs: Any) -> Row:
    category = {
        "id": category_id,
        "name": name,
        "slug": slug,
        "color": color,
        "text_color": text_color,
        "description": None,
        "parent_category_id": None,
        "read_restricted": False,
        "position": category_id,
        "created_at": now_iso(),
    }
    category.update(attrs)
    return category
