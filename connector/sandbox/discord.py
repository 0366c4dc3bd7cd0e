"""A Discord-shaped REST v10 API on loopback: guild roles, members and forum threads, with Discord's rate limits.

Built from ``shared/specs/discord`` (CONNECTOR-NOTES.md, docs-excerpts/rate-limits.mdx, the OpenAPI subset):
``Authorization: Bot <token>`` (401 ``{"message": "401: Unauthorized", "code": 0}``), per-route buckets keyed by the
bucket and the top-level resource (guild or channel id) with ``X-RateLimit-Limit/Remaining/Reset/Reset-After/Bucket``
on every answer, 429 ``{"message", "retry_after", "global"}`` with ``Retry-After`` and ``X-RateLimit-Scope``, a 50/s
global gate, error codes 10007 (unknown member), 10011 (unknown role), 50013 (role above the bot's highest role),
50083 (edit in an archived thread), 50035 (invalid form body), and a count of the 401/403/429 answers Discord's
invalid-request limit is built on. Messages that would ping (``@everyone``, user or role mentions without
``allowed_mentions: {"parse": []}``) are recorded in ``pings``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connector.sandbox.faults import FaultInjector, Knobs

API = "/api/v10"
MENTION = re.compile(r"@everyone|@here|<@&?!?\d+>")


@dataclass
class Bucket:
    limit: int
    window: float
    remaining: int
    reset_at: float


def _error(status: int, code: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"message": message, "code": code, **extra}, status_code=status)


class DiscordSandbox:
    """One guild, its roles and members, and its forum channels."""

    def __init__(
        self,
        bot_token: str = "sandbox-bot-token",
        guild_id: str = "800000000000000001",
        knobs: Knobs | None = None,
        route_limit: int = 10,
        route_window: float = 10.0,
        global_per_second: int = 50,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bot_token = bot_token
        self.guild_id = guild_id
        self.knobs = knobs or Knobs()
        self.route_limit, self.route_window = route_limit, route_window
        self.global_per_second = global_per_second
        self.clock = clock
        self._lock = threading.RLock()
        self._snowflake = 900000000000000000
        self.roles: dict[str, dict[str, Any]] = {}
        self.members: dict[str, set[str]] = {}
        self.channels: dict[str, dict[str, Any]] = {}
        self.messages: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self.pings: list[dict[str, Any]] = []
        self.invalid_requests = 0
        self._buckets: dict[tuple[str, str], Bucket] = {}
        self._global: list[float] = []
        self.roles[guild_id] = {"id": guild_id, "name": "@everyone", "position": 0, "managed": False}
        self.bot_role = self.add_role("CardBridge", position=10, managed=True)
        self.app = FaultInjector(self._build_app(), self.knobs)

    # ---- in-process helpers --------------------------------------------------------------------------------------

    def _id(self) -> str:
        self._snowflake += 1
        return str(self._snowflake)

    def add_role(self, name: str, position: int = 1, managed: bool = False) -> str:
        with self._lock:
            role_id = self._id()
            self.roles[role_id] = {"id": role_id, "name": name, "position": position, "managed": managed,
                                   "permissions": "0", "color": 0, "hoist": False, "mentionable": False}
            return role_id

    def add_member(self, user_id: str | None = None) -> str:
        with self._lock:
            user_id = user_id or self._id()
            self.members[user_id] = set()
            return user_id

    def remove_member(self, user_id: str) -> None:
        with self._lock:
            self.members.pop(user_id, None)

    def roles_of(self, user_id: str) -> set[str]:
        with self._lock:
            return set(self.members.get(user_id, set()))

    def add_forum(self, name: str = "reviews", tags: tuple[str, ...] = ()) -> str:
        with self._lock:
            channel_id = self._id()
            self.channels[channel_id] = {
                "id": channel_id, "type": 15, "guild_id": self.guild_id, "name": name, "flags": 0,
                "available_tags": [{"id": self._id(), "name": tag, "moderated": False, "emoji_id": None,
                                    "emoji_name": None} for tag in tags],
            }
            return channel_id

    def archive(self, thread_id: str) -> None:
        with self._lock:
            self.channels[thread_id]["thread_metadata"]["archived"] = True

    def threads_of(self, forum_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(c) for c in self.channels.values() if c.get("parent_id") == forum_id]

    def writes(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.requests if r["method"] != "GET"]

    def reset_log(self) -> None:
        with self._lock:
            self.requests.clear()

    # ---- rate limits ---------------------------------------------------------------------------------------------

    def _limit(self, bucket_name: str, major: str) -> tuple[Response | None, dict[str, str]]:
        now = self.clock()
        self._global = [t for t in self._global if now - t < 1.0]
        if len(self._global) >= self.global_per_second:
            retry = round(1.0 - (now - self._global[0]), 3)
            headers = {"Retry-After": str(max(1, int(retry + 0.999))), "X-RateLimit-Global": "true",
                       "X-RateLimit-Scope": "global"}
            return JSONResponse({"message": "You are being rate limited.", "retry_after": retry, "global": True},
                                status_code=429, headers=headers), headers
        bucket = self._buckets.get((bucket_name, major))
        if bucket is None or now >= bucket.reset_at:
            bucket = Bucket(self.route_limit, self.route_window, self.route_limit, now + self.route_window)
            self._buckets[(bucket_name, major)] = bucket
        reset_after = max(0.0, bucket.reset_at - now)
        headers = {
            "X-RateLimit-Limit": str(bucket.limit),
            "X-RateLimit-Bucket": bucket_name,
            "X-RateLimit-Reset": f"{bucket.reset_at:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
        }
        if bucket.remaining <= 0:
            headers.update({"X-RateLimit-Remaining": "0", "X-RateLimit-Scope": "user",
                            "Retry-After": str(max(1, int(reset_after + 0.999)))})
            return JSONResponse({"message": "You are being rate limited.", "retry_after": round(reset_after, 3),
                                 "global": False}, status_code=429, headers=headers), headers
        bucket.remaining -= 1
        self._global.append(now)
        headers["X-RateLimit-Remaining"] = str(bucket.remaining)
        return None, headers

    # ---- HTTP ----------------------------------------------------------------------------------------------------

    def _build_app(self) -> Any:
        routes = [
            Route(f"{API}/guilds/{{guild}}/members/{{user}}", self._member, methods=["GET"]),
            Route(f"{API}/guilds/{{guild}}/members/{{user}}/roles/{{role}}", self._member_role, methods=["PUT", "DELETE"]),
            Route(f"{API}/guilds/{{guild}}/roles", self._roles, methods=["GET", "POST"]),
            Route(f"{API}/channels/{{channel}}", self._channel, methods=["GET", "PATCH", "DELETE"]),
            Route(f"{API}/channels/{{channel}}/threads", self._create_thread, methods=["POST"]),
            Route(f"{API}/channels/{{channel}}/messages/{{message}}", self._message, methods=["GET", "PATCH", "DELETE"]),
        ]
        app = Starlette(routes=routes)

        async def unknown(request: Request, exc: Exception) -> Response:
            return _error(404, 0, "404: Not Found")

        app.add_exception_handler(404, unknown)  # type: ignore[arg-type]
        app.add_exception_handler(405, unknown)  # type: ignore[arg-type]
        outer = self

        async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            request = Request(scope, receive)
            raw = await request.body()
            record = {"method": request.method, "path": request.url.path, "body": _json(raw), "status": 0,
                      "time": time.time(), "user_agent": request.headers.get("user-agent", ""),
                      "audit_reason": request.headers.get("x-audit-log-reason")}
            bucket, major = _bucket_of(request.method, request.url.path)
            with outer._lock:
                # logged before answering, so a client that has its answer always finds its request in the log
                outer.requests.append(record)
                if request.headers.get("authorization") != f"Bot {outer.bot_token}":
                    response: Response | None = _error(401, 0, "401: Unauthorized")
                    headers: dict[str, str] = {}
                else:
                    response, headers = outer._limit(bucket, major)
            if response is None:

                async def replay() -> dict[str, Any]:
                    return {"type": "http.request", "body": raw, "more_body": False}

                async def capture(message: dict[str, Any]) -> None:
                    if message["type"] == "http.response.start":
                        record["status"] = message["status"]
                        message = {**message, "headers": list(message.get("headers", []))
                                   + [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
                        if message["status"] in (401, 403, 429):
                            with outer._lock:
                                outer.invalid_requests += 1
                    await send(message)

                scope["state"] = {"body": record["body"]}
                await app(scope, replay, capture)
            else:
                record["status"] = response.status_code
                with outer._lock:
                    if response.status_code in (401, 403, 429):
                        outer.invalid_requests += 1
                await response(scope, receive, send)

        return guarded

    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        body = request.scope.get("state", {}).get("body")
        return body if isinstance(body, dict) else {}

    async def _member(self, request: Request) -> Response:
        with self._lock:
            user = request.path_params["user"]
            if request.path_params["guild"] != self.guild_id:
                return _error(404, 10004, "Unknown Guild")
            if user not in self.members:
                return _error(404, 10007, "Unknown Member")
            return JSONResponse({"user": {"id": user, "username": f"user{user[-4:]}"}, "roles": sorted(self.members[user]),
                                 "nick": None, "joined_at": "2026-01-01T00:00:00+00:00", "deaf": False, "mute": False})

    async def _member_role(self, request: Request) -> Response:
        with self._lock:
            user, role = request.path_params["user"], request.path_params["role"]
            if request.path_params["guild"] != self.guild_id:
                return _error(404, 10004, "Unknown Guild")
            if role not in self.roles:
                return _error(404, 10011, "Unknown Role")
            if user not in self.members:
                return _error(404, 10007, "Unknown Member")
            if self.roles[role]["position"] >= self.roles[self.bot_role]["position"]:
                return _error(403, 50013, "Missing Permissions")
            if request.method == "PUT":
                self.members[user].add(role)
            else:
                self.members[user].discard(role)
            return Response(status_code=204)

    async def _roles(self, request: Request) -> Response:
        body = self._body(request)
        with self._lock:
            if request.method == "GET":
                return JSONResponse(sorted(self.roles.values(), key=lambda r: r["position"]))
            role_id = self.add_role(str(body.get("name") or "new role"), position=1)
            return JSONResponse(self.roles[role_id])

    async def _channel(self, request: Request) -> Response:
        body = self._body(request)
        with self._lock:
            channel = self.channels.get(request.path_params["channel"])
            if channel is None:
                return _error(404, 10003, "Unknown Channel")
            if request.method == "GET":
                return JSONResponse(channel)
            if request.method == "DELETE":
                del self.channels[channel["id"]]
                return JSONResponse(channel)
            meta = channel.get("thread_metadata")
            if meta is None:
                return _error(400, 50024, "Cannot execute action on this channel type")
            for key in ("archived", "locked"):
                if key in body:
                    meta[key] = bool(body[key])
            for key in ("name", "applied_tags"):
                if key in body:
                    channel[key] = body[key]
            return JSONResponse(channel)

    def _check_message(self, body: dict[str, Any]) -> Response | None:
        content = body.get("content") or ""
        if len(content) > 2000:
            return _error(400, 50035, "Invalid Form Body",
                          errors={"content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH",
                                                           "message": "Must be 2000 or fewer in length."}]}})
        allowed = body.get("allowed_mentions")
        parses = None if allowed is None else set(allowed.get("parse") or []) | ({"users"} if allowed.get("users") else set())
        mentions = MENTION.findall(content)
        if mentions and (parses is None or parses):
            self.pings.append({"content": content, "allowed_mentions": allowed})
        return None

    async def _create_thread(self, request: Request) -> Response:
        body = self._body(request)
        with self._lock:
            forum = self.channels.get(request.path_params["channel"])
            if forum is None:
                return _error(404, 10003, "Unknown Channel")
            if forum["type"] != 15:
                return _error(400, 50024, "Cannot execute action on this channel type")
            name = str(body.get("name") or "")
            message = body.get("message")
            if not 1 <= len(name) <= 100 or not isinstance(message, dict):
                return _error(400, 50035, "Invalid Form Body", errors={"name": {"_errors": [{"code": "BASE_TYPE_REQUIRED"}]}})
            invalid = self._check_message(message)
            if invalid is not None:
                return invalid
            tag_ids = {t["id"] for t in forum["available_tags"]}
            tags = [t for t in body.get("applied_tags") or [] if t in tag_ids]
            thread_id = self._id()
            thread = {"id": thread_id, "type": 11, "guild_id": self.guild_id, "parent_id": forum["id"], "name": name,
                      "applied_tags": tags, "message_count": 1, "owner_id": "bot",
                      "thread_metadata": {"archived": False, "locked": False, "auto_archive_duration": 10080}}
            self.channels[thread_id] = thread
            self.messages[thread_id] = {"id": thread_id, "channel_id": thread_id, "content": message.get("content", ""),
                                        "embeds": message.get("embeds", []), "edited_timestamp": None}
            return JSONResponse({**thread, "message": self.messages[thread_id]}, status_code=201)

    async def _message(self, request: Request) -> Response:
        body = self._body(request)
        with self._lock:
            channel = self.channels.get(request.path_params["channel"])
            message = self.messages.get(request.path_params["message"])
            if channel is None:
                return _error(404, 10003, "Unknown Channel")
            if message is None or message["channel_id"] != channel["id"]:
                return _error(404, 10008, "Unknown Message")
            if request.method == "GET":
                return JSONResponse(message)
            if request.method == "DELETE":
                del self.messages[message["id"]]
                return Response(status_code=204)
            if channel.get("thread_metadata", {}).get("archived"):
                return _error(400, 50083, "Thread is archived")
            invalid = self._check_message(body)
            if invalid is not None:
                return invalid
            for key in ("content", "embeds"):
                if key in body:
                    message[key] = body[key]
            message["edited_timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
            return JSONResponse(message)


def _bucket_of(method: str, path: str) -> tuple[str, str]:
    """Discord's bucket ids are opaque hashes; the sandbox derives one per route template and method."""
    parts = path.removeprefix(API).strip("/").split("/")
    major = parts[1] if len(parts) > 1 else ""
    template = "/".join(p if not p.isdigit() else ":id" for p in parts)
    return f"{method}:{template}"[:64].replace("/", "."), major


def _json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None
