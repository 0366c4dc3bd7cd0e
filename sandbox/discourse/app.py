"""The forum's HTTP front: one Starlette catch-all route that parses the request the Rails way, runs the per-IP
limiter (before routing) or the admin-API limiter (after auth), authenticates ``Api-Key`` + ``Api-Username`` (or
``Api-User-Id``), applies ``AdminConstraint`` and hands a :class:`Ctx` to the controller the route table names.

Every request is logged in a :class:`RequestLog`, with the status it got."""

from __future__ import annotations

import json
import re
import threading
import traceback
from collections.abc import Iterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.discourse.badges import Badges
from sandbox.discourse.categories import Categories
from sandbox.discourse.errors import MSG_INVALID_API_CREDENTIALS, Answer, forbidden, not_found
from sandbox.discourse.gamification import Gamification
from sandbox.discourse.groups import Groups
from sandbox.discourse.latest_posts import LatestPosts
from sandbox.discourse.mass_award import MassAward
from sandbox.discourse.post_actions import PostActions
from sandbox.discourse.posts import Posts
from sandbox.discourse.private_messages import PrivateMessages
from sandbox.discourse.rails import parse_body, rails_params, strict_int
from sandbox.discourse.rate_limit import RateLimiter
from sandbox.discourse.routing import Ctx, Endpoint
from sandbox.discourse.site import Site
from sandbox.discourse.solved import Solved
from sandbox.discourse.state import ForumState, Row
from sandbox.discourse.topic_lists import TopicLists
from sandbox.discourse.topics import Topics
from sandbox.discourse.user_badges import UserBadges
from sandbox.discourse.users import Users

#: The controllers, in route-table order (the first matching route wins).
CONTROLLERS = (Users, Badges, MassAward, UserBadges, Groups, Categories, Posts, PostActions, Topics, TopicLists,
               LatestPosts, PrivateMessages, Solved, Gamification, Site)  # fmt: skip


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


class ForumApp:
    """The Starlette app (``.starlette``) answering for one forum state."""

    def __init__(self, forum: ForumState, limiter: RateLimiter, log: RequestLog, base_path: str = "") -> None:
        self.forum = forum
        self.limiter = limiter
        self.log = log
        #: A subfolder install (``DISCOURSE_RELATIVE_URL_ROOT``, ``Discourse.base_path``), e.g. ``/forum``; "" at
        #: the root.
        self.base_path = normal_base_path(base_path)
        self.routes: list[Endpoint] = [
            endpoint for controller in CONTROLLERS for endpoint in controller(forum).routes()
        ]
        self.starlette = Starlette(
            routes=[Route("/{path:path}", self.endpoint, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])]
        )

    async def endpoint(self, request: Request) -> Response:
        arrived = self.forum.clock()
        raw = await request.body()
        query = rails_params(list(request.query_params.multi_items()))
        content_type = request.headers.get("content-type", "")
        method = request.method.upper()
        path = request.url.path
        record: dict[str, Any] = {"method": method, "path": path, "query": query, "body": {}, "status": 0,
                                  "time": arrived, "api_username": request.headers.get("api-username")}  # fmt: skip
        try:
            path = self._inside_base_path(path)
            try:
                body = parse_body(content_type, raw)
            except (ValueError, UnicodeDecodeError):
                raise Answer(400, {"errors": ["The request body could not be parsed."]}) from None
            record["body"] = body
            with self.forum.lock:
                answer = self.dispatch(request, method, path, query, body)
        except Answer as caught:
            answer = caught
        except Exception as error:  # a sandbox bug: answer 500 (visible in the log) instead of dropping the request
            traceback.print_exc()
            answer = Answer(500, {"errors": [f"sandbox error: {type(error).__name__}: {error}"]})
        record["status"] = answer.status
        self.log.append(record)
        if answer.body is None:
            content = b""
        elif isinstance(answer.body, (bytes, str)):
            content = answer.body.encode() if isinstance(answer.body, str) else answer.body
        else:
            content = json.dumps(answer.body, ensure_ascii=False, separators=(",", ":")).encode()
        return Response(content, status_code=answer.status, headers=answer.headers, media_type=answer.media_type)

    def dispatch(self, request: Request, method: str, path: str, query: dict[str, Any], body: dict[str, Any]) -> Answer:
        if self.limiter.plain_text_429:  # the per-IP middleware runs before routing and auth
            self.limiter.check(self.forum.clock)
        matched = None
        for endpoint in self.routes:
            found = endpoint.pattern.match(path)
            if found and endpoint.method == method:
                matched = (found, endpoint)
                break
        if matched is None:
            raise not_found()
        found, endpoint = matched
        actor = self.authenticate(request, method, path)
        if not self.limiter.plain_text_429:
            self.limiter.check(self.forum.clock)
        if endpoint.admin_only and not actor["admin"]:
            raise not_found()  # AdminConstraint: the route does not exist for non-admins
        path_params = {k: v for k, v in found.groupdict().items() if v is not None}
        accept = request.headers.get("accept", "")
        ctx = Ctx(
            method=method,
            path=path,
            params={**query, **body, **path_params},
            path_params=path_params,
            actor=actor,
            base_url=str(request.base_url).rstrip("/") + self.base_path,
            wants_json=path.endswith(".json") or "json" in accept,
            headers={k.lower(): v for k, v in request.headers.items()},
        )
        result = endpoint.handler(ctx)
        if isinstance(result, Answer):
            return result
        return Answer(200, result)

    def _inside_base_path(self, path: str) -> str:
        """The path the Rails app sees. A subfolder install runs the app under ``map relative_url_root do … end``
        (discourse/discourse config.ru:8-10 at 4aa037a1): ``Rack::URLMap`` strips the subfolder, and a path outside
        it never reaches Rails but gets Rack's own plain-text 404 (rack lib/rack/urlmap.rb, ``call``)."""
        if not self.base_path:
            return path
        if path == self.base_path or path.startswith(self.base_path + "/"):
            return path[len(self.base_path) :] or "/"
        raise Answer(404, f"Not Found: {path}", {"X-Cascade": "pass"}, media_type="text/plain")

    def authenticate(self, request: Request, method: str = "GET", path: str = "") -> Row:
        key = request.headers.get("api-key")
        scopes = self.forum.granular_keys.get(key or "")
        if scopes is not None:
            if not any(m == method and re.fullmatch(p, path) for m, p in scopes):
                raise forbidden(MSG_INVALID_API_CREDENTIALS)  # a route none of the key's scopes allows
        elif key is None or key != self.forum.api_key:
            raise forbidden(MSG_INVALID_API_CREDENTIALS)
        username = request.headers.get("api-username")
        user_id = request.headers.get("api-user-id")
        user = None
        if username:
            user = self.forum.find_user(username)
        elif user_id and strict_int(user_id) is not None:
            user = self.forum.users.get(int(user_id))
        if user is None or not user["active"] or user["suspended"]:
            raise forbidden(MSG_INVALID_API_CREDENTIALS)
        return user


def normal_base_path(base_path: str) -> str:
    """``/forum`` from ``forum``, ``/forum/`` or ``/forum``; "" for the root."""
    cleaned = "/".join(part for part in base_path.split("/") if part)
    return f"/{cleaned}" if cleaned else ""
