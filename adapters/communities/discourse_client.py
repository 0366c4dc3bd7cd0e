"""A thin, typed httpx client for the Discourse endpoints CardBridge uses.

Map and citations: ``shared/specs/discourse/ENDPOINTS.md``. Requests carry ``Api-Key`` / ``Api-Username`` headers
(query-string keys are only honoured on RSS routes). Each method is one HTTP call; policy (budget, retries, 429) lives
in :class:`connector.core.http.RemoteClient`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from adapters.communities.discourse_content_client import ContentCalls
from connector.core.budget import MAX_SHARED_LIMIT, LimitStore, RequestBudget, SharedRequestBudget
from connector.core.http import RemoteClient, RemoteError
from connector.core.logs import log

#: Our window for the forum's 60-second one: Discourse stamps a request when it arrives, we when we send it; a second of
#: slack keeps network jitter from making our window look shorter than the forum's (measured: 1.1 % 429s without it).
WINDOW = 61.0
#: Discourse's ``GroupsController::ADD_MEMBERS_LIMIT``.
GROUP_BATCH = 1000
#: ``AdminUserIndexQuery`` answers 100 users a page.
USERS_PAGE = 100
#: Only accounts whose owner confirmed the email (or staff activated). The ``active`` in ``/admin/users/list/active``
#: filters nothing: it orders by last seen (discourse/discourse lib/admin_user_index_query.rb:60-61); this parameter
#: filters (``filter_by_activation``, :85-92 of the newest version; absent from older ones, which ignore it).
ACTIVATED = {"activation": "activated"}


@dataclass(frozen=True)
class DiscourseUser:
    id: int
    username: str
    email: str | None
    #: The owner confirmed the email (``EmailToken.confirm`` sets ``users.active``) or staff activated the account.
    active: bool


def site(base_url: str) -> str:
    """The forum as every replica configures it, whatever the case of its host or a trailing slash (no credentials:
    the rate-limit key is stored)."""
    url = httpx.URL(base_url)
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}{url.path.rstrip('/')}"


def _user(record: dict[str, Any]) -> DiscourseUser:
    return DiscourseUser(
        id=int(record["id"]),
        username=str(record["username"]),
        email=(record.get("email") or None),
        # Every admin list row carries it (AdminUserListSerializer, app/serializers/admin_user_list_serializer.rb:6);
        # a row without it is not taken for activated.
        active=record.get("active") is True,
    )


class DiscourseClient(ContentCalls):
    """Users, badges, groups and points; categories, topics and posts come from :class:`ContentCalls`."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        api_username: str,
        *,
        requests_per_minute: int | None = 60,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        max_retry_seconds: float = 60.0,
        keys: str = "",
        transport: httpx.BaseTransport | None = None,
        attempts: int = 5,
        sleep: Any = None,
        max_wait: float = 60.0,
    ) -> None:
        kwargs: dict[str, Any] = {}
        if sleep is not None:
            kwargs["sleep"] = sleep
        self.base_url = base_url
        self.requests_per_minute = requests_per_minute
        self._sleep = kwargs.get("sleep")
        self.http = RemoteClient(
            "discourse",
            base_url,
            headers={"Api-Key": api_key, "Api-Username": api_username},
            timeout=timeout,
            connect_timeout=connect_timeout,
            max_retry_seconds=max_retry_seconds,
            keys=keys,
            budget=RequestBudget(requests_per_minute, window=WINDOW) if requests_per_minute else None,
            transport=transport,
            attempts=attempts,
            max_wait=max_wait,
            **kwargs,
        )

    def share_budget(self, store: LimitStore) -> None:
        """Count the requests in ``store``'s window for this forum, shared with every process (and every community)
        calling the same site: Discourse's admin-API limit is one window per site, whatever the key
        (``lib/auth/default_current_user_provider.rb``, ``admin_api_key_limiter``: ``RateLimiter.new(nil,
        "admin_api_min", …)``; shared/specs/discourse/ERRORS_RATE_LIMITS_WEBHOOKS.md:55, and
        ``sandbox/discourse/rate_limit.py``)."""
        if not self.requests_per_minute:
            return
        if self.requests_per_minute > MAX_SHARED_LIMIT:
            log.warning(
                "requests_per_minute is above what is shared between processes: each paces itself",
                requests_per_minute=self.requests_per_minute,
                shared_up_to=MAX_SHARED_LIMIT,
            )
            return
        kwargs: dict[str, Any] = {"sleep": self._sleep} if self._sleep is not None else {}
        self.http.budget = SharedRequestBudget(
            store, f"discourse:{site(self.base_url)}", self.requests_per_minute, window=WINDOW, **kwargs
        )

    # ---- users ---------------------------------------------------------------------------------------------------

    def user_by_email(self, email: str) -> DiscourseUser | None:
        """The *activated* account whose *primary* email is ``email`` (exact, case-insensitive: the admin list's
        ``email=`` filter), or None. An account whose owner has not confirmed the address is not an answer: anyone
        can sign up with a buyer's email; a forum that ignores ``activation=`` is filtered here by each row's
        ``active``."""
        response = self.http.request(
            "GET", "/admin/users/list/active.json", params={"email": email, "show_emails": "true", **ACTIVATED}
        )
        users = [_user(u) for u in response.json()]
        for user in users:
            if user.active and user.email and user.email.lower() == email.lower():
                return user
        return None

    def user_by_id(self, user_id: int | str) -> DiscourseUser | None:
        """The account with this id whatever its name now (``GET /admin/users/{id}.json``,
        ``Admin::UsersController#show``, ``AdminDetailedUserSerializer``), or None when there is none (404)."""
        try:
            body = self.http.request("GET", f"/admin/users/{quote(str(user_id), safe='')}.json").json()
        except RemoteError as error:
            if error.status == 404:
                return None
            raise
        if not isinstance(body, dict) or "username" not in body or "id" not in body:
            return None
        return _user(body)

    def user(self, username: str) -> dict[str, Any] | None:
        """A user by username (``GET /u/{username}.json``), or None when there is none."""
        try:
            body = self.http.request("GET", f"/u/{quote(username, safe='')}.json").json()
        except RemoteError as error:
            if error.status == 404:
                return None
            raise
        user = body.get("user") if isinstance(body, dict) else None
        return dict(user) if isinstance(user, dict) else None

    def users_with_emails(self) -> Iterator[list[DiscourseUser]]:
        """Every activated user with their primary email, a page (100 users) per request. Rows with ``active``
        false are dropped (a forum that ignores ``activation=`` sends them); the page size is counted before that."""
        page = 1
        while True:
            response = self.http.request(
                "GET",
                "/admin/users/list/active.json",
                params={"show_emails": "true", "page": page, "order": "created", "asc": "true", **ACTIVATED},
            )
            records = list(response.json())
            users = [user for user in map(_user, records) if user.active]
            if users:
                yield users
            if len(records) < USERS_PAGE:
                return
            page += 1

    # ---- badges --------------------------------------------------------------------------------------------------

    def badges(self) -> list[dict[str, Any]]:
        return list(self.http.request("GET", "/admin/badges.json").json().get("badges", []))

    def create_badge(self, name: str, description: str) -> int:
        response = self.http.request(
            "POST",
            "/admin/badges.json",
            json={
                "name": name,
                "badge_type_id": 3,  # bronze
                "description": description,
                "allow_title": True,
                "multiple_grant": False,  # a second grant returns the existing one: grants are idempotent
                "listable": True,
                "enabled": True,
                "show_posts": False,
                "icon": "check-circle",
            },
        )
        return int(response.json()["badge"]["id"])

    def grant_badge(self, username: str, badge_id: int) -> int:
        """Grant a badge; returns the UserBadge id (needed to revoke it)."""
        response = self.http.request("POST", "/user_badges.json", json={"username": username, "badge_id": badge_id})
        return int(response.json()["user_badge"]["id"])

    def revoke_badge(self, user_badge_id: int) -> None:
        self.http.request("DELETE", f"/user_badges/{user_badge_id}.json")

    def user_badge_id(self, username: str, badge_id: int) -> int | None:
        """The UserBadge id of ``badge_id`` on ``username``, if granted."""
        response = self.http.request("GET", f"/user-badges/{username}.json")
        for user_badge in response.json().get("user_badges", []):
            if int(user_badge.get("badge_id", -1)) == badge_id:
                return int(user_badge["id"])
        return None

    def badge_holders(self, badge_id: int) -> set[str]:
        """Every holder of a badge, 50 grants a request (``UserBadgesController::MAX_INDEX_LIMIT``)."""
        holders: set[str] = set()
        offset = 0
        while True:
            body = self.http.request(
                "GET", "/user_badges.json", params={"badge_id": badge_id, "offset": offset, "limit": 50}
            ).json()
            grants = (body.get("user_badge_info") or {}).get("user_badges") or []
            names = {int(u["id"]): str(u["username"]).lower() for u in body.get("users") or []}
            holders.update(names[int(g["user_id"])] for g in grants if int(g.get("user_id", 0)) in names)
            if len(grants) < 50:
                return holders
            offset += len(grants)

    # ---- groups --------------------------------------------------------------------------------------------------

    def group(self, name: str) -> dict[str, Any] | None:
        try:
            return dict(self.http.request("GET", f"/groups/{name}.json").json()["group"])
        except RemoteError as error:
            if error.status == 404:
                return None
            raise

    def create_group(
        self,
        name: str,
        *,
        title: str,
        full_name: str,
        flair_icon: str,
        flair_bg_color: str,
        flair_color: str,
        primary_group: bool,
    ) -> int:
        response = self.http.request(
            "POST",
            "/admin/groups.json",
            json={
                "group": {
                    "name": name,
                    "full_name": full_name,
                    "title": title,
                    "flair_icon": flair_icon,
                    "flair_bg_color": flair_bg_color,
                    "flair_color": flair_color,
                    "primary_group": primary_group,
                    "visibility_level": 0,
                    "public_admission": False,
                    "public_exit": False,
                }
            },
        )
        return int(response.json()["basic_group"]["id"])

    def add_members(self, group_id: int, *, usernames: Sequence[str] = (), user_ids: Sequence[str] = ()) -> set[str]:
        """Add up to 1000 users, by id (``user_ids``, which a rename does not change) or by name. Returns the
        lower-cased names of every user the forum resolved (``GroupMemberAdder#add``: members already included);
        anyone sent but not resolved was dropped without a word. Raises :class:`RemoteError` otherwise: 400
        ``invalid_parameters`` when nobody resolved, 422 (its text in the forum's language) when every resolved
        user was a member already, which only a read-back can tell apart from another 422."""
        selector = _selector(usernames, user_ids)
        body = self.http.request("PUT", f"/groups/{group_id}/members.json", json=selector).json()
        return _names(body, "usernames")

    def remove_members(self, group_id: int, *, usernames: Sequence[str] = (), user_ids: Sequence[str] = ()) -> set[str]:
        """Remove users by id or name. Returns the lower-cased names the forum resolved: removed, or skipped because
        they were not members (``GroupMemberRemover#remove``); 400 ``invalid_parameters`` when nobody resolved."""
        selector = _selector(usernames, user_ids)
        body = self.http.request("DELETE", f"/groups/{group_id}/members.json", json=selector).json()
        return _names(body, "usernames") | _names(body, "skipped_usernames")

    def group_member_ids(self, group_name: str) -> dict[int, str]:
        """Every member of a group, user id → username, 1000 a request (``GroupsController::MEMBERS_MAX_PAGE_SIZE``)."""
        members: dict[int, str] = {}
        offset = 0
        while True:
            body = self.http.request(
                "GET", f"/groups/{quote(group_name, safe='')}/members.json", params={"limit": 1000, "offset": offset}
            ).json()
            page = body.get("members") or [] if isinstance(body, dict) else []
            members.update({int(m["id"]): str(m["username"]) for m in page if isinstance(m, dict) and "id" in m})
            if len(page) < 1000:
                return members
            offset += len(page)

    def group_members(self, group_name: str) -> set[str]:
        members: set[str] = set()
        offset = 0
        while True:
            body = self.http.request(
                "GET", f"/groups/{group_name}/members.json", params={"limit": 1000, "offset": offset}
            ).json()
            page = body.get("members") or []
            members.update(str(m["username"]).lower() for m in page)
            if len(page) < 1000:
                return members
            offset += len(page)

    def is_member(self, group_name: str, username: str) -> bool:
        response = self.http.request(
            "GET", f"/groups/{group_name}/members.json", params={"filter": username, "limit": 50}
        )
        return any(m.get("username", "").lower() == username.lower() for m in response.json().get("members", []))

    # ---- points --------------------------------------------------------------------------------------------------

    def score_events(self, user_id: int, date: str) -> list[dict[str, Any]]:
        """A member's score events of one day: at most 100, in no promised order (the plugin lists ``limit(100)``
        without ``order`` or offset: discourse-gamification
        app/controllers/discourse_gamification/admin_gamification_score_event_controller.rb:6-17)."""
        response = self.http.request(
            "GET", "/admin/plugins/gamification/score_events.json", params={"user_id": user_id, "date": date}
        )
        body = response.json()
        events = body.get("events") if isinstance(body, dict) else None
        return [e for e in events if isinstance(e, dict)] if isinstance(events, list) else []

    def add_score_event(self, user_id: int, date: str, points: int, description: str) -> int:
        response = self.http.request(
            "POST",
            "/admin/plugins/gamification/score_events.json",
            json={"user_id": user_id, "date": date, "points": points, "description": description},
        )
        return int(response.json()["id"])

    def set_score_event_points(self, event_id: int, points: int) -> None:
        """``PUT`` by id (the description is kept): admin_gamification_score_event_controller.rb:38-52."""
        self.http.request(
            "PUT", "/admin/plugins/gamification/score_events.json", json={"id": event_id, "points": points}
        )

    def set_user_field(self, username: str, field_id: int, value: str) -> None:
        self.http.request("PUT", f"/u/{username}.json", json={"user_fields": {str(field_id): value}})

    def close(self) -> None:
        self.http.close()


#: Post ids asked in one ``/t/{id}/posts.json`` read: about 2 KB of query string (the server takes any number).
POST_IDS_PER_READ = 100


def _selector(usernames: Sequence[str], user_ids: Sequence[str]) -> dict[str, str]:
    """``GroupMutations.resolve_users`` takes the first of ``usernames``/``user_ids`` present: one kind per call."""
    if bool(usernames) == bool(user_ids):
        raise ValueError("give either usernames or user_ids")
    values = list(user_ids or usernames)
    if len(values) > GROUP_BATCH:
        raise ValueError(f"at most {GROUP_BATCH} users per call")
    return {"user_ids": ",".join(values)} if user_ids else {"usernames": ",".join(values)}


def _names(body: Any, key: str) -> set[str]:
    names = body.get(key) if isinstance(body, dict) else None
    return {str(n).lower() for n in names} if isinstance(names, list) else set()
