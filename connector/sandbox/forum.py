"""A Discourse-shaped forum on loopback: the admin-API endpoints CardBridge uses, with Discourse's own quirks.

Built from ``shared/specs/discourse`` (ENDPOINTS.md, ERRORS_RATE_LIMITS_WEBHOOKS.md): ``Api-Key``/``Api-Username``
auth with the ``invalid_access`` 403, the site-wide sliding-window admin limit answering 429 with ``Retry-After`` and
``extras.wait_seconds`` (or the per-IP plain-text form), ``member_already_exist`` 422 when every user is already in the
group, single-grant badges answering the existing grant, ``GET /t/external_id/{id}.json`` answering 301, and
Rails-style form bodies (``group[name]``). State is in memory and thread-safe; tests read it through helpers.
"""

from __future__ import annotations

import html
import json
import re
import threading
import time
from collections import deque
from datetime import datetime, timezone
from typing import Any, Callable
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from connector.sandbox.faults import FaultInjector, Knobs

NOT_FOUND = {"errors": ["The requested URL or resource could not be found."], "error_type": "not_found"}
INVALID_ACCESS = {
    "errors": ["You are not permitted to view the requested resource. The API username or key is invalid."],
    "error_type": "invalid_access",
}
EXTERNAL_ID = re.compile(r"\A[\w-]+\Z")


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def rails_params(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``group[name]=x&tags[]=a`` → ``{"group": {"name": "x"}, "tags": ["a"]}``, as Rails parses form bodies."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+|\[\]", key)
        target = result
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            if last:
                if part == "[]":
                    continue
                if index + 1 < len(parts):
                    continue
                target[part] = value
            elif parts[index + 1] == "[]":
                target.setdefault(part, []).append(value)
                break
            else:
                target = target.setdefault(part, {})
    return result


class _Error(Exception):
    def __init__(self, status: int, body: Any) -> None:
        self.status, self.body = status, body


class DiscourseSandbox:
    """The forum's state and its HTTP app (``.app``)."""

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
        self.plain_text_429 = False
        self.rate_limited_count = 0
        self.clock = clock
        self._lock = threading.RLock()
        self._window: deque[float] = deque()
        self.requests: list[dict[str, Any]] = []
        self.users: dict[int, dict[str, Any]] = {}
        self.badges: dict[int, dict[str, Any]] = {}
        self.user_badges: dict[int, dict[str, Any]] = {}
        self.groups: dict[int, dict[str, Any]] = {}
        self.members: dict[int, dict[int, str]] = {}  # group id → user id → added_at
        self.categories: dict[int, dict[str, Any]] = {1: {"id": 1, "name": "Uncategorized", "slug": "uncategorized"}}
        self.topics: dict[int, dict[str, Any]] = {}
        self.posts: dict[int, dict[str, Any]] = {}
        self.score_events: dict[int, dict[str, Any]] = {}
        self._ids: dict[str, int] = {}
        self.add_user(api_username, f"{api_username}@forum.invalid", admin=True, id=-1)
        self.app = FaultInjector(self._build_app(), self.knobs)

    # ---- in-process helpers --------------------------------------------------------------------------------------

    def _next(self, kind: str, start: int = 1) -> int:
        self._ids[kind] = self._ids.get(kind, start - 1) + 1
        return self._ids[kind]

    def add_user(
        self,
        username: str,
        email: str,
        name: str | None = None,
        secondary_emails: tuple[str, ...] = (),
        active: bool = True,
        admin: bool = False,
        id: int | None = None,
    ) -> int:
        with self._lock:
            user_id = id if id is not None else self._next("user")
            self.users[user_id] = {
                "id": user_id,
                "username": username,
                "name": name or username,
                "email": email.strip().lower(),
                "secondary_emails": [e.lower() for e in secondary_emails],
                "active": active,
                "admin": admin,
                "moderator": False,
                "trust_level": 1,
                "title": None,
                "primary_group_id": None,
                "flair_group_id": None,
                "user_fields": {},
                "created_at": _now(),
            }
            return user_id

    def _user_by_name(self, username: str) -> dict[str, Any] | None:
        lowered = username.lower()
        return next((u for u in self.users.values() if u["username"].lower() == lowered), None)

    def user(self, username: str) -> dict[str, Any]:
        with self._lock:
            user = self._user_by_name(username)
            if user is None:
                raise KeyError(username)
            return self._public_user(user)

    def badge(self, name: str) -> dict[str, Any] | None:
        with self._lock:
            return next((dict(b) for b in self.badges.values() if b["name"].lower() == name.lower()), None)

    def group(self, name: str) -> dict[str, Any] | None:
        with self._lock:
            group = self._group_by_name(name)
            return dict(group) if group else None

    def _group_by_name(self, name: str) -> dict[str, Any] | None:
        return next((g for g in self.groups.values() if g["name"].lower() == name.lower()), None)

    def badges_of(self, username: str) -> list[str]:
        with self._lock:
            user = self._user_by_name(username)
            if user is None:
                return []
            return sorted(self.badges[ub["badge_id"]]["name"] for ub in self.user_badges.values() if ub["user_id"] == user["id"])

    def user_badge_count(self, badge_name: str) -> int:
        with self._lock:
            badge = self.badge(badge_name)
            return 0 if badge is None else sum(1 for ub in self.user_badges.values() if ub["badge_id"] == badge["id"])

    def groups_of(self, username: str) -> list[str]:
        with self._lock:
            user = self._user_by_name(username)
            if user is None:
                return []
            return sorted(self.groups[g]["name"] for g, members in self.members.items() if user["id"] in members)

    def revoke_by_hand(self, username: str, badge_name: str) -> None:
        """A moderator removes a grant in the admin UI."""
        with self._lock:
            user, badge = self._user_by_name(username), self.badge(badge_name)
            for ub_id, ub in list(self.user_badges.items()):
                if user and badge and ub["user_id"] == user["id"] and ub["badge_id"] == badge["id"]:
                    del self.user_badges[ub_id]

    def remove_from_group_by_hand(self, username: str, group_name: str) -> None:
        with self._lock:
            user, group = self._user_by_name(username), self._group_by_name(group_name)
            if user and group:
                self._remove_member(group, user)

    def edit_post_by_hand(self, post_id: int, raw: str) -> None:
        """A moderator edits a post: new version, last editor is the moderator."""
        with self._lock:
            post = self.posts[post_id]
            post.update(raw=raw, cooked=_cook(raw), version=post["version"] + 1, updated_at=_now(),
                        last_editor_username="moderator")

    def delete_post_by_hand(self, post_id: int) -> None:
        with self._lock:
            self.posts[post_id]["deleted_at"] = _now()

    def topics_list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(t) for t in self.topics.values()]

    def posts_of_topic(self, topic_id: int) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(p) for p in self.posts.values() if p["topic_id"] == topic_id]

    def member_view(self) -> list[dict[str, Any]]:
        """What a member sees next to each name: badges, groups, the title, the flair group."""
        with self._lock:
            view = []
            for user in sorted(self.users.values(), key=lambda u: u["id"]):
                flair = self.groups.get(user["flair_group_id"] or 0)
                view.append(
                    {
                        "username": user["username"],
                        "badges": self.badges_of(user["username"]),
                        "groups": self.groups_of(user["username"]),
                        "title": user["title"],
                        "flair_group": flair["name"] if flair else None,
                    }
                )
            return view

    def writes(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.requests if r["method"] != "GET"]

    def count(self, method: str, path_regex: str) -> int:
        pattern = re.compile(path_regex)
        with self._lock:
            return sum(1 for r in self.requests if r["method"] == method and pattern.search(r["path"]))

    def reset_log(self) -> None:
        with self._lock:
            self.requests.clear()

    # ---- serializers ---------------------------------------------------------------------------------------------

    def _public_user(self, user: dict[str, Any], show_emails: bool = False) -> dict[str, Any]:
        data = {k: v for k, v in user.items() if k not in ("email", "secondary_emails")}
        primary = self.groups.get(user["primary_group_id"] or 0)
        flair = self.groups.get(user["flair_group_id"] or 0)
        data["primary_group_name"] = primary["name"] if primary else None
        data["flair_name"] = flair["name"] if flair else None
        data["avatar_template"] = f"/letter_avatar_proxy/v4/letter/{user['username'][0].lower()}/{{size}}.png"
        if show_emails:
            data["email"] = user["email"]
            data["secondary_emails"] = list(user["secondary_emails"])
        return data

    def _user_badge(self, ub: dict[str, Any]) -> dict[str, Any]:
        return dict(ub)

    # ---- HTTP ----------------------------------------------------------------------------------------------------

    def _build_app(self) -> Starlette:
        routes = [
            Route("/admin/users/list/{flag}.json", self._users_list, methods=["GET"]),
            Route("/admin/users/{id:int}.json", self._admin_user, methods=["GET"]),
            Route("/u/{username}.json", self._user_show, methods=["GET", "PUT"]),
            Route("/admin/badges.json", self._badges, methods=["GET", "POST"]),
            Route("/user_badges.json", self._user_badges, methods=["GET", "POST"]),
            Route("/user_badges/{id:int}.json", self._revoke, methods=["DELETE"]),
            Route("/user-badges/{username}.json", self._badges_of_user, methods=["GET"]),
            Route("/admin/groups.json", self._create_group, methods=["POST"]),
            Route("/groups/{name}.json", self._group_show, methods=["GET", "PUT"]),
            Route("/groups/{id:int}/members.json", self._group_members_write, methods=["PUT", "DELETE"]),
            Route("/admin/groups/{id:int}/members.json", self._group_members_write, methods=["PUT", "DELETE"]),
            Route("/groups/{name}/members.json", self._group_members, methods=["GET"]),
            Route("/categories.json", self._categories, methods=["GET", "POST"]),
            Route("/posts.json", self._create_post, methods=["POST"]),
            Route("/posts/{id:int}.json", self._post, methods=["GET", "PUT", "DELETE"]),
            Route("/t/external_id/{external_id}.json", self._topic_by_external_id, methods=["GET"]),
            Route("/t/{id:int}.json", self._topic, methods=["GET"]),
            Route("/t/{slug}/{id:int}.json", self._topic, methods=["GET"]),
            Route("/admin/plugins/gamification/score_events.json", self._score_events, methods=["GET", "POST", "PUT"]),
        ]
        app = Starlette(routes=routes)
        app.add_exception_handler(404, self._not_found)  # type: ignore[arg-type]
        app.add_exception_handler(405, self._not_found)  # type: ignore[arg-type]
        outer = self

        class Guard:
            """Auth, the admin-API limiter and the request log around every route."""

            async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
                if scope["type"] != "http":
                    await app(scope, receive, send)
                    return
                request = Request(scope, receive)
                raw = await request.body()
                body = _parse_body(request.headers.get("content-type", ""), raw)
                record = {
                    "method": request.method,
                    "path": request.url.path,
                    "query": dict(request.query_params),
                    "body": body,
                    "status": 0,
                    "time": time.time(),
                }
                with outer._lock:
                    # logged before answering, so a client that has its answer always finds its request in the log
                    outer.requests.append(record)
                response = outer._guard(request)
                if response is None:

                    async def replay() -> dict[str, Any]:
                        return {"type": "http.request", "body": raw, "more_body": False}

                    scope["state"] = {"body": body}

                    async def capture(message: dict[str, Any]) -> None:
                        if message["type"] == "http.response.start":
                            record["status"] = message["status"]
                        await send(message)

                    await app(scope, replay, capture)
                    return
                record["status"] = response.status_code
                await response(scope, receive, send)

        return Guard()  # type: ignore[return-value]

    async def _not_found(self, request: Request, exc: Exception) -> Response:
        return JSONResponse(NOT_FOUND, status_code=404)

    def _guard(self, request: Request) -> Response | None:
        key = request.headers.get("api-key")
        username = request.headers.get("api-username")
        with self._lock:
            acting = self._user_by_name(username or "")
            if key != self.api_key or acting is None or not acting["admin"]:
                return JSONResponse(INVALID_ACCESS, status_code=403)
            if self.rate_limit_per_minute is not None:
                now = self.clock()
                while self._window and now - self._window[0] >= 60:
                    self._window.popleft()
                if len(self._window) >= self.rate_limit_per_minute:
                    wait = max(1, int(60 - (now - self._window[0]) + 0.999))
                    self.rate_limited_count += 1
                    if self.plain_text_429:
                        return PlainTextResponse(
                            "Slow down, too many requests from this IP address. Please retry again in "
                            f"{wait} seconds. Error code: ip_10_secs_limit.",
                            status_code=429,
                            headers={"Retry-After": str(wait), "Discourse-Rate-Limit-Error-Code": "ip_10_secs_limit"},
                        )
                    return JSONResponse(
                        {
                            "errors": [
                                f"You’ve performed this action too many times. Please wait {wait} seconds before trying again."
                            ],
                            "error_type": "rate_limit",
                            "extras": {"wait_seconds": wait, "time_left": f"{wait} seconds"},
                        },
                        status_code=429,
                        headers={"Retry-After": str(wait), "Discourse-Rate-Limit-Error-Code": "admin_api_key_rate_limit"},
                    )
                self._window.append(now)
        return None

    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        return request.scope.get("state", {}).get("body", {})

    def _run(self, handler: Callable[[], Any], status: int = 200) -> Response:
        try:
            with self._lock:
                result = handler()
        except _Error as error:
            return JSONResponse(error.body, status_code=error.status)
        if isinstance(result, Response):
            return result
        return JSONResponse(result, status_code=status)

    # ---- users ---------------------------------------------------------------------------------------------------

    async def _users_list(self, request: Request) -> Response:
        params = request.query_params
        show = params.get("show_emails") == "true"
        flag = request.path_params["flag"]

        def handler() -> Any:
            users = sorted(self.users.values(), key=lambda u: u["id"])
            if flag == "active":
                users = [u for u in users if u["active"]]
            elif flag == "staff":
                users = [u for u in users if u["admin"] or u["moderator"]]
            elif flag not in ("all", "new", "suspended", "blocked", "suspect"):
                raise _Error(404, NOT_FOUND)
            if params.get("email"):
                wanted = params["email"].strip().lower()
                users = [u for u in users if u["email"] == wanted]  # primary email only
            page = max(1, int(params.get("page", "1") or 1))
            chunk = users[(page - 1) * 100 : page * 100]
            return [self._public_user(u, show_emails=show) for u in chunk]

        return self._run(handler)

    async def _admin_user(self, request: Request) -> Response:
        def handler() -> Any:
            user = self.users.get(request.path_params["id"])
            if user is None:
                raise _Error(404, NOT_FOUND)
            return self._public_user(user, show_emails=True)

        return self._run(handler)

    async def _user_show(self, request: Request) -> Response:
        body = self._body(request)

        def handler() -> Any:
            user = self._user_by_name(request.path_params["username"])
            if user is None:
                raise _Error(404, NOT_FOUND)
            if request.method == "PUT":
                for field_id, value in (body.get("user_fields") or {}).items():
                    user["user_fields"][str(field_id)] = value
                for key in ("title", "name"):
                    if key in body:
                        user[key] = body[key]
                return {"success": "OK", "user": self._public_user(user)}
            badges = [self._user_badge(ub) for ub in self.user_badges.values() if ub["user_id"] == user["id"]]
            return {"user_badges": badges, "user": self._public_user(user)}

        return self._run(handler)

    # ---- badges --------------------------------------------------------------------------------------------------

    async def _badges(self, request: Request) -> Response:
        body = self._body(request)

        def handler() -> Any:
            if request.method == "GET":
                return {
                    "badges": [dict(b) for b in self.badges.values()],
                    "badge_types": [{"id": 1, "name": "Gold"}, {"id": 2, "name": "Silver"}, {"id": 3, "name": "Bronze"}],
                    "badge_groupings": [],
                    "admin_badges": {},
                }
            name = str(body.get("name") or "").strip()
            if not name or not body.get("badge_type_id"):
                raise _Error(400, {"errors": ["param is missing or the value is empty: name, badge_type_id"]})
            if self.badge(name):
                raise _Error(422, {"errors": ["Name has already been taken"], "error_type": "record_invalid"})
            badge_id = self._next("badge", start=100)
            badge = {
                "id": badge_id,
                "name": name,
                "description": body.get("description") or "",
                "badge_type_id": int(body["badge_type_id"]),
                "allow_title": _truthy(body.get("allow_title")),
                "multiple_grant": _truthy(body.get("multiple_grant")),
                "listable": _truthy(body.get("listable", True)),
                "enabled": _truthy(body.get("enabled", True)),
                "icon": body.get("icon") or "certificate",
                "grant_count": 0,
                "system": False,
                "slug": re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-"),
            }
            self.badges[badge_id] = badge
            return {"badge": dict(badge), "badge_types": []}

        return self._run(handler)

    async def _user_badges(self, request: Request) -> Response:
        body = self._body(request)
        params = request.query_params

        def handler() -> Any:
            if request.method == "GET":
                badge_id = int(params.get("badge_id") or 0)
                limit = min(50, int(params.get("limit") or 50))
                offset = int(params.get("offset") or 0)
                grants = [ub for ub in self.user_badges.values() if ub["badge_id"] == badge_id]
                page = grants[offset : offset + limit]
                return {
                    "user_badge_info": {"user_badges": [dict(ub) for ub in page], "grant_count": len(grants), "username": None},
                    "badges": [dict(self.badges[badge_id])] if badge_id in self.badges else [],
                    "users": [self._public_user(self.users[ub["user_id"]]) for ub in page],
                }
            if not body.get("username"):
                raise _Error(400, {"errors": ["param is missing or the value is empty: username"]})
            user = self._user_by_name(str(body["username"]))
            badge = None
            if body.get("badge_id"):
                badge = self.badges.get(int(body["badge_id"]))
            elif body.get("badge_name"):
                badge = self.badge(str(body["badge_name"]))
                badge = self.badges[badge["id"]] if badge else None
            if user is None or badge is None:
                raise _Error(404, NOT_FOUND)
            if not badge["enabled"]:
                raise _Error(422, {"errors": ["Badge is disabled"]})
            if not badge["multiple_grant"]:
                for ub in self.user_badges.values():
                    if ub["user_id"] == user["id"] and ub["badge_id"] == badge["id"]:
                        return {"badges": [dict(badge)], "user_badge": dict(ub)}
            ub_id = self._next("user_badge")
            ub = {"id": ub_id, "granted_at": _now(), "badge_id": badge["id"], "user_id": user["id"],
                  "granted_by_id": -1, "post_id": None}
            self.user_badges[ub_id] = ub
            badge["grant_count"] += 1
            if badge["allow_title"] and not user["title"]:
                pass  # Discourse does not set a badge title on grant; the user picks it
            return {"badges": [dict(badge)], "user_badge": dict(ub)}

        return self._run(handler)

    async def _revoke(self, request: Request) -> Response:
        def handler() -> Any:
            ub = self.user_badges.pop(request.path_params["id"], None)
            if ub is None:
                raise _Error(404, NOT_FOUND)
            self.badges[ub["badge_id"]]["grant_count"] -= 1
            return {"success": "OK"}

        return self._run(handler)

    async def _badges_of_user(self, request: Request) -> Response:
        def handler() -> Any:
            user = self._user_by_name(request.path_params["username"])
            if user is None:
                raise _Error(404, NOT_FOUND)
            grants = [dict(ub) for ub in self.user_badges.values() if ub["user_id"] == user["id"]]
            return {
                "user_badges": grants,
                "badges": [dict(self.badges[g["badge_id"]]) for g in grants],
                "granted_bies": [],
            }

        return self._run(handler)

    # ---- groups --------------------------------------------------------------------------------------------------

    def _basic_group(self, group: dict[str, Any]) -> dict[str, Any]:
        return {**group, "user_count": len(self.members.get(group["id"], {}))}

    async def _create_group(self, request: Request) -> Response:
        body = self._body(request)

        def handler() -> Any:
            params = body.get("group") or {}
            name = str(params.get("name") or "").strip()
            if not name:
                raise _Error(400, {"errors": ["param is missing or the value is empty: group"]})
            if not re.fullmatch(r"[\w.-]{1,60}", name):
                raise _Error(422, {"errors": ["Name must only include numbers, letters, dashes, dots, and underscores"],
                                   "error_type": "record_invalid"})
            if self._group_by_name(name):
                raise _Error(422, {"errors": ["Name has already been taken"], "error_type": "record_invalid"})
            group_id = self._next("group", start=40)
            group = {
                "id": group_id,
                "name": name,
                "full_name": params.get("full_name"),
                "title": params.get("title"),
                "flair_icon": params.get("flair_icon"),
                "flair_url": params.get("flair_icon"),
                "flair_bg_color": params.get("flair_bg_color"),
                "flair_color": params.get("flair_color"),
                "primary_group": _truthy(params.get("primary_group")),
                "visibility_level": int(params.get("visibility_level") or 0),
                "automatic": False,
            }
            self.groups[group_id] = group
            self.members[group_id] = {}
            return {"basic_group": self._basic_group(group)}

        return self._run(handler)

    async def _group_show(self, request: Request) -> Response:
        body = self._body(request)

        def handler() -> Any:
            name = request.path_params["name"]
            group = self.groups.get(int(name)) if request.method == "PUT" and name.isdigit() else self._group_by_name(name)
            if group is None:
                raise _Error(404, NOT_FOUND)
            if request.method == "PUT":
                group.update({k: v for k, v in (body.get("group") or {}).items() if k in group and k != "id"})
                return {"success": "OK"}
            return {"group": self._basic_group(group), "extras": {"visible_group_names": [g["name"] for g in self.groups.values()]}}

        return self._run(handler)

    def _add_member(self, group: dict[str, Any], user: dict[str, Any]) -> None:
        self.members[group["id"]][user["id"]] = _now()
        if group["primary_group"]:
            user["primary_group_id"] = group["id"]
        if group["title"] and not user["title"]:
            user["title"] = group["title"]
        if group["flair_icon"] and (group["primary_group"] or not user["flair_group_id"]):
            user["flair_group_id"] = group["id"]

    def _remove_member(self, group: dict[str, Any], user: dict[str, Any]) -> None:
        self.members[group["id"]].pop(user["id"], None)
        if user["primary_group_id"] == group["id"]:
            user["primary_group_id"] = None
        if user["flair_group_id"] == group["id"]:
            user["flair_group_id"] = None
        if group["title"] and user["title"] == group["title"]:
            user["title"] = None

    async def _group_members_write(self, request: Request) -> Response:
        body = {**dict(request.query_params), **self._body(request)}

        def handler() -> Any:
            group = self.groups.get(request.path_params["id"])
            if group is None:
                raise _Error(404, NOT_FOUND)
            names = [n.strip() for n in str(body.get("usernames") or body.get("username") or "").split(",") if n.strip()]
            ids = [int(i) for i in str(body.get("user_ids") or body.get("user_id") or "").split(",") if i.strip()]
            emails = [e.strip().lower() for e in str(body.get("user_emails") or body.get("user_email") or "").split(",") if e.strip()]
            if not (names or ids or emails):
                raise _Error(400, {"errors": ["param is missing or the value is empty: usernames"]})
            if len(names) + len(ids) + len(emails) > 1000:
                raise _Error(400, {"errors": ["You cannot add more than 1000 users at once"], "error_type": "invalid_parameters"})
            users = [u for u in self.users.values()
                     if u["username"].lower() in {n.lower() for n in names} or u["id"] in ids or u["email"] in emails]
            members = self.members[group["id"]]
            if request.method == "PUT":
                if not users:
                    raise _Error(400, {"errors": ["You supplied invalid parameters to the request: usernames"],
                                       "error_type": "invalid_parameters"})
                new = [u for u in users if u["id"] not in members]
                if not new:
                    listed = ", ".join(u["username"] for u in users)
                    raise _Error(422, {"errors": [f"{listed} is already a member of this group."]})
                for user in new:
                    self._add_member(group, user)
                return {"success": "OK", "usernames": [u["username"] for u in new], "emails": []}
            removed = [u for u in users if u["id"] in members]
            for user in removed:
                self._remove_member(group, user)
            skipped = [n for n in names if n.lower() not in {u["username"].lower() for u in removed}]
            return {"success": "OK", "usernames": [u["username"] for u in removed], "skipped_usernames": skipped}

        return self._run(handler)

    async def _group_members(self, request: Request) -> Response:
        params = request.query_params

        def handler() -> Any:
            group = self._group_by_name(request.path_params["name"])
            if group is None:
                raise _Error(404, NOT_FOUND)
            limit = min(1000, int(params.get("limit") or 50))
            offset = int(params.get("offset") or 0)
            members = [(self.users[uid], added) for uid, added in self.members[group["id"]].items()]
            flt = (params.get("filter") or "").lower()
            if flt:
                members = [(u, a) for u, a in members if flt in u["username"].lower() or flt == u["email"]]
            page = members[offset : offset + limit]
            return {
                "members": [{"id": u["id"], "username": u["username"], "name": u["name"], "title": u["title"],
                             "added_at": added} for u, added in page],
                "owners": [],
                "meta": {"total": len(members), "limit": limit, "offset": offset},
            }

        return self._run(handler)

    # ---- categories, topics, posts --------------------------------------------------------------------------------

    async def _categories(self, request: Request) -> Response:
        body = self._body(request)

        def handler() -> Any:
            if request.method == "GET":
                return {"category_list": {"categories": [dict(c) for c in self.categories.values()]}}
            name = str(body.get("name") or "").strip()
            if not name:
                raise _Error(400, {"errors": ["param is missing or the value is empty: name"]})
            if any(c["name"].lower() == name.lower() for c in self.categories.values()):
                raise _Error(422, {"errors": ["Category Name has already been taken"], "error_type": "record_invalid"})
            category_id = self._next("category", start=2)
            category = {"id": category_id, "name": name, "slug": re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-"),
                        "color": body.get("color") or "0088CC", "text_color": body.get("text_color") or "FFFFFF"}
            self.categories[category_id] = category
            return {"category": dict(category)}

        return self._run(handler)

    def _post_json(self, post: dict[str, Any]) -> dict[str, Any]:
        topic = self.topics[post["topic_id"]]
        return {**post, "topic_slug": topic["slug"]}

    async def _create_post(self, request: Request) -> Response:
        body = self._body(request)
        acting = request.headers.get("api-username") or self.api_username

        def handler() -> Any:
            raw = str(body.get("raw") or "")
            if not raw.strip():
                raise _Error(422, {"action": "create_post", "errors": ["Body is too short"], "success": False})
            if body.get("topic_id"):
                topic = self.topics.get(int(body["topic_id"]))
                if topic is None:
                    raise _Error(404, NOT_FOUND)
            else:
                title = str(body.get("title") or "")
                external_id = body.get("external_id")
                errors = []
                if len(title.strip()) < 5:
                    errors.append("Title is too short")
                if external_id is not None:
                    if not EXTERNAL_ID.match(str(external_id)) or len(str(external_id)) > 50:
                        errors.append("External ID is invalid")
                    elif any((t.get("external_id") or "").lower() == str(external_id).lower() for t in self.topics.values()):
                        errors.append("External ID has already been taken")
                if errors:
                    raise _Error(422, {"action": "create_post", "errors": errors, "success": False})
                topic_id = self._next("topic", start=10)
                category = int(body.get("category") or 1)
                topic = {"id": topic_id, "title": title, "slug": re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "topic",
                         "external_id": external_id, "category_id": category, "posts_count": 0, "created_at": _now()}
                self.topics[topic_id] = topic
            topic["posts_count"] += 1
            post_id = self._next("post", start=1000)
            post = {"id": post_id, "topic_id": topic["id"], "post_number": topic["posts_count"], "raw": raw,
                    "cooked": _cook(raw), "username": acting, "version": 1, "created_at": _now(), "updated_at": _now(),
                    "deleted_at": None, "user_deleted": False, "last_editor_username": acting}
            self.posts[post_id] = post
            return self._post_json(post)

        return self._run(handler)

    async def _post(self, request: Request) -> Response:
        body = self._body(request)

        def handler() -> Any:
            post = self.posts.get(request.path_params["id"])
            if post is None:
                raise _Error(404, NOT_FOUND)
            if request.method == "GET":
                return self._post_json(post)
            if request.method == "DELETE":
                post["deleted_at"] = _now()
                return Response(status_code=200)
            fields = body.get("post") or {}
            raw = fields.get("raw")
            if not raw:
                raise _Error(400, {"errors": ["param is missing or the value is empty: post"]})
            if fields.get("original_text") is not None and fields["original_text"] != post["raw"]:
                raise _Error(409, {"errors": ["The post was edited by someone else while you were editing it."]})
            post.update(raw=raw, cooked=_cook(raw), version=post["version"] + 1, updated_at=_now(),
                        last_editor_username=request.headers.get("api-username"))
            return {"post": self._post_json(post)}

        return self._run(handler)

    async def _topic_by_external_id(self, request: Request) -> Response:
        def handler() -> Any:
            wanted = request.path_params["external_id"].lower()
            topic = next((t for t in self.topics.values() if (t.get("external_id") or "").lower() == wanted), None)
            if topic is None:
                raise _Error(404, NOT_FOUND)
            return Response(status_code=301, headers={"Location": f"/t/{topic['slug']}/{topic['id']}.json"})

        return self._run(handler)

    async def _topic(self, request: Request) -> Response:
        def handler() -> Any:
            topic = self.topics.get(request.path_params["id"])
            if topic is None:
                raise _Error(404, NOT_FOUND)
            posts = [self._post_json(p) for p in self.posts.values() if p["topic_id"] == topic["id"] and not p["deleted_at"]]
            return {**topic, "post_stream": {"posts": posts, "stream": [p["id"] for p in posts]}}

        return self._run(handler)

    async def _score_events(self, request: Request) -> Response:
        body = self._body(request)
        params = request.query_params

        def handler() -> Any:
            if request.method == "GET":
                events = list(self.score_events.values())
                if params.get("user_id"):
                    events = [e for e in events if e["user_id"] == int(params["user_id"])]
                return {"events": [dict(e) for e in events[:100]]}
            if request.method == "PUT":
                event = self.score_events.get(int(body.get("id") or 0))
                if event is None:
                    raise _Error(404, NOT_FOUND)
                event.update(points=int(body["points"]), description=body.get("description", event["description"]),
                             updated_at=_now())
                return {"success": "OK"}
            event_id = self._next("score_event")
            event = {"id": event_id, "user_id": int(body["user_id"]), "date": body["date"], "points": int(body["points"]),
                     "description": body.get("description"), "created_at": _now(), "updated_at": _now()}
            self.score_events[event_id] = event
            return dict(event)

        return self._run(handler)


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() in ("true", "1", "yes", "on")
    return bool(value)


def _cook(raw: str) -> str:
    return "<p>" + html.escape(raw).replace("\n", "<br>") + "</p>"


def _parse_body(content_type: str, raw: bytes) -> dict[str, Any]:
    if not raw:
        return {}
    if "json" in content_type:
        try:
            parsed = json.loads(raw)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    if "x-www-form-urlencoded" in content_type:
        return rails_params(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
    return {}
