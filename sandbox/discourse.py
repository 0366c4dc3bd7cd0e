"""A faithful Discourse sandbox: the admin-API endpoints CardBridge uses, answering what the real forum answers.

Built against ``shared/specs/discourse`` (ENDPOINTS.md, ERRORS_RATE_LIMITS_WEBHOOKS.md, openapi.json) and the Discourse
sources they cite. Behaviour reproduced from source, including the awkward parts:

- auth: ``Api-Key`` + ``Api-Username`` (or ``Api-User-Id``); a bad key or user answers 403 ``invalid_access`` with
  ``invalid_api_credentials``; ``/admin/*`` routes answer 404 to a non-admin acting user (Rails ``AdminConstraint``).
- the site-wide admin-API limiter (sliding window, rejected requests not counted) answering 429 with ``Retry-After``,
  ``Discourse-Rate-Limit-Error-Code`` and ``extras.wait_seconds``/``time_left``; or the per-IP plain-text form.
- ``AdminUserIndexQuery``: the ``email`` filter is exact on the primary address only; the list flag does not filter
  ``active`` (it only orders by last seen), 100 users a page, ``order``/``asc`` as in core, ``system`` included.
- badges: ``BadgeGranter`` (a single-grant badge answers the existing grant; a disabled or unknown badge is 404 since
  the controller looks up ``enabled: true`` badges), revoking clears a title equal to the badge name.
- groups: ``add_members`` (422 ``member_already_exist`` only when *every* user already belongs, 1000-user cap, unknown
  ``emails`` become invitations), ``remove_member`` with ``skipped_usernames``, ``GroupUser`` side effects on title,
  primary and flair group, ``Group#update_title``/``update_primary_group`` on group edits.
- posts/topics: ``NewPostResultSerializer`` errors (422 ``{"action":"create_post","errors":[..],"success":false}``),
  topic validations (title length and uniqueness, category, ``external_id`` format/length/uniqueness), the 120 s
  memoization of identical API post creations, 301 for ``/t/external_id/..``, ``PostRevisor`` versions with the
  5-minute editing grace period, 409 on ``original_text`` mismatch, soft deletes, 20 posts per ``post_stream`` chunk.
- the gamification plugin's ``score_events`` admin endpoints.

State lives in memory behind one lock (the server runs in another thread than the tests). Every request is logged.
"""

from __future__ import annotations

import difflib
import html
import json
import math
import re
import threading
import time
import traceback
import unicodedata
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qsl, quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.faults import FaultInjector, Knobs

# ---- strings (config/locales/server.en.yml) ---------------------------------------------------------------------------

MSG_NOT_FOUND = "The requested URL or resource could not be found."
MSG_INVALID_ACCESS = "You are not permitted to view the requested resource."
MSG_INVALID_API_CREDENTIALS = (
    "You are not permitted to view the requested resource. The API username or key is invalid."
)
MSG_INVALID_PARAMS = "You supplied invalid parameters to the request: {}"
MSG_PARAM_MISSING = "param is missing or the value is empty: {}"
MSG_EDIT_CONFLICT = "That post was edited by another user and your changes can no longer be saved."
MSG_TOPIC_NOT_FOUND = "Something has gone wrong. Perhaps this topic was closed or deleted while you were looking at it?"
MSG_TOO_MANY = "You’ve performed this action too many times. Please wait {} before trying again."
MSG_BAD_BADGE_REASON = "External or invalid discourse link is not allowed in badge reason"
MSG_MISSING_USER_FIELD = "You have not completed all the user fields"
MSG_CANT_MODIFY_AUTOMATIC = "You cannot modify an automatic group"
MSG_CANT_ALLOW_REQUESTS = "You cannot allow membership requests for a group without any owners."
MSG_USERNAMES_OR_EMAILS = "Usernames or emails must be present"
MSG_REMOVE_NEEDS_USERS = "user_ids or usernames or user_emails must be present"

#: ``GroupsController::ADD_MEMBERS_LIMIT``
ADD_MEMBERS_LIMIT = 1000
#: ``GroupsController::MEMBERS_DEFAULT_PAGE_SIZE`` / ``MEMBERS_MAX_PAGE_SIZE``
MEMBERS_DEFAULT_LIMIT, MEMBERS_MAX_LIMIT = 50, 1000
#: ``UserBadgesController::MAX_BADGES`` / ``MAX_INDEX_LIMIT``
USER_BADGES_DEFAULT_LIMIT, USER_BADGES_MAX_LIMIT = 96, 50
#: ``AdminUserIndexQuery#find_users`` page size
USERS_PAGE_SIZE = 100
#: ``Topic::EXTERNAL_ID_MAX_LENGTH``
EXTERNAL_ID_MAX_LENGTH = 50
#: ``TopicView#chunk_size``
TOPIC_CHUNK_SIZE = 20
#: ``UserField.max_length``
USER_FIELD_MAX_LENGTH = 2048
#: ``PostsController#create`` memoizes API post creations this long
POST_MEMO_SECONDS = 120
ADMIN_WINDOW_SECONDS = 60

TRUST_LEVELS = {"newuser": 0, "basic": 1, "member": 2, "regular": 3, "leader": 4}
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
BADGE_TYPES = [
    {"id": 1, "name": "Gold", "sort_order": 9},
    {"id": 2, "name": "Silver", "sort_order": 8},
    {"id": 3, "name": "Bronze", "sort_order": 7},
]
BADGE_GROUPINGS = [
    {"id": 1, "name": "Getting Started", "description": None, "position": 10, "system": True},
    {"id": 2, "name": "Community", "description": None, "position": 11, "system": True},
    {"id": 3, "name": "Posting", "description": None, "position": 12, "system": True},
    {"id": 4, "name": "Trust Level", "description": None, "position": 13, "system": True},
    {"id": 5, "name": "Other", "description": None, "position": 14, "system": True},
]
#: Badge columns an admin may set through ``POST/PUT /admin/badges`` (every column but id/timestamps/grant_count/query).
BADGE_WRITABLE = (
    "name", "description", "long_description", "badge_type_id", "icon", "image_upload_id", "allow_title",
    "multiple_grant", "listable", "enabled", "badge_grouping_id", "target_posts", "show_posts",
    "show_in_post_header", "auto_revoke", "trigger",
)  # fmt: skip
BADGE_BOOLEANS = {"allow_title", "multiple_grant", "listable", "enabled", "target_posts", "show_posts",
                  "show_in_post_header", "auto_revoke"}  # fmt: skip
GROUP_WRITABLE = (
    "name", "full_name", "title", "flair_icon", "flair_upload_id", "flair_bg_color", "flair_color", "primary_group",
    "bio_raw", "visibility_level", "members_visibility_level", "mentionable_level", "messageable_level",
    "public_admission", "public_exit", "allow_membership_requests", "default_notification_level",
    "grant_trust_level", "automatic_membership_email_domains", "membership_request_template", "publish_read_state",
    "incoming_email",
)  # fmt: skip
GROUP_BOOLEANS = {"primary_group", "public_admission", "public_exit", "allow_membership_requests", "publish_read_state"}
GROUP_INTEGERS = {"visibility_level", "members_visibility_level", "mentionable_level", "messageable_level",
                  "default_notification_level", "grant_trust_level", "flair_upload_id"}  # fmt: skip


# ---- small Rails-isms ---------------------------------------------------------------------------------------------------


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _blank(value: Any) -> bool:
    """Ruby's ``blank?``: nil, false, whitespace-only strings and empty collections."""
    if value is None or value is False:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, tuple, dict)):
        return len(value) == 0
    return False


def _ruby_int(value: Any) -> int:
    """Ruby's ``to_i``: leading digits, else 0."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    match = re.match(r"\s*([+-]?\d+)", str(value if value is not None else ""))
    return int(match.group(1)) if match else 0


def _strict_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    return None


def _cast_bool(value: Any) -> bool | None:
    """``ActiveModel::Type::Boolean``."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    return str(value) not in {"0", "f", "F", "false", "FALSE", "off", "OFF"}


def _cast_int(value: Any) -> int | None:
    """``ActiveModel::Type::Integer`` (lenient: ``"12abc"`` is 12, junk is nil)."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value)
    match = re.match(r"\s*([+-]?\d+)", str(value))
    return int(match.group(1)) if match else None


def _slug(text: str, default: str = "topic") -> str:
    """``Slug.for`` with the default ``ascii`` method: non-ASCII is dropped; empty or all-digit slugs fall back."""
    ascii_text = unicodedata.normalize("NFKD", text.replace("'", "")).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if not slug or slug.isdigit():
        return default
    return slug


def _cook(raw: str) -> str:
    """A crude stand-in for PrettyText: escaped paragraphs."""
    paragraphs = [p for p in re.split(r"\n\s*\n", raw.strip()) if p.strip()]
    return "\n".join("<p>" + html.escape(p).replace("\n", "<br>\n") + "</p>" for p in paragraphs)


def _clean_raw(raw: str) -> str:
    """``PostRevisor#cleanup_whitespaces``: normalise odd spaces, strip trailing whitespace."""
    return re.sub(r"\s+\Z", "", raw.replace("\u00a0", " ").replace("\u200b", ""))


def _time_left(seconds: int) -> str:
    """``RateLimiter::LimitExceeded#time_left``."""
    if seconds <= 3:
        return "a few seconds"
    if seconds < 60:
        return f"{seconds} second" if seconds == 1 else f"{seconds} seconds"
    if seconds < 3600:
        minutes = seconds // 60
        return f"{minutes} minute" if minutes == 1 else f"{minutes} minutes"
    hours = seconds // 3600
    return f"{hours} hour" if hours == 1 else f"{hours} hours"


def _set_nested(target: dict[str, Any], key: str, value: Any) -> None:
    """Rails nested parameters: ``a[b][c]=v``, ``a[]=v``, ``a[][b]=v``."""
    match = re.fullmatch(r"([^\[\]]+)((?:\[[^\[\]]*\])*)", key)
    if not match:
        target[key] = value
        return
    parts = [match.group(1)] + re.findall(r"\[([^\[\]]*)\]", match.group(2))
    current: Any = target
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        following = None if last else parts[index + 1]
        if isinstance(current, list):
            if last:
                current.append(value)
                return
            if current and isinstance(current[-1], dict) and following not in current[-1]:
                current = current[-1]
            else:
                fresh: dict[str, Any] = {}
                current.append(fresh)
                current = fresh
            if part != "":
                current = current.setdefault(part, [] if following == "" else {})
            continue
        if last:
            current[part] = value
            return
        wanted: type = list if following == "" else dict
        if not isinstance(current.get(part), wanted):
            current[part] = wanted()
        current = current[part]


def rails_params(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        _set_nested(result, key, value)
    return result


def _parse_body(content_type: str, raw: bytes) -> dict[str, Any]:
    if not raw:
        return {}
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/json" or kind.endswith("+json"):
        value = json.loads(raw.decode("utf-8"))
        return value if isinstance(value, dict) else {"_json": value}
    if kind == "multipart/form-data":
        message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
        pairs: list[tuple[str, str]] = []
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name is None:
                continue
            payload = part.get_payload(decode=True) or b""
            pairs.append((str(name), payload.decode(part.get_content_charset() or "utf-8", "replace")))
        return rails_params(pairs)
    return rails_params(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))


# ---- answers --------------------------------------------------------------------------------------------------------------


class _Answer(Exception):
    """A response decided deep in a handler (Discourse's ``rescue_from`` paths)."""

    def __init__(
        self,
        status: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
        media_type: str = "application/json; charset=utf-8",
    ) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.media_type = media_type


def _error_body(errors: list[str], error_type: str | None = None, extras: dict[str, Any] | None = None) -> dict:
    body: dict[str, Any] = {"errors": errors}
    if error_type:
        body["error_type"] = error_type
    if extras is not None:
        body["extras"] = extras
    return body


def _not_found(extras: dict[str, Any] | None = None) -> _Answer:
    return _Answer(404, _error_body([MSG_NOT_FOUND], "not_found", extras))


def _forbidden(message: str = MSG_INVALID_ACCESS) -> _Answer:
    return _Answer(403, _error_body([message], "invalid_access"))


def _invalid_params(message: str) -> _Answer:
    return _Answer(400, _error_body([MSG_INVALID_PARAMS.format(message)], "invalid_parameters"))


def _json_error(errors: list[str] | str, status: int = 422, error_type: str | None = None) -> _Answer:
    """``render_json_error``: 422 by default, ``error_type`` only when the caller names one."""
    return _Answer(status, _error_body([errors] if isinstance(errors, str) else list(errors), error_type))


def _require(params: dict[str, Any], key: str) -> Any:
    """``params.require(key)``: 400 ``ParameterMissing`` when absent or blank."""
    value = params.get(key)
    if _blank(value):
        raise _Answer(400, {"errors": [MSG_PARAM_MISSING.format(key)]})
    return value


def _fetch_int(
    params: dict[str, Any], key: str, default: int, minimum: int | None = 0, maximum: int | None = None
) -> int:
    """``ApplicationController#fetch_int_from_params``: a present value must be an integer within bounds."""
    if key not in params:
        return default
    value = params[key]
    parsed = _strict_int(value) if not isinstance(value, int) or isinstance(value, bool) else value
    if parsed is None:
        raise _invalid_params(key)
    if (minimum is not None and parsed < minimum) or (maximum is not None and parsed > maximum):
        raise _invalid_params(key)
    return parsed


# ---- the request log ------------------------------------------------------------------------------------------------------


class RequestLog:
    """Every request the forum answered: ``{"method", "path", "query", "body", "status", "time", "api_username"}``.

    ``time`` is the sandbox clock (monotonic by default) when the request arrived. Thread-safe; iterating gives a
    snapshot.
    """

    def __init__(self) -> None:
        self._records: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def append(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._records.append(record)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._records)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.snapshot())

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        with self._lock:
            return self._records[index]

    def writes(self) -> list[dict[str, Any]]:
        return [r for r in self.snapshot() if r["method"] != "GET"]

    def count(self, method: str, path_regex: str) -> int:
        pattern = re.compile(path_regex)
        return sum(1 for r in self.snapshot() if r["method"] == method.upper() and pattern.search(r["path"]))

    def reset(self) -> None:
        with self._lock:
            self._records.clear()


@dataclass
class _Ctx:
    method: str
    path: str
    params: dict[str, Any]
    path_params: dict[str, str]
    actor: dict[str, Any]
    base_url: str
    wants_json: bool
    headers: dict[str, str] = field(default_factory=dict)


_J = r"(?:\.json)?"


class DiscourseSandbox:
    """An in-memory Discourse forum behind a Starlette app (``.app``, wrapped in the shared fault injector)."""

    def __init__(
        self,
        api_key: str = "sandbox-key",
        api_username: str = "system",
        knobs: Knobs | None = None,
        rate_limit_per_minute: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api_key = api_key
        self.api_username = api_username
        self.knobs = knobs or Knobs()
        self.rate_limit_per_minute = rate_limit_per_minute
        self.clock = clock
        #: Answer the per-IP middleware's text/plain 429 instead of the admin-API JSON one.
        self.plain_text_429 = False
        self.rate_limited_count = 0
        #: Site settings that change answers.
        self.allow_uncategorized_topics = False
        self.allow_duplicate_topic_titles = False
        self.gamification_enabled = True
        self.editing_grace_period = 300
        self.editing_grace_period_max_diff = 100
        self.editing_grace_period_max_diff_high_trust = 400
        self.min_topic_title_length = 15
        self.max_topic_title_length = 255
        self.min_post_length = 20
        self.min_first_post_length = 20
        self.max_post_length = 32000
        #: Side channels a test may inspect: invitations sent by ``emails=``, staff action log entries.
        self.invites: list[dict[str, Any]] = []
        self.staff_actions: list[dict[str, Any]] = []
        self.requests = RequestLog()

        self._lock = threading.RLock()
        self._seq = 0
        self._users: dict[int, dict[str, Any]] = {}
        self._next_user_id = 1
        self._groups: dict[int, dict[str, Any]] = {}
        self._next_group_id = 41
        self._badges: dict[int, dict[str, Any]] = {}
        self._next_badge_id = 100
        self._user_badges: dict[int, dict[str, Any]] = {}
        self._next_user_badge_id = 1
        self._categories: dict[int, dict[str, Any]] = {}
        self._next_category_id = 5
        self._topics: dict[int, dict[str, Any]] = {}
        self._next_topic_id = 11
        self._posts: dict[int, dict[str, Any]] = {}
        self._next_post_id = 101
        self._score_events: dict[int, dict[str, Any]] = {}
        self._next_score_event_id = 1
        self._user_fields: dict[int, dict[str, Any]] = {}
        self._next_user_field_id = 1
        self._post_memo: dict[str, tuple[float, int, Any]] = {}
        self._admin_window: deque[float] = deque()

        self._seed()
        self._routes = self._build_routes()
        self._starlette = Starlette(
            routes=[Route("/{path:path}", self._endpoint, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])]
        )
        self.app = FaultInjector(self._starlette, self.knobs)

    # ==== seeding ==========================================================================================================

    def _seed(self) -> None:
        self._make_user(-1, "system", "no_email", name="system", admin=True, moderator=True, trust_level=4)
        if self.api_username.lower() != "system":
            self._make_user(self._take_user_id(), self.api_username, f"{self.api_username}@sandbox.invalid",
                            name=self.api_username, admin=True, trust_level=1)  # fmt: skip
        for group_id, name in AUTOMATIC_GROUPS.items():
            self._groups[group_id] = self._new_group(
                group_id, name, automatic=True, visibility_level=1 if group_id else 0
            )
        for badge_id, name, type_id in [(1, "Basic User", 3), (2, "Member", 2), (3, "Regular", 2), (4, "Leader", 1)]:
            self._badges[badge_id] = self._new_badge(badge_id, name, type_id, badge_grouping_id=4, allow_title=type_id < 3,
                                                     system=True)  # fmt: skip
        self._badges[5] = self._new_badge(5, "Welcome", 3, badge_grouping_id=2, system=True)
        for category_id, name, slug, color in [
            (1, "Uncategorized", "uncategorized", "0088CC"),
            (2, "Site Feedback", "site-feedback", "808281"),
            (3, "Staff", "staff", "E45735"),
            (4, "General", "general", "25AAE2"),
        ]:
            self._categories[category_id] = self._new_category(category_id, name, slug, color, "FFFFFF",
                                                               read_restricted=category_id == 3)  # fmt: skip

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _take_user_id(self) -> int:
        user_id = self._next_user_id
        self._next_user_id += 1
        return user_id

    def _make_user(self, user_id: int, username: str, email: str, **attrs: Any) -> dict[str, Any]:
        user = {
            "id": user_id,
            "username": username,
            "name": attrs.get("name"),
            "email": email.strip().lower(),
            "secondary_emails": [e.strip().lower() for e in attrs.get("secondary_emails", ())],
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
            "created_at": _now_iso(),
            "last_seen_at": attrs.get("last_seen_at"),
            "user_fields": {},
            "external_ids": {},
            "_created": self._next_seq(),
        }
        self._users[user_id] = user
        return user

    def _new_group(self, group_id: int, name: str, automatic: bool = False, **attrs: Any) -> dict[str, Any]:
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

    def _new_badge(self, badge_id: int, name: str, badge_type_id: int, **attrs: Any) -> dict[str, Any]:
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

    def _new_category(self, category_id: int, name: str, slug: str, color: str, text_color: str, **attrs: Any) -> dict:
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
            "created_at": _now_iso(),
        }
        category.update(attrs)
        return category

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
    ) -> int:
        """Create a forum account; returns its id. Emails are stored stripped and lower-cased, as ``UserEmail`` does."""
        with self._lock:
            if self._find_user(username) is not None:
                raise ValueError(f"username {username!r} is taken")
            for address in (email, *secondary_emails):
                if self._user_by_any_email(address) is not None:
                    raise ValueError(f"email {address!r} is taken")
            user = self._make_user(
                self._take_user_id(),
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
            )
            return int(user["id"])

    def user(self, username: str) -> dict[str, Any]:
        """The stored user plus what a member sees: group/badge names, primary and flair group names."""
        with self._lock:
            user = self._find_user(username)
            if user is None:
                raise KeyError(username)
            data = {k: v for k, v in user.items() if not k.startswith("_")}
            data["secondary_emails"] = list(user["secondary_emails"])
            data["user_fields"] = dict(user["user_fields"])
            data["groups"] = [g["name"] for g in self._groups_of(user)]
            data["badges"] = self._badge_names_of(user)
            primary = self._groups.get(user["primary_group_id"]) if user["primary_group_id"] is not None else None
            flair = self._groups.get(user["flair_group_id"]) if user["flair_group_id"] is not None else None
            data["primary_group_name"] = primary["name"] if primary else None
            data["flair_group_name"] = flair["name"] if flair else None
            return data

    def badges_of(self, username: str) -> list[str]:
        """Badge names, one entry per grant (a multiple-grant badge can appear more than once)."""
        with self._lock:
            user = self._find_user(username)
            return self._badge_names_of(user) if user else []

    def user_badge_count(self, badge_name: str) -> int:
        """How many grants (UserBadge rows) of that badge exist, all users together."""
        with self._lock:
            badge = self._badge_by_name(badge_name)
            if badge is None:
                return 0
            return sum(1 for ub in self._user_badges.values() if ub["badge_id"] == badge["id"])

    def groups_of(self, username: str, automatic: bool = False) -> list[str]:
        """Names of the custom groups the user belongs to (automatic ones like ``trust_level_0`` only if asked)."""
        with self._lock:
            user = self._find_user(username)
            if user is None:
                return []
            return [g["name"] for g in self._groups_of(user, automatic=automatic)]

    def group(self, name: str) -> dict[str, Any] | None:
        with self._lock:
            group = self._group_by_name(name)
            if group is None:
                return None
            data = {k: v for k, v in group.items() if not k.startswith("_")}
            members = self._member_ids(group)
            data["user_count"] = len(members)
            data["members"] = [self._users[uid]["username"] for uid in members if uid in self._users]
            return data

    def badge(self, name: str) -> dict[str, Any] | None:
        with self._lock:
            badge = self._badge_by_name(name)
            return dict(badge) if badge else None

    def add_user_field(
        self, name: str, field_type: str = "text", *, editable: bool = True, required: bool = False
    ) -> int:
        """Define an admin user field (``UserField``); ``PUT /u/{username}`` ignores ids that are not defined."""
        with self._lock:
            field_id = self._next_user_field_id
            self._next_user_field_id += 1
            self._user_fields[field_id] = {"id": field_id, "name": name, "field_type": field_type,
                                           "editable": editable, "required": required}  # fmt: skip
            return field_id

    def add_category(self, name: str, color: str = "0088CC", text_color: str = "FFFFFF") -> int:
        with self._lock:
            category_id = self._next_category_id
            self._next_category_id += 1
            self._categories[category_id] = self._new_category(category_id, name, _slug(name, f"{category_id}-category"),
                                                               color, text_color)  # fmt: skip
            return category_id

    def revoke_by_hand(self, username: str, badge_name: str) -> int:
        """A moderator removed the grant(s) in the admin UI. Returns how many grants were removed."""
        with self._lock:
            user = self._find_user(username)
            badge = self._badge_by_name(badge_name)
            if user is None or badge is None:
                return 0
            grants = [
                ub for ub in self._user_badges.values() if ub["user_id"] == user["id"] and ub["badge_id"] == badge["id"]
            ]
            for grant in grants:
                self._revoke(grant)
            return len(grants)

    def remove_from_group_by_hand(self, username: str, group: str) -> bool:
        with self._lock:
            user = self._find_user(username)
            found = self._group_by_name(group)
            if user is None or found is None or found["automatic"]:
                return False
            return self._remove_member(found, user)

    def add_to_group_by_hand(self, username: str, group: str) -> bool:
        with self._lock:
            user = self._find_user(username)
            found = self._group_by_name(group)
            if user is None or found is None or found["automatic"]:
                return False
            return self._add_member(found, user)

    def delete_badge_by_hand(self, badge_name: str) -> bool:
        """An admin deleted the badge: its grants go too, and titles equal to its name are cleared."""
        with self._lock:
            badge = self._badge_by_name(badge_name)
            if badge is None:
                return False
            self._destroy_badge(badge)
            return True

    def delete_group_by_hand(self, name: str) -> bool:
        with self._lock:
            group = self._group_by_name(name)
            if group is None or group["automatic"]:
                return False
            self._destroy_group(group)
            return True

    def edit_post_by_hand(
        self, post_id: int, raw: str, editor: str = "moderator", edit_reason: str | None = None
    ) -> dict:
        """A moderator edited the post: another user, so ``PostRevisor`` always makes a new version."""
        with self._lock:
            post = self._posts[post_id]
            user = self._find_user(editor)
            if user is None:
                user = self._make_user(self._take_user_id(), editor, f"{editor}@sandbox.invalid", name=editor,
                                       moderator=True, trust_level=4)  # fmt: skip
            self._revise_post(post, user, {"raw": raw, "edit_reason": edit_reason})
            return self._post_record(post)

    def delete_post_by_hand(self, post_id: int) -> None:
        with self._lock:
            self._trash_post(self._posts[post_id], self._find_user("system"))

    def topics(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(t, tags=list(t["tags"])) for t in sorted(self._topics.values(), key=lambda t: t["id"])]

    def posts_of_topic(self, topic_id: int) -> list[dict[str, Any]]:
        """Every post of the topic, deleted ones included, with ``last_editor_username``."""
        with self._lock:
            posts = [p for p in self._posts.values() if p["topic_id"] == topic_id]
            return [self._post_record(p) for p in sorted(posts, key=lambda p: p["post_number"])]

    def score_events(self, user_id: int | None = None) -> list[dict[str, Any]]:
        with self._lock:
            events = sorted(self._score_events.values(), key=lambda e: e["id"])
            return [dict(e) for e in events if user_id is None or e["user_id"] == user_id]

    def member_view(self) -> list[dict[str, Any]]:
        """What a forum member sees next to each name: badges, groups, title, flair and primary group."""
        with self._lock:
            rows = []
            for user in sorted(self._users.values(), key=lambda u: u["id"]):
                flair = self._groups.get(user["flair_group_id"]) if user["flair_group_id"] is not None else None
                primary = self._groups.get(user["primary_group_id"]) if user["primary_group_id"] is not None else None
                rows.append(
                    {
                        "username": user["username"],
                        "badges": sorted(set(self._badge_names_of(user))),
                        "groups": [g["name"] for g in self._groups_of(user)],
                        "title": user["title"],
                        "flair_group": flair["name"] if flair else None,
                        "flair_icon": (flair["flair_icon"] if flair else None),
                        "primary_group": primary["name"] if primary else None,
                    }
                )
            return rows

    def writes(self) -> list[dict[str, Any]]:
        return self.requests.writes()

    def count(self, method: str, path_regex: str) -> int:
        return self.requests.count(method, path_regex)

    def reset_log(self) -> None:
        self.requests.reset()

    # ==== lookups ==========================================================================================================

    def _find_user(self, username: str | None) -> dict[str, Any] | None:
        if username is None:
            return None
        wanted = str(username).lower()
        return next((u for u in self._users.values() if u["username"].lower() == wanted), None)

    def _user_by_primary_email(self, email: str) -> dict[str, Any] | None:
        wanted = email.strip().lower()
        return next((u for u in self._users.values() if u["email"] == wanted), None)

    def _user_by_any_email(self, email: str) -> dict[str, Any] | None:
        wanted = email.strip().lower()
        return next((u for u in self._users.values() if u["email"] == wanted or wanted in u["secondary_emails"]), None)

    def _group_by_name(self, name: str) -> dict[str, Any] | None:
        wanted = str(name).lower()
        return next((g for g in self._groups.values() if g["name"].lower() == wanted), None)

    def _badge_by_name(self, name: str) -> dict[str, Any] | None:
        exact = next((b for b in self._badges.values() if b["name"] == name), None)
        return exact or next((b for b in self._badges.values() if b["name"].lower() == str(name).lower()), None)

    def _badge_names_of(self, user: dict[str, Any]) -> list[str]:
        grants = sorted(
            (ub for ub in self._user_badges.values() if ub["user_id"] == user["id"]), key=lambda ub: ub["id"]
        )
        return [self._badges[ub["badge_id"]]["name"] for ub in grants if ub["badge_id"] in self._badges]

    def _is_staff(self, user: dict[str, Any]) -> bool:
        return bool(user["admin"] or user["moderator"])

    def _auto_member(self, group_id: int, user: dict[str, Any]) -> bool:
        if user["id"] <= 0 and group_id == 0:
            return False
        if group_id == 0:
            return True
        if group_id == 1:
            return bool(user["admin"])
        if group_id == 2:
            return bool(user["moderator"])
        if group_id == 3:
            return self._is_staff(user)
        if 10 <= group_id <= 14:
            return user["trust_level"] >= group_id - 10
        return False

    def _member_ids(self, group: dict[str, Any]) -> list[int]:
        if group["automatic"]:
            if group["id"] == 0:
                return []
            return [
                u["id"]
                for u in sorted(self._users.values(), key=lambda u: u["id"])
                if self._auto_member(group["id"], u)
            ]
        return sorted(group["_members"], key=lambda uid: group["_members"][uid]["_seq"])

    def _is_member(self, group: dict[str, Any], user: dict[str, Any]) -> bool:
        if group["automatic"]:
            return self._auto_member(group["id"], user)
        return user["id"] in group["_members"]

    def _groups_of(self, user: dict[str, Any], automatic: bool = False) -> list[dict[str, Any]]:
        groups = sorted(self._groups.values(), key=lambda g: g["id"])
        return [g for g in groups if (automatic or not g["automatic"]) and g["id"] != 0 and self._is_member(g, user)]

    # ==== membership side effects (GroupUser, User#match_primary_group_changes) ============================================

    def _set_primary_group(self, user: dict[str, Any], new_id: int | None) -> None:
        old_id = user["primary_group_id"]
        if old_id == new_id:
            return
        user["primary_group_id"] = new_id
        old_group = self._groups.get(old_id) if old_id is not None else None
        if old_group is not None and user["title"] is not None and old_group["title"] == user["title"]:
            new_group = self._groups.get(new_id) if new_id is not None else None
            user["title"] = new_group["title"] if new_group else None
        if user["flair_group_id"] == old_id:
            user["flair_group_id"] = new_id

    def _add_member(self, group: dict[str, Any], user: dict[str, Any], owner: bool = False) -> bool:
        if user["id"] in group["_members"]:
            if owner:
                group["_members"][user["id"]]["owner"] = True
            return False
        group["_members"][user["id"]] = {"added_at": _now_iso(), "owner": owner, "_seq": self._next_seq()}
        if group["title"] and not user["title"]:  # GroupUser#update_title
            user["title"] = group["title"]
        if group["primary_group"]:  # GroupUser#set_primary_group
            self._set_primary_group(user, group["id"])
        if group["grant_trust_level"] is not None:  # TrustLevelGranter only raises
            user["trust_level"] = max(user["trust_level"], int(group["grant_trust_level"]))
        return True

    def _next_best_title(self, user: dict[str, Any]) -> str | None:
        """``User#next_best_title``: another group's title (primary first), else a title-granting badge's name."""
        titled = [g for g in self._groups_of(user) if g["title"]]
        titled.sort(key=lambda g: (g["id"] != user["primary_group_id"], not g["primary_group"], g["id"]))
        if titled:
            return titled[0]["title"]
        grants = sorted(
            (ub for ub in self._user_badges.values() if ub["user_id"] == user["id"]), key=lambda ub: ub["id"]
        )
        for grant in grants:
            badge = self._badges.get(grant["badge_id"])
            if badge and badge["allow_title"]:
                return badge["name"]
        return None

    def _remove_member(self, group: dict[str, Any], user: dict[str, Any]) -> bool:
        if user["id"] not in group["_members"]:
            return False
        del group["_members"][user["id"]]
        if group["title"] and group["title"] == user["title"]:  # GroupUser#grant_other_available_title
            user["title"] = self._next_best_title(user)
        # GroupUser#remove_primary_and_flair_group, then User#match_primary_group_changes on that save
        new_flair = None if user["flair_group_id"] == group["id"] else user["flair_group_id"]
        if user["primary_group_id"] == group["id"]:
            if user["title"] is not None and group["title"] == user["title"]:
                user["title"] = None
            user["primary_group_id"] = None
        user["flair_group_id"] = new_flair
        return True

    def _destroy_group(self, group: dict[str, Any]) -> None:
        for user_id in list(group["_members"]):
            if user_id in self._users:
                self._remove_member(group, self._users[user_id])
        del self._groups[group["id"]]

    # ==== badges (BadgeGranter) ============================================================================================

    def _grant(
        self, badge: dict[str, Any], user: dict[str, Any], granted_by: dict[str, Any], post_id: int | None
    ) -> dict:
        existing = None
        for grant in sorted(self._user_badges.values(), key=lambda ub: ub["id"]):
            if grant["badge_id"] == badge["id"] and grant["user_id"] == user["id"]:
                if not badge["multiple_grant"] or grant["post_id"] == post_id:
                    existing = grant
                    break
        if existing is not None and not (badge["multiple_grant"] and post_id is None):
            return existing
        seq = 0
        if badge["multiple_grant"]:
            seqs = [
                ub["seq"]
                for ub in self._user_badges.values()
                if ub["badge_id"] == badge["id"] and ub["user_id"] == user["id"]
            ]
            seq = max(seqs, default=-1) + 1
        grant = {
            "id": self._next_user_badge_id,
            "badge_id": badge["id"],
            "user_id": user["id"],
            "granted_at": _now_iso(),
            "created_at": _now_iso(),
            "granted_by_id": granted_by["id"],
            "post_id": post_id,
            "seq": seq,
        }
        self._next_user_badge_id += 1
        self._user_badges[grant["id"]] = grant
        badge["grant_count"] += 1
        return grant

    def _revoke(self, grant: dict[str, Any]) -> None:
        del self._user_badges[grant["id"]]
        badge = self._badges.get(grant["badge_id"])
        user = self._users.get(grant["user_id"])
        if badge is not None:
            badge["grant_count"] = max(0, badge["grant_count"] - 1)
            if user is not None and user["title"] == badge["name"]:
                user["title"] = None

    def _destroy_badge(self, badge: dict[str, Any]) -> None:
        for grant in [ub for ub in self._user_badges.values() if ub["badge_id"] == badge["id"]]:
            del self._user_badges[grant["id"]]
        for user in self._users.values():
            if user["title"] == badge["name"]:
                user["title"] = None
        del self._badges[badge["id"]]

    # ==== posts (PostRevisor, PostDestroyer) ===============================================================================

    def _post_record(self, post: dict[str, Any]) -> dict[str, Any]:
        data = {k: v for k, v in post.items() if not k.startswith("_")}
        editor = self._users.get(post["last_editor_id"])
        author = self._users.get(post["user_id"])
        data["last_editor_username"] = editor["username"] if editor else None
        data["username"] = author["username"] if author else None
        return data

    def _diff_size(self, before: str, after: str) -> int:
        changed = 0
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, before, after, autojunk=False).get_opcodes():
            if tag != "equal":
                changed += max(i2 - i1, j2 - j1)
        return changed

    def _revise_post(self, post: dict[str, Any], editor: dict[str, Any], changes: dict[str, Any]) -> bool:
        """``PostRevisor#revise!``: returns whether anything changed; bumps ``version`` only outside the grace period."""
        fields: dict[str, Any] = {}
        if changes.get("raw") is not None:
            fields["raw"] = _clean_raw(str(changes["raw"]))
        if "edit_reason" in changes and changes["edit_reason"] is not None:
            fields["edit_reason"] = changes["edit_reason"]
        changed = any(fields[k] != post[k] for k in fields)
        if not changed:
            return False
        now = self.clock()
        new_version = (
            post["last_editor_id"] != editor["id"] or now - post["_last_version_clock"] > self.editing_grace_period
        )
        if not new_version and "raw" in fields:
            max_diff = (
                self.editing_grace_period_max_diff_high_trust
                if self._is_staff(editor) or editor["trust_level"] > 1
                else self.editing_grace_period_max_diff
            )
            original = post["_version_raw"]
            if (
                abs(len(original) - len(fields["raw"])) > max_diff
                or self._diff_size(original, fields["raw"]) > max_diff
            ):
                new_version = True
        if "raw" in fields:
            post["raw"] = fields["raw"]
            post["cooked"] = _cook(fields["raw"])
        if "edit_reason" in fields:
            post["edit_reason"] = fields["edit_reason"]
        post["last_editor_id"] = editor["id"]
        post["updated_at"] = _now_iso()
        if new_version:
            post["version"] += 1
            post["_last_version_clock"] = now
            post["_version_raw"] = post["raw"]
        return True

    def _trash_post(self, post: dict[str, Any], by: dict[str, Any] | None) -> None:
        if post["deleted_at"] is None:
            post["deleted_at"] = _now_iso()
            post["deleted_by_id"] = by["id"] if by else None
        if post["post_number"] == 1:
            topic = self._topics.get(post["topic_id"])
            if topic is not None and topic["deleted_at"] is None:
                topic["deleted_at"] = post["deleted_at"]
                topic["deleted_by_id"] = post["deleted_by_id"]

    # ==== HTTP plumbing ====================================================================================================

    def _build_routes(self) -> list[tuple[str, re.Pattern[str], Callable[[_Ctx], Any], bool]]:
        table: list[tuple[str, str, Callable[[_Ctx], Any], bool]] = [
            ("GET", rf"/admin/users/list/(?P<flag>[^/.]+){_J}", self._users_list, True),
            ("GET", rf"/admin/users/(?P<id>-?\d+){_J}", self._admin_user_show, True),
            ("GET", rf"/u/(?P<username>[^/]+?)/emails{_J}", self._user_emails, False),
            ("GET", rf"/u/(?P<username>[^/]+?){_J}", self._user_show, False),
            ("PUT", rf"/u/(?P<username>[^/]+?){_J}", self._user_update, False),
            ("GET", rf"/admin/badges{_J}", self._badges_index, True),
            ("POST", rf"/admin/badges{_J}", self._badges_create, True),
            ("PUT", rf"/admin/badges/(?P<id>\d+){_J}", self._badges_update, True),
            ("DELETE", rf"/admin/badges/(?P<id>\d+){_J}", self._badges_destroy, True),
            ("GET", rf"/user_badges{_J}", self._user_badges_index, False),
            ("POST", rf"/user_badges{_J}", self._user_badges_create, False),
            ("DELETE", rf"/user_badges/(?P<id>[^/.]+){_J}", self._user_badges_destroy, False),
            ("GET", rf"/user-badges/(?P<username>[^/]+?){_J}", self._user_badges_username, False),
            ("POST", rf"/admin/groups{_J}", self._groups_create, True),
            ("DELETE", rf"/admin/groups/(?P<id>\d+){_J}", self._groups_destroy, True),
            ("PUT", rf"/admin/groups/(?P<id>[^/]+?)/members{_J}", self._groups_add_members, True),
            ("DELETE", rf"/admin/groups/(?P<id>[^/]+?)/members{_J}", self._groups_remove_members, True),
            ("GET", rf"/groups/by-id/(?P<id>\d+){_J}", self._groups_show_by_id, False),
            ("GET", rf"/groups/(?P<name>[^/]+?)/members{_J}", self._groups_members, False),
            ("PUT", rf"/groups/(?P<id>[^/]+?)/members{_J}", self._groups_add_members, False),
            ("DELETE", rf"/groups/(?P<id>[^/]+?)/members{_J}", self._groups_remove_members, False),
            ("GET", rf"/groups/(?P<name>[^/]+?){_J}", self._groups_show, False),
            ("PUT", rf"/groups/(?P<id>[^/]+?){_J}", self._groups_update, False),
            ("GET", rf"/categories{_J}", self._categories_index, False),
            ("POST", rf"/categories{_J}", self._categories_create, False),
            ("POST", rf"/posts{_J}", self._posts_create, False),
            ("GET", rf"/posts/(?P<id>\d+){_J}", self._posts_show, False),
            ("PUT", rf"/posts/(?P<id>\d+){_J}", self._posts_update, False),
            ("DELETE", rf"/posts/(?P<id>\d+){_J}", self._posts_destroy, False),
            ("PUT", rf"/posts/(?P<id>\d+)/recover{_J}", self._posts_recover, False),
            ("GET", rf"/t/external_id/(?P<external_id>[\w-]+){_J}", self._topics_by_external_id, False),
            ("GET", rf"/t/(?P<slug>[^/]+)/(?P<id>\d+){_J}", self._topics_show, False),
            ("GET", rf"/t/(?P<id>[^/]+?){_J}", self._topics_show, False),
            ("GET", rf"/admin/plugins/gamification/score_events{_J}", self._score_events_show, True),
            ("POST", rf"/admin/plugins/gamification/score_events{_J}", self._score_events_create, True),
            ("PUT", rf"/admin/plugins/gamification/score_events{_J}", self._score_events_update, True),
        ]
        return [(method, re.compile(rf"\A{pattern}\Z"), handler, admin) for method, pattern, handler, admin in table]

    async def _endpoint(self, request: Request) -> Response:
        arrived = self.clock()
        raw = await request.body()
        query = rails_params(list(request.query_params.multi_items()))
        content_type = request.headers.get("content-type", "")
        method = request.method.upper()
        path = request.url.path
        record: dict[str, Any] = {"method": method, "path": path, "query": query, "body": {}, "status": 0,
                                  "time": arrived, "api_username": request.headers.get("api-username")}  # fmt: skip
        try:
            try:
                body = _parse_body(content_type, raw)
            except (ValueError, UnicodeDecodeError):
                raise _Answer(400, {"errors": ["The request body could not be parsed."]})
            record["body"] = body
            with self._lock:
                answer = self._dispatch(request, method, path, query, body)
        except _Answer as caught:
            answer = caught
        except Exception as error:  # a sandbox bug: answer 500 (visible in the log) instead of dropping the request
            traceback.print_exc()
            answer = _Answer(500, {"errors": [f"sandbox error: {type(error).__name__}: {error}"]})
        record["status"] = answer.status
        self.requests.append(record)
        if answer.body is None:
            content = b""
        elif isinstance(answer.body, (bytes, str)):
            content = answer.body.encode() if isinstance(answer.body, str) else answer.body
        else:
            content = json.dumps(answer.body, ensure_ascii=False, separators=(",", ":")).encode()
        return Response(content, status_code=answer.status, headers=answer.headers, media_type=answer.media_type)

    def _dispatch(self, request: Request, method: str, path: str, query: dict, body: dict) -> _Answer:
        if self.plain_text_429:  # the per-IP middleware runs before routing and auth
            self._check_rate_limit()
        matched = None
        for route_method, pattern, handler, admin_only in self._routes:
            found = pattern.match(path)
            if found and route_method == method:
                matched = (found, handler, admin_only)
                break
        if matched is None:
            raise _not_found()
        found, handler, admin_only = matched
        actor = self._authenticate(request)
        if not self.plain_text_429:
            self._check_rate_limit()
        if admin_only and not actor["admin"]:
            raise _not_found()  # AdminConstraint: the route does not exist for non-admins
        params = {**query, **body, **{k: v for k, v in found.groupdict().items() if v is not None}}
        accept = request.headers.get("accept", "")
        ctx = _Ctx(
            method=method,
            path=path,
            params=params,
            path_params={k: v for k, v in found.groupdict().items() if v is not None},
            actor=actor,
            base_url=str(request.base_url).rstrip("/"),
            wants_json=path.endswith(".json") or "json" in accept,
            headers={k.lower(): v for k, v in request.headers.items()},
        )
        result = handler(ctx)
        if isinstance(result, _Answer):
            return result
        return _Answer(200, result)

    def _authenticate(self, request: Request) -> dict[str, Any]:
        key = request.headers.get("api-key")
        if key is None or key != self.api_key:
            raise _forbidden(MSG_INVALID_API_CREDENTIALS)
        username = request.headers.get("api-username")
        user_id = request.headers.get("api-user-id")
        user = None
        if username:
            user = self._find_user(username)
        elif user_id and _strict_int(user_id) is not None:
            user = self._users.get(int(user_id))
        if user is None or not user["active"] or user["suspended"]:
            raise _forbidden(MSG_INVALID_API_CREDENTIALS)
        return user

    def _check_rate_limit(self) -> None:
        """The site-wide admin key limiter: a ring of the last N accepted requests; rejections are not recorded."""
        limit = self.rate_limit_per_minute
        if not limit:
            return
        now = self.clock()
        window = self._admin_window
        if len(window) < limit or now - window[0] >= ADMIN_WINDOW_SECONDS:
            window.append(now)
            while len(window) > limit:
                window.popleft()
            return
        wait = max(1, math.ceil(ADMIN_WINDOW_SECONDS - (now - window[0])))
        self.rate_limited_count += 1
        if self.plain_text_429:
            text = (
                "Slow down, too many requests from this IP address.\n"
                f"Please retry again in {wait} seconds.\n"
                "Error code: ip_10_secs_limit.\n"
            )
            raise _Answer(429, text, {"Retry-After": str(wait), "Discourse-Rate-Limit-Error-Code": "ip_10_secs_limit"},
                          media_type="text/plain; charset=utf-8")  # fmt: skip
        left = _time_left(wait)
        raise _Answer(
            429,
            _error_body([MSG_TOO_MANY.format(left)], "rate_limit", {"wait_seconds": wait, "time_left": left}),
            {"Retry-After": str(wait), "Discourse-Rate-Limit-Error-Code": "admin_api_key_rate_limit"},
        )

    def _require_staff(self, ctx: _Ctx) -> None:
        if not self._is_staff(ctx.actor):
            raise _forbidden()

    def _user_from_params(self, ctx: _Ctx, key: str = "username") -> dict[str, Any]:
        user = self._find_user(ctx.params.get(key))
        if user is None:
            raise _not_found()
        return user

    # ==== serializers ======================================================================================================

    def _avatar(self, user: dict[str, Any]) -> str:
        letter = (user["username"][:1] or "x").lower()
        return f"/letter_avatar_proxy/v4/letter/{quote(letter)}/8e7dd6/{{size}}.png"

    def _basic_user(self, user: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": user["id"],
            "username": user["username"],
            "name": user["name"],
            "avatar_template": self._avatar(user),
        }

    def _flair_fields(self, user: dict[str, Any]) -> dict[str, Any]:
        primary = self._groups.get(user["primary_group_id"]) if user["primary_group_id"] is not None else None
        flair = self._groups.get(user["flair_group_id"]) if user["flair_group_id"] is not None else None
        return {
            "primary_group_name": primary["name"] if primary else None,
            "flair_name": flair["name"] if flair else None,
            "flair_url": (flair["flair_icon"] or (f"/uploads/default/{flair['flair_upload_id']}.png" if flair["flair_upload_id"] else None)) if flair else None,
            "flair_bg_color": flair["flair_bg_color"] if flair else None,
            "flair_color": flair["flair_color"] if flair else None,
            "flair_group_id": user["flair_group_id"],
        }  # fmt: skip

    def _admin_list_user(self, user: dict[str, Any], emails: bool) -> dict[str, Any]:
        data: dict[str, Any] = {**self._basic_user(user)}
        if emails:
            data["email"] = user["email"]
            data["secondary_emails"] = list(user["secondary_emails"])
        data.update(
            {
                "active": user["active"],
                "admin": user["admin"],
                "moderator": user["moderator"],
                "last_seen_at": user["last_seen_at"],
                "last_emailed_at": None,
                "created_at": user["created_at"],
                "last_seen_age": None,
                "last_emailed_age": None,
                "created_at_age": 0.0,
                "trust_level": user["trust_level"],
                "manual_locked_trust_level": None,
                "title": user["title"],
                "time_read": 0,
                "staged": user["staged"],
                "days_visited": 0,
                "posts_read_count": 0,
                "topics_entered": 0,
                "post_count": self._post_count(user),
                "can_be_deleted": user["id"] > 0 and not user["admin"],
            }
        )
        if user["suspended"]:
            data["suspended_at"] = user["created_at"]
            data["suspended_till"] = "3000-01-01T00:00:00.000Z"
        if user["silenced"]:
            data["silenced_till"] = "3000-01-01T00:00:00.000Z"
        return data

    def _post_count(self, user: dict[str, Any]) -> int:
        return sum(1 for p in self._posts.values() if p["user_id"] == user["id"] and p["deleted_at"] is None)

    def _user_fields_of(self, user: dict[str, Any]) -> dict[str, Any]:
        return {str(fid): user["user_fields"].get(str(fid)) for fid in sorted(self._user_fields)}

    def _user_json(self, user: dict[str, Any], viewer: dict[str, Any]) -> dict[str, Any]:
        data = {
            **self._basic_user(user),
            "last_posted_at": None,
            "last_seen_at": user["last_seen_at"],
            "created_at": user["created_at"],
            "ignored": False,
            "muted": False,
            "can_ignore_user": False,
            "can_mute_user": False,
            "can_send_private_messages": True,
            "can_send_private_message_to_user": True,
            "trust_level": user["trust_level"],
            "moderator": user["moderator"],
            "admin": user["admin"],
            "title": user["title"],
            "badge_count": sum(1 for ub in self._user_badges.values() if ub["user_id"] == user["id"]),
            "user_fields": self._user_fields_of(user),
            "custom_fields": {},
            "time_read": 0,
            "recent_time_read": 0,
            "primary_group_id": user["primary_group_id"],
            **self._flair_fields(user),
            "featured_topic": None,
            "staged": user["staged"],
            "can_edit": self._is_staff(viewer) or viewer["id"] == user["id"],
            "can_edit_username": self._is_staff(viewer),
            "can_edit_email": self._is_staff(viewer),
            "can_edit_name": True,
            "post_count": self._post_count(user),
            "topic_count": sum(
                1 for t in self._topics.values() if t["user_id"] == user["id"] and t["deleted_at"] is None
            ),
            "groups": [self._basic_group(g, viewer) for g in self._groups_of(user, automatic=True)],
        }
        return data

    def _badge_json(self, badge: dict[str, Any], admin: bool = True) -> dict[str, Any]:
        data = {
            "id": badge["id"],
            "name": badge["name"],
            "description": badge["description"],
            "grant_count": badge["grant_count"],
            "allow_title": badge["allow_title"],
            "multiple_grant": badge["multiple_grant"],
            "icon": badge["icon"],
            "image_url": None,
            "listable": badge["listable"],
            "enabled": badge["enabled"],
            "badge_grouping_id": badge["badge_grouping_id"],
            "system": badge["system"],
            "slug": _slug(badge["name"], "-"),
            "manually_grantable": not badge["system"] and not badge["query"],
            "badge_type_id": badge["badge_type_id"],
        }
        if admin:
            data.update(
                {
                    "long_description": badge["long_description"],
                    "query": badge["query"],
                    "trigger": badge["trigger"],
                    "target_posts": badge["target_posts"],
                    "auto_revoke": badge["auto_revoke"],
                    "show_posts": badge["show_posts"],
                    "i18n_name": None,
                    "image_upload_id": badge["image_upload_id"],
                    "show_in_post_header": badge["show_in_post_header"],
                }
            )
        return data

    def _badge_types_for(self, badges: list[dict[str, Any]]) -> list[dict[str, Any]]:
        wanted = {b["badge_type_id"] for b in badges}
        return [dict(t) for t in BADGE_TYPES if t["id"] in wanted]

    def _grouping_position(self, badge: dict[str, Any]) -> int:
        return next((g["position"] for g in BADGE_GROUPINGS if g["id"] == badge["badge_grouping_id"]), 14)

    def _detailed_user_badge(self, grant: dict[str, Any], viewer: dict[str, Any], count: int | None = None) -> dict:
        badge = self._badges[grant["badge_id"]]
        data: dict[str, Any] = {"id": grant["id"], "granted_at": grant["granted_at"], "created_at": grant["created_at"]}
        if count is not None:
            data["count"] = count
        data.update(
            {
                "grouping_position": self._grouping_position(badge),
                "is_favorite": None,
                "can_favorite": viewer["id"] == grant["user_id"] and not 1 <= badge["id"] <= 4,
                "badge_id": badge["id"],
                "granted_by_id": grant["granted_by_id"],
            }
        )
        post = self._posts.get(grant["post_id"]) if grant["post_id"] is not None else None
        if post is not None:
            topic = self._topics.get(post["topic_id"])
            data["post_number"] = post["post_number"]
            data["topic_id"] = post["topic_id"]
            data["topic_title"] = topic["title"] if topic else None
        return data

    def _granted_by_json(self, user: dict[str, Any]) -> dict[str, Any]:
        return {
            **self._basic_user(user),
            "flair_name": self._flair_fields(user)["flair_name"],
            "admin": user["admin"],
            "moderator": user["moderator"],
            "trust_level": user["trust_level"],
            "primary_group_name": self._flair_fields(user)["primary_group_name"],
        }

    def _basic_group(self, group: dict[str, Any], viewer: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": group["id"],
            "automatic": group["automatic"],
            "name": group["name"],
            "user_count": len(self._member_ids(group)),
            "mentionable_level": group["mentionable_level"],
            "messageable_level": group["messageable_level"],
            "visibility_level": group["visibility_level"],
            "primary_group": group["primary_group"],
            "title": group["title"],
            "grant_trust_level": group["grant_trust_level"],
            "incoming_email": group["incoming_email"],
            "has_messages": False,
            "flair_url": group["flair_icon"] or (f"/uploads/default/{group['flair_upload_id']}.png" if group["flair_upload_id"] else None),
            "flair_icon": group["flair_icon"],
            "flair_bg_color": group["flair_bg_color"],
            "flair_color": group["flair_color"],
            "bio_raw": group["bio_raw"],
            "bio_cooked": _cook(group["bio_raw"]) if group["bio_raw"] else None,
            "bio_excerpt": group["bio_raw"][:300] if group["bio_raw"] else None,
            "public_admission": group["public_admission"],
            "public_exit": group["public_exit"],
            "allow_membership_requests": group["allow_membership_requests"],
            "full_name": group["full_name"],
            "default_notification_level": group["default_notification_level"],
            "membership_request_template": group["membership_request_template"],
            "members_visibility_level": group["members_visibility_level"],
            "can_see_members": True,
            "can_admin_group": bool(viewer["admin"]),
            "can_edit_group": bool(viewer["admin"]) and not group["automatic"],
            "publish_read_state": group["publish_read_state"],
        }  # fmt: skip

    def _group_show_json(self, group: dict[str, Any], viewer: dict[str, Any]) -> dict[str, Any]:
        data = self._basic_group(group, viewer)
        data.update(
            {
                "is_group_user": self._is_member(group, viewer),
                "is_group_owner_display": bool(group["_members"].get(viewer["id"], {}).get("owner")),
                "mentionable": group["mentionable_level"] > 0,
                "messageable": group["messageable_level"] > 0,
                "automatic_membership_email_domains": group["automatic_membership_email_domains"],
                "smtp_updated_at": None,
                "smtp_updated_by": None,
                "smtp_enabled": False,
                "smtp_server": None,
                "smtp_port": None,
                "smtp_ssl_mode": None,
                "email_username": None,
                "email_from_alias": None,
                "email_password": None,
                "message_count": 0,
                "allow_unknown_sender_topic_replies": False,
                "associated_group_ids": [],
                "watching_category_ids": [],
                "tracking_category_ids": [],
                "watching_first_post_category_ids": [],
                "regular_category_ids": [],
                "muted_category_ids": [],
                "watching_tags": [],
                "watching_first_post_tags": [],
                "tracking_tags": [],
                "regular_tags": [],
                "muted_tags": [],
            }
        )
        return data

    def _category_json(self, category: dict[str, Any]) -> dict[str, Any]:
        topics = [t for t in self._topics.values() if t["category_id"] == category["id"] and t["deleted_at"] is None]
        return {
            "id": category["id"],
            "name": category["name"],
            "color": category["color"],
            "text_color": category["text_color"],
            "style_type": "square",
            "emoji": None,
            "icon": None,
            "slug": category["slug"],
            "topic_count": len(topics),
            "post_count": sum(1 for p in self._posts.values() if p["deleted_at"] is None and p["topic_id"] in {t["id"] for t in topics}),
            "position": category["position"],
            "description": category["description"],
            "description_text": category["description"],
            "description_excerpt": category["description"],
            "topic_url": f"/t/about-the-{category['slug']}-category",
            "read_restricted": category["read_restricted"],
            "permission": 1,
            "notification_level": 1,
            "can_edit": True,
            "topic_template": None,
            "has_children": any(c["parent_category_id"] == category["id"] for c in self._categories.values()),
            "subcategory_count": sum(1 for c in self._categories.values() if c["parent_category_id"] == category["id"]),
            "parent_category_id": category["parent_category_id"],
            "sort_order": None,
            "sort_ascending": None,
            "show_subcategory_list": False,
            "num_featured_topics": 3,
            "default_view": None,
            "subcategory_list_style": "rows_with_featured_topics",
            "default_top_period": "all",
            "default_list_filter": "all",
            "minimum_required_tags": 0,
            "navigate_to_first_post_after_read": False,
            "is_uncategorized": category["id"] == 1,
            "subcategory_ids": [c["id"] for c in self._categories.values() if c["parent_category_id"] == category["id"]],
        }  # fmt: skip

    def _live_posts(self, topic: dict[str, Any]) -> list[dict[str, Any]]:
        posts = [p for p in self._posts.values() if p["topic_id"] == topic["id"] and p["deleted_at"] is None]
        return sorted(posts, key=lambda p: p["post_number"])

    def _post_json(self, post: dict[str, Any], viewer: dict[str, Any], add_raw: bool = False) -> dict[str, Any]:
        author = self._users.get(post["user_id"]) or self._users[-1]
        topic = self._topics[post["topic_id"]]
        staff = self._is_staff(viewer)
        data = {
            "id": post["id"],
            "name": author["name"],
            "username": author["username"],
            "avatar_template": self._avatar(author),
            "created_at": post["created_at"],
            "cooked": post["cooked"],
            "post_number": post["post_number"],
            "post_type": post["post_type"],
            "posts_count": len(self._live_posts(topic)),
            "updated_at": post["updated_at"],
            "reply_count": 0,
            "reply_to_post_number": post["reply_to_post_number"],
            "quote_count": 0,
            "incoming_link_count": 0,
            "reads": 1,
            "readers_count": 0,
            "score": 0,
            "yours": author["id"] == viewer["id"],
            "topic_id": topic["id"],
            "topic_slug": topic["slug"],
            "display_username": author["name"],
            **self._flair_fields(author),
            "version": post["version"],
            "can_edit": staff or author["id"] == viewer["id"],
            "can_delete": staff and post["deleted_at"] is None,
            "can_recover": staff and post["deleted_at"] is not None,
            "can_see_hidden_post": staff,
            "can_wiki": staff,
            "user_title": author["title"],
            "bookmarked": False,
            "actions_summary": [],
            "moderator": author["moderator"],
            "admin": author["admin"],
            "staff": self._is_staff(author),
            "user_id": author["id"],
            "hidden": False,
            "trust_level": author["trust_level"],
            "deleted_at": post["deleted_at"],
            "user_deleted": post["user_deleted"],
            "edit_reason": post["edit_reason"],
            "can_view_edit_history": True,
            "wiki": False,
            "reviewable_id": None,
            "reviewable_score_count": 0,
            "reviewable_score_pending_count": 0,
            "post_url": f"/t/{topic['slug']}/{topic['id']}/{post['post_number']}",
            "mentioned_users": [],
        }
        if add_raw:
            data["raw"] = post["raw"]
        return data

    # ==== users ============================================================================================================

    def _users_list(self, ctx: _Ctx) -> Any:
        """``Admin::UsersController#index`` + ``AdminUserIndexQuery``."""
        p = ctx.params
        flag = ctx.path_params["flag"]
        users = list(self._users.values())
        if flag in TRUST_LEVELS:
            users = [u for u in users if u["trust_level"] == TRUST_LEVELS[flag]]
        classification = {
            "staff": lambda u: u["admin"] or u["moderator"],
            "admins": lambda u: u["admin"],
            "moderators": lambda u: u["moderator"],
            "silenced": lambda u: u["silenced"],
            "suspended": lambda u: u["suspended"],
            "pending": lambda u: not u["suspended"] and not u["approved"] and u["active"],
            "staged": lambda u: u["staged"],
        }.get(flag)
        if classification is not None:
            users = [u for u in users if classification(u)]
        if p.get("activation") == "activated":
            users = [u for u in users if u["active"]]
        elif p.get("activation") == "not_activated":
            users = [u for u in users if not u["active"]]
        if not _blank(p.get("exclude")):
            users = [u for u in users if str(u["id"]) != str(p["exclude"])]
        if not _blank(p.get("email")):
            wanted = str(p["email"]).lower()  # exact, primary email only (user_emails.email = downcased param)
            users = [u for u in users if u["email"] == wanted]
        elif not _blank(p.get("filter")):
            terms = [t for t in re.split(r"[,\s]+", str(p["filter"])) if t]
            if len(terms) > 100:
                raise _invalid_params("filter")
            users = [u for u in users if self._matches_filter(u, terms)]
        users = self._order_users(users, flag, p)
        page = max(_ruby_int(p.get("page")) - 1, 0)
        users = users[page * USERS_PAGE_SIZE : (page + 1) * USERS_PAGE_SIZE]
        emails = p.get("show_emails") == "true"
        if emails:
            self.staff_actions.append({"action": "check_email", "acting_user": ctx.actor["username"],
                                       "context": ctx.path, "user_ids": [u["id"] for u in users]})  # fmt: skip
        return [self._admin_list_user(u, emails) for u in users]

    def _matches_filter(self, user: dict[str, Any], terms: list[str]) -> bool:
        for term in (t.lower() for t in terms):
            if term in user["username"].lower() or term in user["email"]:
                return True
            if (
                len(terms) > 1
                and re.fullmatch(r".+@.+", term)
                and (term == user["email"] or term in user["secondary_emails"])
            ):
                return True
            if len(terms) == 1 and re.fullmatch(r".+@.+", term) and term in user["secondary_emails"]:
                return True
        return False

    def _order_users(self, users: list[dict[str, Any]], flag: str, p: dict[str, Any]) -> list[dict[str, Any]]:
        order = p.get("order")
        descending = _blank(p.get("asc"))
        columns: dict[str, Callable[[dict[str, Any]], Any]] = {
            "created": lambda u: u["_created"],
            "last_emailed": lambda u: 0,
            "seen": lambda u: u["last_seen_at"] or "1970-01-01",
            "username": lambda u: u["username"],
            "email": lambda u: u["email"],
            "trust_level": lambda u: u["trust_level"],
            "days_visited": lambda u: 0,
            "posts_read": lambda u: 0,
            "topics_viewed": lambda u: 0,
            "posts": lambda u: self._post_count(u),
            "read_time": lambda u: 0,
        }
        by_id = sorted(users, key=lambda u: u["id"])
        if not _blank(order):
            column = columns.get(re.sub(r" (asc|desc)\Z", "", str(order).lower()))
            if column is None:
                return by_id
            return sorted(by_id, key=column, reverse=descending)
        by_name = sorted(by_id, key=lambda u: u["username"].lower())
        if flag == "active":  # users.last_seen_at DESC NULLS LAST, users.username
            seen = sorted((u for u in by_name if u["last_seen_at"]), key=lambda u: u["last_seen_at"], reverse=True)
            return seen + [u for u in by_name if not u["last_seen_at"]]
        return sorted(by_name, key=lambda u: u["_created"], reverse=True)  # users.created_at DESC, users.username

    def _admin_user_show(self, ctx: _Ctx) -> Any:
        user = self._users.get(int(ctx.path_params["id"]))
        if user is None:
            raise _not_found()
        data = self._admin_list_user(user, emails=False)
        data.update(
            {
                "primary_group_id": user["primary_group_id"],
                "badge_count": sum(1 for ub in self._user_badges.values() if ub["user_id"] == user["id"]),
                "groups": [self._basic_group(g, ctx.actor) for g in self._groups_of(user, automatic=True)],
                "external_ids": dict(user["external_ids"]),
                "single_sign_on_record": None,
                "can_be_deleted": user["id"] > 0 and not user["admin"],
                "approved_by": None,
            }
        )
        return data

    def _user_emails(self, ctx: _Ctx) -> Any:
        user = self._user_from_params(ctx)
        if not self._is_staff(ctx.actor) and ctx.actor["id"] != user["id"]:
            raise _forbidden()
        self.staff_actions.append(
            {"action": "check_email", "acting_user": ctx.actor["username"], "user_ids": [user["id"]]}
        )
        return {"email": user["email"], "secondary_emails": list(user["secondary_emails"]), "unconfirmed_emails": [],
                "associated_accounts": []}  # fmt: skip

    def _user_show(self, ctx: _Ctx) -> Any:
        user = self._user_from_params(ctx)
        grants = sorted(
            (ub for ub in self._user_badges.values() if ub["user_id"] == user["id"]), key=lambda ub: ub["id"]
        )
        result: dict[str, Any] = {"user_badges": [self._detailed_user_badge(ub, ctx.actor) for ub in grants[:3]]}
        if grants:
            badges = [self._badges[ub["badge_id"]] for ub in grants[:3]]
            result["badges"] = [self._badge_json(b, admin=False) for b in {b["id"]: b for b in badges}.values()]
        result["user"] = self._user_json(user, ctx.actor)
        return result

    def _user_update(self, ctx: _Ctx) -> Any:
        """``UsersController#update`` through ``UserUpdater``: invalid primary/flair/title choices are ignored."""
        user = self._user_from_params(ctx)
        actor = ctx.actor
        if not self._is_staff(actor) and actor["id"] != user["id"]:
            raise _forbidden()
        p = ctx.params
        if "name" in p:
            user["name"] = p["name"]
        fields = p.get("user_fields")
        if isinstance(fields, dict) and fields:
            values: dict[str, Any] = {}
            for field_id, definition in sorted(self._user_fields.items()):
                if not definition["editable"] and not self._is_staff(actor):
                    continue
                if str(field_id) not in fields:
                    continue
                value = fields[str(field_id)]
                value = None if value == "false" else value
                if isinstance(value, str):
                    value = value[:USER_FIELD_MAX_LENGTH]
                if _blank(value) and definition["required"]:
                    raise _json_error(MSG_MISSING_USER_FIELD)
                values[str(field_id)] = value
            user["user_fields"].update(values)
        if "title" in p and p["title"] != user["title"] and self._is_staff(actor):
            user["title"] = p["title"] or None
        if not _blank(p.get("primary_group_id")):
            group = self._groups.get(_ruby_int(p["primary_group_id"]))
            if group is not None and not group["automatic"] and self._is_member(group, user):
                self._set_primary_group(user, group["id"])
        if "flair_group_id" in p:
            if _blank(p["flair_group_id"]):
                user["flair_group_id"] = None
            else:
                group = self._groups.get(_ruby_int(p["flair_group_id"]))
                if (
                    group is not None
                    and self._is_member(group, user)
                    and (group["flair_icon"] or group["flair_upload_id"])
                ):
                    user["flair_group_id"] = group["id"]
        external = p.get("external_ids")
        if isinstance(external, dict) and actor["admin"]:
            for provider, uid in external.items():
                if _blank(uid):
                    user["external_ids"].pop(provider, None)
                else:
                    user["external_ids"][provider] = str(uid)
        return {"success": "OK", "user": self._user_json(user, actor)}

    # ==== badges ===========================================================================================================

    def _badges_index(self, ctx: _Ctx) -> Any:
        position = {g["id"]: g["position"] for g in BADGE_GROUPINGS}
        badges = sorted(
            self._badges.values(),
            key=lambda b: (position.get(b["badge_grouping_id"], 99), b["badge_type_id"], b["name"]),
        )
        return {
            "badges": [self._badge_json(b) for b in badges],
            "badge_types": [dict(t) for t in BADGE_TYPES],
            "badge_groupings": [dict(g) for g in BADGE_GROUPINGS],
            "admin_badges": {
                "protected_system_fields": ["name", "badge_type_id", "multiple_grant", "target_posts", "show_posts",
                                            "query", "trigger", "auto_revoke", "listable"],
                "triggers": {"user_change": 8, "none": 0, "post_revision": 2, "trust_level_change": 4, "post_action": 1},
                "badge_ids": [b["id"] for b in badges],
                "badge_grouping_ids": [g["id"] for g in BADGE_GROUPINGS],
                "badge_type_ids": [t["id"] for t in BADGE_TYPES],
            },
        }  # fmt: skip

    def _apply_badge_params(self, badge: dict[str, Any], p: dict[str, Any], new: bool) -> list[str]:
        """``update_badge_from_params``: each permitted key is assigned *if truthy in Ruby* (JSON ``false`` is skipped)."""
        candidate = dict(badge)
        for key in BADGE_WRITABLE:
            if key not in p or p[key] is None or p[key] is False:
                continue
            value = p[key]
            if key in BADGE_BOOLEANS:
                cast = _cast_bool(value)
                candidate[key] = bool(cast) if cast is not None else candidate[key]
            elif key in {"badge_type_id", "badge_grouping_id", "image_upload_id", "trigger"}:
                candidate[key] = _cast_int(value)
            else:
                candidate[key] = str(value)
        errors = []
        if _blank(candidate["name"]):
            errors.append("Name can't be blank")
        elif any(b["name"] == candidate["name"] and b["id"] != badge["id"] for b in self._badges.values()):
            errors.append("Name has already been taken")
        if candidate["badge_type_id"] not in {t["id"] for t in BADGE_TYPES}:
            errors.append("Badge type can't be blank")
        if not errors:
            badge.update(candidate)
        return errors

    def _badges_create(self, ctx: _Ctx) -> Any:
        badge = self._new_badge(0, "", 0)
        badge["badge_type_id"] = None
        errors = self._apply_badge_params(badge, ctx.params, new=True)
        if errors:
            raise _json_error(errors)  # render_json_error(errors): 422, no error_type
        badge["id"] = self._next_badge_id
        self._next_badge_id += 1
        self._badges[badge["id"]] = badge
        self.staff_actions.append(
            {"action": "create_badge", "acting_user": ctx.actor["username"], "badge_id": badge["id"]}
        )
        return {"badge_types": self._badge_types_for([badge]), "badge": self._badge_json(badge)}

    def _badges_update(self, ctx: _Ctx) -> Any:
        badge = self._badges.get(int(ctx.path_params["id"]))
        if badge is None:
            raise _not_found()
        old_name = badge["name"]
        errors = self._apply_badge_params(badge, ctx.params, new=False)
        if errors:
            raise _json_error(errors)
        if badge["name"] != old_name:  # Jobs::BulkUserTitleUpdate
            for user in self._users.values():
                if user["title"] == old_name:
                    user["title"] = badge["name"]
        return {"badge_types": self._badge_types_for([badge]), "badge": self._badge_json(badge)}

    def _badges_destroy(self, ctx: _Ctx) -> Any:
        badge = self._badges.get(int(ctx.path_params["id"]))
        if badge is None:
            raise _not_found()
        self._destroy_badge(badge)
        return _Answer(200, None)

    def _badge_from_params(self, p: dict[str, Any]) -> dict[str, Any]:
        """``fetch_badge_from_params``: by name when ``badge_name`` is given, else ``badge_id`` (required); enabled only."""
        if p.get("badge_name") is None:
            _require(p, "badge_id")
            badge = self._badges.get(_ruby_int(p["badge_id"]))
        else:
            badge = next((b for b in self._badges.values() if b["name"] == p["badge_name"]), None)
        if badge is None or not badge["enabled"]:
            raise _not_found()
        return badge

    def _reason_post_id(self, ctx: _Ctx, reason: str) -> int | None:
        """``is_badge_reason_valid?`` + ``Discourse.route_for``: a topic or post URL on this forum."""
        match = re.match(r"\A(?:https?://(?P<host>[^/]+))?(?P<path>/[^?#]*)", reason.strip())
        own_host = ctx.headers.get("host", "")
        if not match or (match.group("host") and match.group("host") != own_host):
            raise _Answer(400, {"failed": "FAILED", "message": MSG_BAD_BADGE_REASON})
        path = match.group("path")
        topic_match = re.fullmatch(r"/t/(?:[^/]+/)?(\d+)(?:/(\d+))?(?:\.json)?/?", path)
        if topic_match:
            topic_id, number = int(topic_match.group(1)), int(topic_match.group(2) or 1)
            post = next(
                (p for p in self._posts.values() if p["topic_id"] == topic_id and p["post_number"] == number), None
            )
            return post["id"] if post else None
        if re.fullmatch(r"/(?:p|posts)/\d+(?:\.json)?/?", path):
            return None  # a posts route is a valid reason but does not set post_id
        raise _Answer(400, {"failed": "FAILED", "message": MSG_BAD_BADGE_REASON})

    def _user_badges_create(self, ctx: _Ctx) -> Any:
        p = ctx.params
        _require(p, "username")
        user = self._user_from_params(ctx)
        if not self._is_staff(ctx.actor):
            raise _Answer(403, {"failed": "FAILED"})
        badge = self._badge_from_params(p)
        post_id = self._reason_post_id(ctx, str(p["reason"])) if not _blank(p.get("reason")) else None
        grant = self._grant(badge, user, ctx.actor, post_id)
        granted_by = self._users.get(grant["granted_by_id"])
        return {
            "badges": [self._badge_json(badge, admin=False)],
            "badge_types": self._badge_types_for([badge]),
            "granted_bies": [self._granted_by_json(granted_by)] if granted_by else [],
            "user_badge": self._detailed_user_badge(grant, ctx.actor),
        }

    def _user_badges_destroy(self, ctx: _Ctx) -> Any:
        grant_id = _strict_int(ctx.path_params["id"])
        grant = self._user_badges.get(grant_id) if grant_id is not None else None
        if grant is None:
            raise _not_found()
        if not self._is_staff(ctx.actor):
            raise _Answer(403, {"failed": "FAILED"})
        self._revoke(grant)
        self.staff_actions.append(
            {"action": "revoke_badge", "acting_user": ctx.actor["username"], "user_badge_id": grant["id"]}
        )
        return {"success": "OK"}

    def _user_badges_username(self, ctx: _Ctx) -> Any:
        user = self._user_from_params(ctx)
        grants = sorted(
            (ub for ub in self._user_badges.values() if ub["user_id"] == user["id"]), key=lambda ub: ub["id"]
        )
        if ctx.params.get("grouped") not in (None, "", False, "false"):
            firsts: dict[int, dict[str, Any]] = {}
            counts: dict[int, int] = {}
            for grant in grants:
                firsts.setdefault(grant["badge_id"], grant)
                counts[grant["badge_id"]] = counts.get(grant["badge_id"], 0) + 1
            items = [self._detailed_user_badge(g, ctx.actor, counts[bid]) for bid, g in firsts.items()]
        else:
            items = [self._detailed_user_badge(g, ctx.actor) for g in grants]
        badges = list({g["badge_id"]: self._badges[g["badge_id"]] for g in grants}.values())
        givers = list({g["granted_by_id"]: self._users.get(g["granted_by_id"]) for g in grants}.values())
        return {
            "badges": [self._badge_json(b, admin=False) for b in badges],
            "badge_types": self._badge_types_for(badges),
            "granted_bies": [self._granted_by_json(u) for u in givers if u],
            "user_badges": items,
        }

    def _user_badges_index(self, ctx: _Ctx) -> Any:
        """``UserBadgesController#index``: newest grants first, ``limit`` capped at 50, ``grant_count`` only per user."""
        p = ctx.params
        ids: list[int] | None = None
        if "badge_ids" in p:
            raw_ids = p["badge_ids"]
            tokens = raw_ids if isinstance(raw_ids, list) else re.split(r"[,|\s]+", str(raw_ids or ""))
            ids = sorted({n for n in (_strict_int(str(t)) for t in tokens) if n and n > 0}) or None
        elif not _blank(p.get("badge_name")):
            badge = next((b for b in self._badges.values() if b["name"] == p["badge_name"] and b["enabled"]), None)
            if badge is None:
                raise _not_found()
            ids = [badge["id"]]
        elif not _blank(p.get("badge_id")):
            badge = self._badges.get(_ruby_int(p["badge_id"]))
            if badge is None or not badge["enabled"]:
                raise _not_found()
            ids = [badge["id"]]
        if ids is not None:
            grants = [
                ub
                for ub in self._user_badges.values()
                if ub["badge_id"] in ids and self._badges[ub["badge_id"]]["enabled"]
            ]
        else:
            grants = [
                ub
                for ub in self._user_badges.values()
                if self._badges[ub["badge_id"]]["enabled"] and self._badges[ub["badge_id"]]["listable"]
            ]
        if not _blank(p.get("badge_type_id")):
            type_id = _fetch_int(p, "badge_type_id", 0, minimum=1)
            grants = [ub for ub in grants if self._badges[ub["badge_id"]]["badge_type_id"] == type_id]
        grant_count = None
        if p.get("username"):
            user = self._user_from_params(ctx)
            grants = [ub for ub in grants if ub["user_id"] == user["id"]]
            grant_count = len(grants)
        grants.sort(key=lambda ub: (ub["granted_at"], ub["id"]), reverse=True)
        limit = min(_fetch_int(p, "limit", USER_BADGES_DEFAULT_LIMIT, minimum=1), USER_BADGES_MAX_LIMIT)
        offset = _fetch_int(p, "offset", 0)
        page = grants[offset : offset + limit]
        items = []
        for grant in page:
            badge = self._badges[grant["badge_id"]]
            item: dict[str, Any] = {"id": grant["id"], "granted_at": grant["granted_at"]}
            if badge["show_posts"] and grant["post_id"] in self._posts:
                post = self._posts[grant["post_id"]]
                item.update({"post_id": post["id"], "post_number": post["post_number"], "topic_id": post["topic_id"]})
            item.update({"badge_id": badge["id"], "user_id": grant["user_id"], "granted_by_id": grant["granted_by_id"]})
            items.append(item)
        badges = list({g["badge_id"]: self._badges[g["badge_id"]] for g in page}.values())
        people = {g["user_id"] for g in page} | {g["granted_by_id"] for g in page}
        return {
            "badges": [self._badge_json(b, admin=False) for b in badges],
            "badge_types": self._badge_types_for(badges),
            "users": [self._granted_by_json(self._users[uid]) for uid in sorted(people) if uid in self._users],
            "user_badge_info": {"user_badges": items, "grant_count": grant_count, "username": p.get("username")},
        }  # fmt: skip

    # ==== groups ===========================================================================================================

    def _group_name_errors(self, name: Any, exclude_id: int | None) -> list[str]:
        """``Group#name_format_validator`` (``UsernameValidator``) + case-insensitive uniqueness, usernames included."""
        if _blank(name):
            return ["Name can't be blank"]
        name = str(name).strip()
        errors = []
        if len(name) < 3:
            errors.append("Name must be at least 3 characters")
        if len(name) > 20:
            errors.append("Name must be no more than 20 characters")
        if re.search(r"[^\w.-]", name):
            errors.append("Name must only include numbers, letters, dashes, dots, and underscores")
        if not re.match(r"[^\W]", name):
            errors.append("Name must begin with a letter, a number or an underscore")
        if not re.search(r"[^\W_]\Z", name):
            errors.append("Name must end with a letter or a number")
        if re.search(r"[-_.]{2,}", name):
            errors.append("Name must not contain a sequence of 2 or more special chars (.-_)")
        if re.search(r"\.(json|png|jpe?g|gif|js|css|html?|xml|svg)\Z", name, re.I):
            errors.append("Name must not end with a confusing suffix like .json or .png etc.")
        if errors:
            return errors
        taken = any(g["name"].lower() == name.lower() and g["id"] != exclude_id for g in self._groups.values())
        if taken or self._find_user(name) is not None:
            return ["Name has already been taken"]
        return []

    def _group_values(self, raw: dict[str, Any], automatic: bool) -> dict[str, Any]:
        values: dict[str, Any] = {}
        allowed = GROUP_WRITABLE if not automatic else ("bio_raw", "default_notification_level", "messageable_level",
                                                        "mentionable_level", "flair_bg_color", "flair_color",
                                                        "flair_icon", "flair_upload_id", "visibility_level",
                                                        "members_visibility_level")  # fmt: skip
        for key in allowed:
            if key not in raw:
                continue
            value = raw[key]
            if key in GROUP_BOOLEANS:
                values[key] = bool(_cast_bool(value))
            elif key in GROUP_INTEGERS:
                values[key] = _cast_int(value)
            else:
                values[key] = None if value is None or value == "" else str(value)
        if "name" in values and values["name"] is not None:
            values["name"] = values["name"].strip()
        return values

    def _groups_create(self, ctx: _Ctx) -> Any:
        raw = _require(ctx.params, "group")
        if not isinstance(raw, dict):
            raise _Answer(400, {"errors": [MSG_PARAM_MISSING.format("group")]})
        values = self._group_values(raw, automatic=False)
        errors = self._group_name_errors(values.get("name"), None)
        if values.get("grant_trust_level") is not None and not 0 <= values["grant_trust_level"] <= 4:
            errors.append(f"'{values['grant_trust_level']}' is not a valid trust level.")
        if errors:
            raise _json_error(errors)  # render_json_error(group): 422 without error_type
        owners = [self._find_user(n) for n in str(raw.get("owner_usernames") or "").split(",") if n.strip()]
        owners = [o for o in owners if o is not None]
        if values.get("allow_membership_requests") and not owners:
            raise _Answer(422, {"failed": "FAILED", "errors": [MSG_CANT_ALLOW_REQUESTS]})
        group = self._new_group(self._next_group_id, values.pop("name"))
        self._next_group_id += 1
        group.update({k: v for k, v in values.items() if v is not None or k in {"title", "full_name"}})
        self._groups[group["id"]] = group
        for owner in owners:
            self._add_member(group, owner, owner=True)
        for name in str(raw.get("usernames") or "").split(","):
            member = self._find_user(name.strip()) if name.strip() else None
            if member is not None:
                self._add_member(group, member)
        return {"basic_group": self._basic_group(group, ctx.actor)}

    def _groups_destroy(self, ctx: _Ctx) -> Any:
        group = self._groups.get(int(ctx.path_params["id"]))
        if group is None:
            raise _not_found()
        if group["automatic"]:
            raise _json_error(MSG_CANT_MODIFY_AUTOMATIC)
        self._destroy_group(group)
        return {"success": "OK"}

    def _visible_group_names(self, viewer: dict[str, Any]) -> list[str]:
        groups = sorted(self._groups.values(), key=lambda g: g["name"])
        return [g["name"] for g in groups if self._is_staff(viewer) or not g["automatic"] or g["id"] == 2]

    def _groups_show(self, ctx: _Ctx) -> Any:
        group = self._group_by_name(ctx.path_params["name"])
        if group is None:
            raise _not_found()
        return {
            "group": self._group_show_json(group, ctx.actor),
            "extras": {"visible_group_names": self._visible_group_names(ctx.actor)},
        }

    def _groups_show_by_id(self, ctx: _Ctx) -> Any:
        group = self._groups.get(int(ctx.path_params["id"]))
        if group is None:
            raise _not_found()
        return {
            "group": self._group_show_json(group, ctx.actor),
            "extras": {"visible_group_names": self._visible_group_names(ctx.actor)},
        }

    def _group_by_id_param(self, ctx: _Ctx) -> dict[str, Any]:
        group_id = _strict_int(ctx.path_params["id"])
        group = self._groups.get(group_id) if group_id is not None else None
        if group is None:
            raise _not_found()
        return group

    def _groups_update(self, ctx: _Ctx) -> Any:
        """``GroupsController#update``; a changed title or primary flag propagates to members (``Group`` callbacks)."""
        group = self._group_by_id_param(ctx)
        if not ctx.actor["admin"]:
            raise _forbidden()
        raw = _require(ctx.params, "group")
        if not isinstance(raw, dict):
            raise _Answer(400, {"errors": [MSG_PARAM_MISSING.format("group")]})
        values = self._group_values(raw, automatic=group["automatic"])
        if "name" in values and values["name"] != group["name"]:
            errors = self._group_name_errors(values["name"], group["id"])
            if errors:
                raise _json_error(errors)
        old_title, old_primary = group["title"], group["primary_group"]
        group.update(values)
        members = [self._users[uid] for uid in group["_members"] if uid in self._users]
        if group["title"] != old_title:  # Group#update_title
            for user in members:
                if user["title"] in (old_title, "", None) and (user["title"] or "") != (group["title"] or ""):
                    user["title"] = group["title"]
        if group["primary_group"] != old_primary:  # Group#update_primary_group
            for user in members:
                if group["primary_group"]:
                    user["primary_group_id"] = group["id"]
                    if user["flair_group_id"] is None:
                        user["flair_group_id"] = group["id"]
                else:
                    if user["primary_group_id"] == group["id"]:
                        user["primary_group_id"] = None
                    if user["flair_group_id"] == group["id"]:
                        user["flair_group_id"] = None
        return {"success": "OK"}

    def _users_from_params(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        """``GroupsController#users_from_params``: unknown names are dropped; none resolving is 400."""

        def split(value: Any) -> list[str]:
            items = value if isinstance(value, list) else str(value).split(",")
            return [str(item).strip() for item in items if str(item).strip()]

        ordered = sorted(self._users.values(), key=lambda u: u["id"])
        if not _blank(p.get("usernames")):
            wanted = {n.lower() for n in split(p["usernames"])}
            users = [u for u in ordered if u["username"].lower() in wanted]
            key = "usernames"
        elif not _blank(p.get("user_id")):
            users = [u for u in ordered if u["id"] == _ruby_int(p["user_id"])]
            key = "user_id"
        elif not _blank(p.get("user_ids")):
            wanted_ids = {_ruby_int(i) for i in split(p["user_ids"])}
            users = [u for u in ordered if u["id"] in wanted_ids]
            key = "user_ids"
        elif not _blank(p.get("user_emails")):
            wanted = {e.lower() for e in split(p["user_emails"])}
            users = [u for u in ordered if u["email"] in wanted or wanted & set(u["secondary_emails"])]
            key = "user_emails"
        else:
            return []
        if not users:
            raise _invalid_params(key)
        return users

    def _groups_add_members(self, ctx: _Ctx) -> Any:
        group = self._group_by_id_param(ctx)
        if not self._is_staff(ctx.actor) or group["automatic"]:
            raise _forbidden()  # guardian.ensure_can_edit!(group)
        p = ctx.params
        users = self._users_from_params(p)
        emails: list[str] = []
        if not _blank(p.get("emails")):
            for email in str(p["emails"]).split(","):
                existing = self._user_by_primary_email(email) if email.strip() else None
                if existing is not None:
                    users.append(existing)
                elif email.strip():
                    emails.append(email.strip())
        if not users and not emails:
            raise _invalid_params(MSG_USERNAMES_OR_EMAILS)
        if len(users) > ADD_MEMBERS_LIMIT:
            raise _json_error(f"Maximum {ADD_MEMBERS_LIMIT} users can be added at once")
        already = sorted({u["username"] for u in users if self._is_member(group, u)})
        distinct = list({u["id"]: u for u in users}.values())
        if already and len(already) == len(users) and not emails:
            if len(already) == 1:
                message = f"'{already[0]}' is already a member of this group."
            else:
                message = "The following users are already members of this group: " + ", ".join(already)
            raise _json_error(message)
        for user in distinct:
            self._add_member(group, user)
        for email in emails:  # Invite.generate: a real forum emails an invitation
            self.invites.append({"email": email, "group_ids": [group["id"]], "invited_by": ctx.actor["username"]})
        return {"success": "OK", "usernames": [u["username"] for u in distinct], "emails": emails}

    def _groups_remove_members(self, ctx: _Ctx) -> Any:
        group = self._group_by_id_param(ctx)
        if not self._is_staff(ctx.actor) or group["automatic"]:
            raise _forbidden()
        p = dict(ctx.params)
        if not _blank(p.get("username")):
            p["usernames"] = p["username"]
        if not _blank(p.get("user_email")):
            p["user_emails"] = p["user_email"]
        users = self._users_from_params(p)
        if not users:
            raise _invalid_params(MSG_REMOVE_NEEDS_USERS)
        removed, skipped = [], []
        for user in users:
            if self._remove_member(group, user):
                removed.append(user["username"])
            else:
                skipped.append(user["username"])
        return {"success": "OK", "usernames": removed, "skipped_usernames": skipped}

    def _groups_members(self, ctx: _Ctx) -> Any:
        """``GroupsController#members``: owners first, then ``username_lower`` DESC unless ``asc``; total before filter."""
        group = self._group_by_name(ctx.path_params["name"])
        if group is None:
            raise _not_found()
        p = ctx.params
        limit = _fetch_int(p, "limit", MEMBERS_DEFAULT_LIMIT, maximum=MEMBERS_MAX_LIMIT)
        offset = _ruby_int(p.get("offset"))
        if offset < 0:
            raise _invalid_params("offset")
        users = [self._users[uid] for uid in self._member_ids(group) if uid in self._users and uid > 0]
        total = len(users)
        if not _blank(p.get("filter")):
            users = self._filter_by_username_or_email(users, str(p["filter"]), admin=bool(ctx.actor["admin"]))
        descending = _blank(p.get("asc"))
        meta_of = lambda u: group["_members"].get(u["id"], {"added_at": u["created_at"], "owner": False})  # noqa: E731
        users.sort(key=lambda u: u["username"].lower(), reverse=descending)
        order = p.get("order")
        if order == "added_at":
            users.sort(key=lambda u: meta_of(u)["added_at"], reverse=descending)
        users.sort(key=lambda u: not meta_of(u)["owner"])

        def member_json(user: dict[str, Any]) -> dict[str, Any]:
            return {**self._basic_user(user), "title": user["title"], "last_posted_at": None,
                    "last_seen_at": user["last_seen_at"], "added_at": meta_of(user)["added_at"], "timezone": "UTC"}  # fmt: skip

        return {
            "members": [member_json(u) for u in users[offset : offset + limit]],
            "owners": [member_json(u) for u in users if meta_of(u)["owner"]],
            "meta": {"total": total, "limit": limit, "offset": offset},
        }

    def _filter_by_username_or_email(
        self, users: list[dict[str, Any]], filter_: str, admin: bool
    ) -> list[dict[str, Any]]:
        terms = [t.strip().lower() for t in filter_.split(",")] if "," in filter_ else None
        if terms is None:
            term = filter_.lower()
            if admin and re.fullmatch(r".+@.+", term):
                exact = [u for u in users if u["email"] == term or term in u["secondary_emails"]]
                if exact:
                    return exact
            return [u for u in users if term in u["username"].lower() or (admin and term in u["email"])]
        return [
            u for u in users if any(t and (t in u["username"].lower() or (admin and t in u["email"])) for t in terms)
        ]

    # ==== categories =======================================================================================================

    def _categories_index(self, ctx: _Ctx) -> Any:
        categories = sorted(self._categories.values(), key=lambda c: (c["position"], c["id"]))
        shown = [
            c for c in categories
            if c["parent_category_id"] is None and (c["id"] != 1 or self.allow_uncategorized_topics)
            and (not c["read_restricted"] or self._is_staff(ctx.actor))
        ]  # fmt: skip
        return {"category_list": {"can_create_category": bool(ctx.actor["admin"]), "can_create_topic": True,
                                  "categories": [self._category_json(c) for c in shown]}}  # fmt: skip

    def _categories_create(self, ctx: _Ctx) -> Any:
        if not ctx.actor["admin"]:
            raise _forbidden()
        p = ctx.params
        name = str(_require(p, "name")).strip()
        parent = _cast_int(p.get("parent_category_id"))
        errors = []
        if any(
            c["name"].lower() == name.lower() and c["parent_category_id"] == parent for c in self._categories.values()
        ):
            errors.append("Category Name has already been taken")
        slug = str(p.get("slug") or "").strip() or _slug(name, "")
        if slug and any(c["slug"] == slug and c["parent_category_id"] == parent for c in self._categories.values()):
            errors.append("Slug is already in use")
        if errors:
            raise _json_error(errors)
        category_id = self._next_category_id
        self._next_category_id += 1
        category = self._new_category(category_id, name, slug or f"{category_id}-category",
                                      str(p.get("color") or "0088CC"), str(p.get("text_color") or "FFFFFF"),
                                      parent_category_id=parent)  # fmt: skip
        self._categories[category_id] = category
        return {"category": self._category_json(category)}

    # ==== posts and topics =================================================================================================

    def _find_category(self, value: Any) -> dict[str, Any] | None:
        if _blank(value):
            return None
        number = _strict_int(value)
        if number is not None:
            return self._categories.get(number)
        return next((c for c in self._categories.values() if c["name"].lower() == str(value).lower()), None)

    def _title_errors(self, title: Any, exclude_topic_id: int | None) -> list[str]:
        if _blank(title):
            return ["Title can't be blank"]
        title = str(title).strip()
        if len(title) < self.min_topic_title_length:
            return [f"Title is too short (minimum is {self.min_topic_title_length} characters)"]
        if len(title) > self.max_topic_title_length:
            return [f"Title is too long (maximum is {self.max_topic_title_length} characters)"]
        if not self.allow_duplicate_topic_titles:
            for topic in self._topics.values():
                if (
                    topic["id"] != exclude_topic_id
                    and topic["deleted_at"] is None
                    and topic["title"].lower() == title.lower()
                ):
                    return ["Title has already been used"]
        return []

    def _raw_errors(self, raw: Any, minimum: int) -> list[str]:
        if _blank(raw):
            return ["Body can't be blank"]
        stripped = str(raw).strip()
        if len(stripped) < minimum:
            return [f"Body is too short (minimum is {minimum} characters)"]
        if len(stripped) > self.max_post_length:
            return [f"Body is too long (maximum is {self.max_post_length} characters)"]
        return []

    def _post_signature(self, ctx: _Ctx) -> str:
        keys = ("raw", "topic_id", "archetype", "category", "target_recipients", "reply_to_post_number", "auto_track",
                "visible", "draft_key", "skip_validations", "import_mode", "embed_url", "created_at", "external_id",
                "title", "tags")  # fmt: skip
        subset = {k: ctx.params[k] for k in keys if k in ctx.params}
        return json.dumps([ctx.actor["id"], sorted((k, json.dumps(v, sort_keys=True)) for k, v in subset.items())])

    def _posts_create(self, ctx: _Ctx) -> Any:
        """``PostsController#create``: API creations are memoized 120 s; failures answer 422 ``create_post`` errors."""
        now = self.clock()
        for key in [k for k, (expires, _, _) in self._post_memo.items() if expires <= now]:
            del self._post_memo[key]
        signature = self._post_signature(ctx)
        if signature in self._post_memo:
            _, status, body = self._post_memo[signature]
            return _Answer(status, json.loads(body))
        status, body = self._create_post(ctx)
        self._post_memo[signature] = (now + POST_MEMO_SECONDS, status, json.dumps(body))
        return _Answer(status, body)

    def _create_post(self, ctx: _Ctx) -> tuple[int, Any]:
        p = ctx.params
        actor = ctx.actor
        skip = str(p.get("skip_validations")).lower() == "true"

        def failed(errors: list[str]) -> tuple[int, Any]:
            return 422, {"action": "create_post", "errors": errors, "success": False}

        if actor["suspended"] and not skip:
            return failed(["Suspended users are not allowed to post."])
        raw = p.get("raw")
        if _blank(p.get("topic_id")):
            title = p.get("title")
            errors = [] if skip else self._title_errors(title, None)
            if _blank(title) and skip:
                errors = ["Title can't be blank"]
            category = self._find_category(p.get("category"))
            if category is None:
                if self.allow_uncategorized_topics:
                    category = self._categories[1]
                elif not skip:
                    errors.append("Category can't be blank")
            external_id = p.get("external_id")
            if external_id is not None:
                external_id = str(external_id)
                if any(
                    (t["external_id"] or "").lower() == external_id.lower()
                    for t in self._topics.values()
                    if t["external_id"]
                ):
                    errors.append("External has already been taken")  # Rails humanizes external_id as "External"
                if len(external_id) > EXTERNAL_ID_MAX_LENGTH:
                    errors.append(f"External is too long (maximum is {EXTERNAL_ID_MAX_LENGTH} characters)")
                if not re.fullmatch(r"[\w-]+", external_id):
                    errors.append("External is invalid")
            if errors:
                return failed(errors)
            if not skip:
                errors = self._raw_errors(raw, self.min_first_post_length)
                if errors:
                    return failed(errors)
            topic_id = self._next_topic_id
            self._next_topic_id += 1
            tags = p.get("tags") or []
            topic = {
                "id": topic_id,
                "title": str(title).strip(),
                "slug": _slug(str(title)),
                "category_id": category["id"] if category else None,
                "external_id": external_id,
                "user_id": actor["id"],
                "created_at": str(p.get("created_at") or _now_iso()),
                "updated_at": _now_iso(),
                "deleted_at": None,
                "deleted_by_id": None,
                "tags": [str(t) for t in (tags if isinstance(tags, list) else str(tags).split(","))],
                "archetype": "regular",
                "visible": _cast_bool(p.get("visible")) is not False,
                "closed": False,
                "archived": False,
                "highest_post_number": 0,
            }
            self._topics[topic_id] = topic
        else:
            topic = self._topics.get(_ruby_int(p.get("topic_id")))
            if topic is None or topic["deleted_at"] is not None:
                return failed([MSG_TOPIC_NOT_FOUND])
            if not skip:
                errors = self._raw_errors(raw, self.min_post_length)
                if errors:
                    return failed(errors)
        post = self._add_post(
            topic, actor, str(raw or ""), _cast_int(p.get("reply_to_post_number")), p.get("created_at")
        )
        return 200, self._post_json(post, actor, add_raw=True)

    def _add_post(
        self, topic: dict[str, Any], author: dict[str, Any], raw: str, reply_to: int | None, created_at: Any
    ) -> dict:
        topic["highest_post_number"] += 1
        post_id = self._next_post_id
        self._next_post_id += 1
        stamp = str(created_at) if created_at else _now_iso()
        raw = _clean_raw(raw)
        post = {
            "id": post_id,
            "topic_id": topic["id"],
            "post_number": topic["highest_post_number"],
            "post_type": 1,
            "user_id": author["id"],
            "raw": raw,
            "cooked": _cook(raw),
            "version": 1,
            "created_at": stamp,
            "updated_at": stamp,
            "deleted_at": None,
            "deleted_by_id": None,
            "user_deleted": False,
            "edit_reason": None,
            "last_editor_id": author["id"],
            "reply_to_post_number": reply_to,
            "_last_version_clock": self.clock(),
            "_version_raw": raw,
        }
        self._posts[post_id] = post
        topic["updated_at"] = stamp
        return post

    def _find_post(self, ctx: _Ctx) -> dict[str, Any]:
        """``find_post_using``: deleted posts (or posts of deleted topics) are visible to staff only."""
        post = self._posts.get(int(ctx.path_params["id"]))
        if post is None:
            raise _not_found()
        topic = self._topics.get(post["topic_id"])
        if (post["deleted_at"] or (topic and topic["deleted_at"])) and not self._is_staff(ctx.actor):
            raise _not_found()
        return post

    def _posts_show(self, ctx: _Ctx) -> Any:
        return self._post_json(self._find_post(ctx), ctx.actor, add_raw=True)

    def _posts_update(self, ctx: _Ctx) -> Any:
        """``PostsController#update``: 409 on ``original_text`` mismatch; ``{"post": {...}}``."""
        post_params = _require(ctx.params, "post")
        if not isinstance(post_params, dict):
            post_params = {}
        post = self._posts.get(int(ctx.path_params["id"]))
        staff = self._is_staff(ctx.actor)
        if post is None or (post["deleted_at"] is not None and not staff):
            raise _not_found()
        if not staff and post["user_id"] != ctx.actor["id"]:
            raise _forbidden()
        if post["deleted_at"] is not None:
            raise _forbidden()  # guardian.can_edit? is false for a deleted post (unverified for staff)
        original = post_params.get("original_text") or post_params.get("raw_old")
        if not _blank(original) and original != post["raw"]:
            raise _json_error(MSG_EDIT_CONFLICT, status=409)
        topic = self._topics[post["topic_id"]]
        if post["post_number"] == 1 and ctx.params.get("title") is not None and ctx.params["title"] != topic["title"]:
            errors = self._title_errors(ctx.params["title"], topic["id"])
            if errors:
                raise _json_error(errors)
            topic["title"] = str(ctx.params["title"]).strip()
            topic["slug"] = _slug(topic["title"])
        if post["post_number"] == 1 and not _blank(post_params.get("category_id")):
            category = self._find_category(post_params["category_id"])
            if category is None:
                raise _json_error("Category not found!")
            topic["category_id"] = category["id"]
        raw = post_params.get("raw")
        if raw is not None:
            errors = self._raw_errors(
                raw, self.min_first_post_length if post["post_number"] == 1 else self.min_post_length
            )
            if errors:
                raise _json_error(errors)
        self._revise_post(post, ctx.actor, {"raw": raw, "edit_reason": post_params.get("edit_reason")})
        result = self._post_json(post, ctx.actor, add_raw=True)
        result["draft_sequence"] = 0
        return {"post": result}

    def _posts_destroy(self, ctx: _Ctx) -> Any:
        post = self._find_post(ctx)
        if self._is_staff(ctx.actor):
            self._trash_post(post, ctx.actor)
        elif post["user_id"] == ctx.actor["id"]:
            post["user_deleted"] = True
        else:
            raise _forbidden()
        return _Answer(200, None, media_type="text/plain; charset=utf-8")

    def _posts_recover(self, ctx: _Ctx) -> Any:
        post = self._find_post(ctx)
        if not self._is_staff(ctx.actor):
            raise _forbidden()
        post["deleted_at"] = None
        post["deleted_by_id"] = None
        if post["post_number"] == 1:
            self._topics[post["topic_id"]]["deleted_at"] = None
        return self._post_json(post, ctx.actor, add_raw=True)

    def _redirect(self, ctx: _Ctx, topic: dict[str, Any]) -> _Answer:
        location = f"{ctx.base_url}/t/{topic['slug']}/{topic['id']}" + (".json" if ctx.wants_json else "")
        body = f'<html><body>You are being <a href="{html.escape(location)}">redirected</a>.</body></html>'
        return _Answer(301, body, {"Location": location}, media_type="text/html; charset=utf-8")

    def _topics_by_external_id(self, ctx: _Ctx) -> Any:
        """``TopicsController#show_by_external_id``: exact match among undeleted topics, then a 301."""
        wanted = ctx.path_params["external_id"]
        topic = next((t for t in self._topics.values() if t["external_id"] == wanted and t["deleted_at"] is None), None)
        if topic is None:
            raise _not_found()
        return self._redirect(ctx, topic)

    def _topics_show(self, ctx: _Ctx) -> Any:
        not_found_extras = {"title": "Page Not Found", "html": '<div class="page-not-found"></div>', "group": None}
        topic_id = _strict_int(ctx.path_params["id"])
        if topic_id is None:  # a slug instead of an id: redirect when it names a topic
            topic = next(
                (t for t in self._topics.values() if t["slug"] == ctx.path_params["id"] and t["deleted_at"] is None),
                None,
            )
            if topic is None:
                raise _not_found(not_found_extras)
            return self._redirect(ctx, topic)
        topic = self._topics.get(topic_id)
        if topic is None or (topic["deleted_at"] is not None and not self._is_staff(ctx.actor)):
            raise _not_found(not_found_extras)
        slug = ctx.path_params.get("slug")
        if slug is not None and slug != topic["slug"]:
            return self._redirect(ctx, topic)
        show_deleted = self._is_staff(ctx.actor) and str(ctx.params.get("show_deleted")).lower() == "true"
        every = sorted(
            (p for p in self._posts.values() if p["topic_id"] == topic["id"]), key=lambda p: p["post_number"]
        )
        visible = [p for p in every if show_deleted or p["deleted_at"] is None]
        live = [p for p in every if p["deleted_at"] is None]
        author = self._users.get(topic["user_id"]) or self._users[-1]
        last = self._users.get(live[-1]["user_id"]) if live else author
        participants: dict[int, int] = {}
        for post in live:
            participants[post["user_id"]] = participants.get(post["user_id"], 0) + 1
        data: dict[str, Any] = {
            "post_stream": {
                "posts": [self._post_json(p, ctx.actor) for p in visible[:TOPIC_CHUNK_SIZE]],
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
            "views": 0,
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
            "deleted_by": self._basic_user(self._users[topic["deleted_by_id"]])
            if topic["deleted_by_id"] in self._users
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
                "can_edit": self._is_staff(ctx.actor),
                "notification_level": 1,
                "can_create_post": topic["deleted_at"] is None,
                "participants": [
                    {
                        **self._basic_user(self._users[uid]),
                        "post_count": n,
                        **self._flair_fields(self._users[uid]),
                        "admin": self._users[uid]["admin"],
                        "moderator": self._users[uid]["moderator"],
                        "trust_level": self._users[uid]["trust_level"],
                    }
                    for uid, n in participants.items()
                    if uid in self._users
                ],  # fmt: skip
                "created_by": self._basic_user(author),
                "last_poster": self._basic_user(last or author),
            },
        }
        if topic["external_id"]:
            data["external_id"] = topic["external_id"]
        return data

    # ==== gamification plugin ==============================================================================================

    def _require_gamification(self) -> None:
        if not self.gamification_enabled:
            raise _not_found()  # requires_plugin: PluginDisabled renders 404

    def _event_json(self, event: dict[str, Any]) -> dict[str, Any]:
        return {k: event[k] for k in ("id", "user_id", "date", "points", "description", "created_at", "updated_at")}

    def _score_events_show(self, ctx: _Ctx) -> Any:
        self._require_gamification()
        p = ctx.params
        events = sorted(self._score_events.values(), key=lambda e: e["id"])
        if p.get("id") is not None:
            events = [e for e in events if str(e["id"]) == str(p["id"])]
        if p.get("user_id") is not None:
            events = [e for e in events if str(e["user_id"]) == str(p["user_id"])]
        if p.get("date") is not None:
            events = [e for e in events if e["date"] == str(p["date"])]
        return {"events": [self._event_json(e) for e in events[:100]]}

    def _score_events_create(self, ctx: _Ctx) -> Any:
        self._require_gamification()
        p = ctx.params
        for key in ("user_id", "date", "points"):
            _require(p, key)
        try:
            day = date.fromisoformat(str(p["date"]).strip()[:10]).isoformat()
        except ValueError:
            raise _json_error("Date can't be blank")  # an unparsable date casts to nil (unverified message)
        stamp = _now_iso()
        event = {
            "id": self._next_score_event_id,
            "user_id": _cast_int(p["user_id"]),
            "date": day,
            "points": _cast_int(p["points"]) or 0,
            "description": None if p.get("description") is None else str(p["description"]),
            "created_at": stamp,
            "updated_at": stamp,
        }
        self._next_score_event_id += 1
        self._score_events[event["id"]] = event
        return self._event_json(event)

    def _score_events_update(self, ctx: _Ctx) -> Any:
        self._require_gamification()
        p = ctx.params
        _require(p, "id")
        _require(p, "points")
        event = self._score_events.get(_ruby_int(p["id"]))
        if event is None:
            raise _not_found()
        event["points"] = _cast_int(p["points"]) or 0
        if p.get("description") is not None:
            event["description"] = str(p["description"])
        event["updated_at"] = _now_iso()
        return {"success": "OK"}
