"""A Discord-shaped REST v10 API on loopback: guild roles, members and forum threads, with Discord's rate limits,
plus the OAuth2 authorization-code flow and the Bearer-token routes that Linked Roles and guild joins need.

Built from ``shared/specs/discord`` (CONNECTOR-NOTES.md, docs-excerpts/rate-limits.mdx, the OpenAPI subset):
``Authorization: Bot <token>`` (401 ``{"message": "401: Unauthorized", "code": 0}``), per-route buckets keyed by the
bucket and the top-level resource (guild or channel id) with ``X-RateLimit-Limit/Remaining/Reset/Reset-After/Bucket``
on every answer, 429 ``{"message", "retry_after", "global"}`` with ``Retry-After`` and ``X-RateLimit-Scope``, a 50/s
global gate, error codes 10007 (unknown member), 10011 (unknown role), 50013 (role above the bot's highest role),
50083 (edit in an archived thread), 50035 (invalid form body), and a count of the 401/403/429 answers Discord's
invalid-request limit is built on. Messages that would ping (``@everyone``, user or role mentions without
``allowed_mentions: {"parse": []}``) are recorded in ``pings``.

OAuth2 (docs ``topics/oauth2.mdx``, RFC 6749 where Discord's docs are silent): the consent page at
``/oauth2/authorize`` (not under ``/api``), the token endpoint at ``/api/oauth2/token`` and ``/api/v10/oauth2/token``
(form-encoded only; client authentication by HTTP Basic or ``client_id``/``client_secret`` form fields; single-use
codes valid 10 minutes; 7-day access tokens; rotating refresh tokens; errors ``invalid_client`` 401, ``invalid_grant``
/ ``invalid_request`` / ``unsupported_grant_type`` 400), revocation at ``/api[/v10]/oauth2/token/revoke``. Bearer
routes: ``GET /users/@me`` (scope ``identify``), ``GET /oauth2/@me``, ``GET/PUT/DELETE
/users/@me/applications/{app}/role-connection`` (scope ``role_connections.write``; 50026 without it). Bot routes added
for the same features: role-connection metadata records, Add Guild Member (201 new member, 204 already a member and
``roles`` ignored; 50025 bad OAuth2 token, 50026 token without ``guilds.join``), Create Message (40058 in a forum,
an archived thread is unarchived unless locked, 50083 when locked), and ``REQUIRE_TAG`` forums (40067).
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from sandbox.faults import FaultInjector, Knobs

API = "/api/v10"
MENTION = re.compile(r"@everyone|@here|<@&?!?\d+>")
#: The OAuth2 page routes and token endpoints: no bot token, no bot buckets (client authentication is in the form).
AUTHORIZE_PATH = "/oauth2/authorize"
TOKEN_PATHS = ("/api/oauth2/token", f"{API}/oauth2/token")
REVOKE_PATHS = ("/api/oauth2/token/revoke", f"{API}/oauth2/token/revoke")
#: Routes that take ``Authorization: Bearer <user token>``; ``GET /users/@me`` also takes the bot token.
BEARER_ROUTE = re.compile(rf"^{re.escape(API)}/(users/@me(/.*)?|oauth2/@me)/?$")
#: Scopes the sandbox consent page knows, with the line Discord's consent screen shows for each.
SCOPES = {
    "identify": "Access your username, avatar, and banner",
    "email": "Access your email address",
    "guilds": "Know what servers you're in",
    "guilds.join": "Join servers for you",
    "guilds.members.read": "Read your member info (nickname, avatar, roles, etc...) for servers you belong to",
    "role_connections.write": "Update your connection and metadata for this app",
}
CODE_TTL = 600.0  # seconds an authorization code stays exchangeable (RFC 6749 §4.1.2 recommends at most 10 min)
ACCESS_TTL = 604800  # Discord's ``expires_in``: 7 days
REQUIRE_TAG = 1 << 4  # channel flag on forum/media channels
METADATA_KEY = re.compile(r"^[a-z0-9_]{1,50}$")
INVALID_SCOPE = "The requested scope is invalid, unknown, or malformed."
ACCESS_DENIED = "The resource owner or authorization server denied the request."


@dataclass
class Bucket:
    limit: int
    window: float
    remaining: int
    reset_at: float


def _error(status: int, code: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"message": message, "code": code, **extra}, status_code=status)


def _form_error(errors: dict[str, Any]) -> JSONResponse:
    return _error(400, 50035, "Invalid Form Body", errors=errors)


def _field_error(code: str, message: str) -> dict[str, Any]:
    return {"_errors": [{"code": code, "message": message}]}


def _oauth_error(
    status: int, error: str, description: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"error": error} if description is None else {"error": error, "error_description": description}
    return JSONResponse(
        body, status_code=status, headers={"Cache-Control": "no-store", "Pragma": "no-cache", **(headers or {})}
    )


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


class DiscordSandbox:
    """One guild, its roles and members, its forum channels, and one OAuth2 application with its Discord accounts."""

    def __init__(
        self,
        bot_token: str = "sandbox-bot-token",
        guild_id: str = "800000000000000001",
        knobs: Knobs | None = None,
        route_limit: int = 10,
        route_window: float = 10.0,
        global_per_second: int = 50,
        clock: Callable[[], float] = time.time,
        client_id: str = "700000000000000001",
        client_secret: str = "sandbox-client-secret",
    ) -> None:
        self.bot_token = bot_token
        self.guild_id = guild_id
        self.knobs = knobs or Knobs()
        self.route_limit, self.route_window = route_limit, route_window
        self.global_per_second = global_per_second
        self.clock = clock
        self.client_id, self.client_secret = client_id, client_secret
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
        self._gates: dict[str, list[float]] = {}
        # ---- OAuth2 application state
        self.redirect_uris: set[str] = set()
        self.users: dict[str, dict[str, Any]] = {}
        self.browser_user: str | None = None
        self.metadata_records: list[dict[str, Any]] = []
        self.token_requests = 0
        self._nicks: dict[str, str] = {}
        self._codes: dict[str, dict[str, Any]] = {}
        self._access: dict[str, dict[str, Any]] = {}
        self._refresh: dict[str, dict[str, Any]] = {}
        self._consents: dict[str, set[str]] = {}
        self._role_connections: dict[str, dict[str, Any]] = {}
        self._issued: list[str] = []
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
            self.roles[role_id] = {
                "id": role_id,
                "name": name,
                "position": position,
                "managed": managed,
                "permissions": "0",
                "color": 0,
                "hoist": False,
                "mentionable": False,
            }
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

    def add_forum(self, name: str = "reviews", tags: tuple[str, ...] = (), require_tag: bool = False) -> str:
        with self._lock:
            channel_id = self._id()
            self.channels[channel_id] = {
                "id": channel_id,
                "type": 15,
                "guild_id": self.guild_id,
                "name": name,
                "flags": REQUIRE_TAG if require_tag else 0,
                "available_tags": [
                    {"id": self._id(), "name": tag, "moderated": False, "emoji_id": None, "emoji_name": None}
                    for tag in tags
                ],
            }
            return channel_id

    def add_text_channel(self, name: str = "general") -> str:
        with self._lock:
            channel_id = self._id()
            self.channels[channel_id] = {
                "id": channel_id,
                "type": 0,
                "guild_id": self.guild_id,
                "name": name,
                "flags": 0,
                "last_message_id": None,
            }
            return channel_id

    def archive(self, thread_id: str, locked: bool = False) -> None:
        with self._lock:
            self.channels[thread_id]["thread_metadata"]["archived"] = True
            if locked:
                self.channels[thread_id]["thread_metadata"]["locked"] = True

    def threads_of(self, forum_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(c) for c in self.channels.values() if c.get("parent_id") == forum_id]

    def writes(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.requests if r["method"] != "GET"]

    def reset_log(self) -> None:
        with self._lock:
            self.requests.clear()

    def add_user(self, username: str, user_id: str | None = None, email: str | None = None) -> str:
        """A Discord account (not necessarily a guild member: ``add_member`` is guild membership)."""
        with self._lock:
            user_id = user_id or self._id()
            self.users[user_id] = {
                "id": user_id,
                "username": username,
                "global_name": username,
                "discriminator": "0",
                "avatar": None,
                "email": email or f"{username}@users.discord.invalid",
            }
            return user_id

    def expire_tokens(self) -> None:
        """Every access token issued so far is now expired (refresh tokens keep working)."""
        with self._lock:
            now = self.clock()
            for token in self._access.values():
                token["expires_at"] = min(token["expires_at"], now)

    def issued_tokens(self) -> list[str]:
        """Every access and refresh token handed out so far, including expired, rotated and revoked ones."""
        with self._lock:
            return list(self._issued)

    def role_connection(self, user_id: str) -> dict[str, Any] | None:
        with self._lock:
            stored = self._role_connections.get(user_id)
            return None if stored is None else json.loads(json.dumps(stored))

    def _public_user(self, user_id: str) -> dict[str, Any]:
        user = self.users.get(user_id)
        if user is None:
            return {
                "id": user_id,
                "username": f"user{user_id[-4:]}",
                "global_name": None,
                "discriminator": "0",
                "avatar": None,
            }
        return {k: user[k] for k in ("id", "username", "global_name", "discriminator", "avatar")}

    def _bot_user(self) -> dict[str, Any]:
        return {
            "id": self.client_id,
            "username": self.roles[self.bot_role]["name"],
            "global_name": None,
            "discriminator": "0",
            "avatar": None,
            "bot": True,
        }

    def _member_object(self, user_id: str) -> dict[str, Any]:
        return {
            "user": self._public_user(user_id),
            "roles": sorted(self.members[user_id]),
            "nick": self._nicks.get(user_id),
            "joined_at": "2026-01-01T00:00:00+00:00",
            "deaf": False,
            "mute": False,
        }

    # ---- rate limits ---------------------------------------------------------------------------------------------

    def _limit(self, bucket_name: str, major: str, gate: str = "bot") -> tuple[Response | None, dict[str, str]]:
        """``gate`` is who the global 50/s limit counts for: the bot, or one user's Bearer tokens."""
        now = self.clock()
        stamps = self._gates[gate] = [t for t in self._gates.get(gate, []) if now - t < 1.0]
        if len(stamps) >= self.global_per_second:
            retry = round(1.0 - (now - stamps[0]), 3)
            headers = {
                "Retry-After": str(max(1, int(retry + 0.999))),
                "X-RateLimit-Global": "true",
                "X-RateLimit-Scope": "global",
            }
            return JSONResponse(
                {"message": "You are being rate limited.", "retry_after": retry, "global": True},
                status_code=429,
                headers=headers,
            ), headers
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
            headers.update(
                {
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Scope": "user",
                    "Retry-After": str(max(1, int(reset_after + 0.999))),
                }
            )
            return JSONResponse(
                {"message": "You are being rate limited.", "retry_after": round(reset_after, 3), "global": False},
                status_code=429,
                headers=headers,
            ), headers
        bucket.remaining -= 1
        stamps.append(now)
        headers["X-RateLimit-Remaining"] = str(bucket.remaining)
        return None, headers

    # ---- HTTP ----------------------------------------------------------------------------------------------------

    def _build_app(self) -> Any:
        role_connection = f"{API}/users/@me/applications/{{app}}/role-connection"
        routes = [
            Route(f"{API}/guilds/{{guild}}/members/{{user}}", self._member, methods=["GET", "PUT"]),
            Route(
                f"{API}/guilds/{{guild}}/members/{{user}}/roles/{{role}}", self._member_role, methods=["PUT", "DELETE"]
            ),
            Route(f"{API}/guilds/{{guild}}/roles", self._roles, methods=["GET", "POST"]),
            Route(f"{API}/channels/{{channel}}", self._channel, methods=["GET", "PATCH", "DELETE"]),
            Route(f"{API}/channels/{{channel}}/threads", self._create_thread, methods=["POST"]),
            Route(f"{API}/channels/{{channel}}/messages", self._create_message, methods=["POST"]),
            Route(f"{API}/channels/{{channel}}/messages", self._list_messages, methods=["GET"]),
            Route(f"{API}/guilds/{{guild}}/threads/active", self._active_threads, methods=["GET"]),
            Route(
                f"{API}/channels/{{channel}}/messages/{{message}}", self._message, methods=["GET", "PATCH", "DELETE"]
            ),
            Route(f"{API}/applications/{{app}}/role-connections/metadata", self._metadata, methods=["GET", "PUT"]),
            Route(AUTHORIZE_PATH, self._authorize, methods=["GET", "POST"]),
            *[Route(path, self._token, methods=["POST"]) for path in TOKEN_PATHS],
            *[Route(path, self._revoke, methods=["POST"]) for path in REVOKE_PATHS],
            Route(f"{API}/users/@me", self._me, methods=["GET"]),
            Route(f"{API}/oauth2/@me", self._oauth_me, methods=["GET"]),
            Route(role_connection, self._role_connection, methods=["GET", "PUT", "DELETE"]),
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
            path = request.url.path
            record = {
                "method": request.method,
                "path": path,
                "body": _json(raw),
                "status": 0,
                "time": time.time(),
                "user_agent": request.headers.get("user-agent", ""),
                "audit_reason": request.headers.get("x-audit-log-reason"),
            }
            state: dict[str, Any] = {"body": record["body"], "raw": raw}
            bucket, major = _bucket_of(request.method, path)
            auth = request.headers.get("authorization") or ""
            is_bot = auth == f"Bot {outer.bot_token}"
            response: Response | None = None
            headers: dict[str, str] = {}
            with outer._lock:
                # logged before answering, so a client that has its answer always finds its request in the log
                outer.requests.append(record)
                if path.rstrip("/") in (AUTHORIZE_PATH, *TOKEN_PATHS, *REVOKE_PATHS):
                    pass  # the consent page and the token endpoint authenticate the client themselves
                elif BEARER_ROUTE.match(path) and not (is_bot and path.rstrip("/") == f"{API}/users/@me"):
                    token = outer._bearer(auth)
                    if token is None:
                        response = _error(401, 0, "401: Unauthorized")
                    else:
                        state["token"] = token
                        response, headers = outer._limit(
                            bucket, f"bearer:{token['access_token']}", gate=f"bearer:{token['user']}"
                        )
                elif not is_bot:
                    response = _error(401, 0, "401: Unauthorized")
                else:
                    response, headers = outer._limit(bucket, major)
            if response is None:

                async def replay() -> dict[str, Any]:
                    return {"type": "http.request", "body": raw, "more_body": False}

                async def capture(message: dict[str, Any]) -> None:
                    if message["type"] == "http.response.start":
                        record["status"] = message["status"]
                        message = {
                            **message,
                            "headers": list(message.get("headers", []))
                            + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
                        }
                        if message["status"] in (401, 403, 429):
                            with outer._lock:
                                outer.invalid_requests += 1
                    await send(message)

                scope["state"] = state
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

    @staticmethod
    def _form(request: Request) -> dict[str, list[str]]:
        """A form-encoded body, parsed by hand (python-multipart is not a dependency); other content types: empty."""
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            return {}
        raw = request.scope.get("state", {}).get("raw", b"")
        return parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)

    def _bearer(self, header: str) -> dict[str, Any] | None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value:
            return None
        token = self._access.get(value.strip())
        if token is None or self.clock() >= token["expires_at"]:
            return None
        return token

    # ---- bot routes ----------------------------------------------------------------------------------------------

    async def _member(self, request: Request) -> Response:
        if request.method == "PUT":
            return self._add_member(request)
        with self._lock:
            user = request.path_params["user"]
            if request.path_params["guild"] != self.guild_id:
                return _error(404, 10004, "Unknown Guild")
            if user not in self.members:
                return _error(404, 10007, "Unknown Member")
            return JSONResponse(self._member_object(user))

    def _add_member(self, request: Request) -> Response:
        """Add Guild Member: 201 + member when new, 204 (and ``roles``/``nick`` not applied) when already a member."""
        body = self._body(request)
        with self._lock:
            user = request.path_params["user"]
            if request.path_params["guild"] != self.guild_id:
                return _error(404, 10004, "Unknown Guild")
            access_token = body.get("access_token")
            if not isinstance(access_token, str) or not access_token:
                return _form_error({"access_token": _field_error("BASE_TYPE_REQUIRED", "This field is required")})
            roles = body.get("roles") or []
            nick = body.get("nick")
            if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
                return _form_error({"roles": _field_error("BASE_TYPE_BAD_TYPE", "Must be an array of snowflakes.")})
            if nick is not None and (not isinstance(nick, str) or len(nick) > 32):
                return _form_error({"nick": _field_error("BASE_TYPE_MAX_LENGTH", "Must be 32 or fewer in length.")})
            token = self._access.get(access_token)
            if token is None or self.clock() >= token["expires_at"] or token["user"] != user:
                return _error(403, 50025, "Invalid OAuth2 access token")
            if "guilds.join" not in token["scopes"]:
                return _error(403, 50026, "Missing required OAuth2 scope")
            if user in self.members:
                return Response(status_code=204)  # documented: an existing member gets neither roles nor nick
            for role in roles:
                if role not in self.roles:
                    return _error(404, 10011, "Unknown Role")
                if self.roles[role]["position"] >= self.roles[self.bot_role]["position"]:
                    return _error(403, 50013, "Missing Permissions")
            self.members[user] = {r for r in roles if r != self.guild_id}
            if nick:
                self._nicks[user] = nick
            return JSONResponse(self._member_object(user), status_code=201)

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
            return _error(
                400,
                50035,
                "Invalid Form Body",
                errors={
                    "content": {
                        "_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]
                    }
                },
            )
        allowed = body.get("allowed_mentions")
        parses = (
            None
            if allowed is None
            else set(allowed.get("parse") or []) | ({"users"} if allowed.get("users") else set())
        )
        mentions = MENTION.findall(content)
        if mentions and (parses is None or parses):
            self.pings.append({"content": content, "allowed_mentions": allowed})
        return None

    def _new_message(self, message_id: str, channel_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": message_id,
            "type": 0,
            "channel_id": channel_id,
            "content": body.get("content") or "",
            "embeds": body.get("embeds") or [],
            "attachments": [],
            "mentions": [],
            "mention_roles": [],
            "mention_everyone": _pings_everyone(body),
            "pinned": False,
            "tts": False,
            "flags": 0,
            "components": [],
            "timestamp": _iso(self.clock()),
            "edited_timestamp": None,
            "author": self._bot_user(),
        }

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
                return _error(
                    400, 50035, "Invalid Form Body", errors={"name": {"_errors": [{"code": "BASE_TYPE_REQUIRED"}]}}
                )
            invalid = self._check_message(message)
            if invalid is not None:
                return invalid
            tag_ids = {t["id"] for t in forum["available_tags"]}
            tags = [t for t in body.get("applied_tags") or [] if t in tag_ids]
            if forum.get("flags", 0) & REQUIRE_TAG and not tags:
                return _error(400, 40067, "A tag is required to create a forum post in this channel")
            thread_id = self._id()
            thread = {
                "id": thread_id,
                "type": 11,
                "guild_id": self.guild_id,
                "parent_id": forum["id"],
                "name": name,
                "applied_tags": tags,
                "message_count": 1,
                "owner_id": "bot",
                "thread_metadata": {"archived": False, "locked": False, "auto_archive_duration": 10080},
            }
            self.channels[thread_id] = thread
            self.messages[thread_id] = self._new_message(thread_id, thread_id, message)
            return JSONResponse({**thread, "message": self.messages[thread_id]}, status_code=201)

    async def _create_message(self, request: Request) -> Response:
        """Create Message in a thread or text channel. A forum takes posts only (40058). Sending in an archived thread
        unarchives it unless it is locked (docs ``threads.mdx`` §Active & Archived Threads), then 50083."""
        body = self._body(request)
        with self._lock:
            channel = self.channels.get(request.path_params["channel"])
            if channel is None:
                return _error(404, 10003, "Unknown Channel")
            if channel["type"] in (15, 16):
                return _error(400, 40058, "Cannot send a message in a forum channel")
            if not (body.get("content") or body.get("embeds")):
                return _error(400, 50006, "Cannot send an empty message")
            meta = channel.get("thread_metadata")
            if meta is not None and meta.get("archived") and meta.get("locked"):
                return _error(400, 50083, "Thread is archived")
            invalid = self._check_message(body)
            if invalid is not None:
                return invalid
            if meta is not None:
                meta["archived"] = False
                channel["message_count"] = channel.get("message_count", 0) + 1
            message = self._new_message(self._id(), channel["id"], body)
            self.messages[message["id"]] = message
            channel["last_message_id"] = message["id"]
            return JSONResponse(message)

    async def _list_messages(self, request: Request) -> Response:
        """Get Channel Messages: newest first, ``limit`` 1..100 (default 50)."""
        with self._lock:
            channel = self.channels.get(request.path_params["channel"])
            if channel is None:
                return _error(404, 10003, "Unknown Channel")
            try:
                limit = int(request.query_params.get("limit", "50"))
            except ValueError:
                limit = 0
            if not 1 <= limit <= 100:
                return _error(400, 50035, "Invalid Form Body")
            found = [m for m in self.messages.values() if m["channel_id"] == channel["id"]]
            found.sort(key=lambda m: int(m["id"]), reverse=True)
            return JSONResponse(found[:limit])

    async def _active_threads(self, request: Request) -> Response:
        """List Active Guild Threads: every unarchived thread of the guild, ``{"threads": [...], "members": []}``."""
        with self._lock:
            if request.path_params["guild"] != self.guild_id:
                return _error(404, 10004, "Unknown Guild")
            threads = [
                dict(c)
                for c in self.channels.values()
                if c.get("thread_metadata") is not None and not c["thread_metadata"].get("archived")
            ]
            return JSONResponse({"threads": threads, "members": []})

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
                if "message_count" in channel:
                    channel["message_count"] = max(0, channel["message_count"] - 1)
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

    async def _metadata(self, request: Request) -> Response:
        """Role-connection metadata records (bot token): ``PUT`` replaces the whole set (at most 5)."""
        body = request.scope.get("state", {}).get("body")
        with self._lock:
            if request.path_params["app"] != self.client_id:
                return _error(404, 10002, "Unknown Application")
            if request.method == "GET":
                return JSONResponse(self.metadata_records)
            records = [] if body is None else body
            if not isinstance(records, list):
                return _form_error(_field_error("BASE_TYPE_ARRAY", "Must be an array."))
            if len(records) > 5:
                return _form_error(_field_error("BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length."))
            errors: dict[str, Any] = {}
            seen: set[str] = set()
            for index, record in enumerate(records):
                problems = _metadata_problems(record, seen)
                if problems:
                    errors[str(index)] = problems
                elif isinstance(record, dict):
                    seen.add(record["key"])
            if errors:
                return _form_error(errors)
            fields = ("type", "key", "name", "name_localizations", "description", "description_localizations")
            self.metadata_records = [{k: r[k] for k in fields if k in r} for r in records]
            return JSONResponse(self.metadata_records)

    # ---- OAuth2: consent page ------------------------------------------------------------------------------------

    async def _authorize(self, request: Request) -> Response:
        """The consent page (GET) and its form (POST). A bad ``client_id`` or ``redirect_uri`` is shown to the user and
        never redirected (RFC 6749 §4.1.2.1); other problems go back to the redirect URI as ``error=...``."""
        if request.method == "GET":
            params = dict(request.query_params)
        else:
            params = {k: v[0] for k, v in self._form(request).items()}
        with self._lock:
            if params.get("client_id") != self.client_id:
                return _page("Invalid OAuth2 client_id", "Unknown application.", status=400)
            given = params.get("redirect_uri")
            if given is None and len(self.redirect_uris) == 1:
                redirect_uri = next(iter(self.redirect_uris))
            elif given in self.redirect_uris:
                redirect_uri = given
            else:
                return _page(
                    "Invalid OAuth2 redirect_uri",
                    "The redirect_uri is not registered for this application.",
                    status=400,
                )
            state = params.get("state")
            if params.get("response_type") != "code":
                return _redirect(
                    redirect_uri,
                    state,
                    error="unsupported_response_type",
                    error_description="The authorization server does not support obtaining an "
                    "authorization code using this method.",
                )
            scopes = params.get("scope", "").split()
            if not scopes or any(s not in SCOPES for s in scopes):
                return _redirect(redirect_uri, state, error="invalid_scope", error_description=INVALID_SCOPE)
            user = self.browser_user if self.browser_user in self.users else None
            if user is None:
                return _page("Log in", "You need to log in to Discord to continue to this application.")
            scopes = list(dict.fromkeys(scopes))
            if request.method == "GET":
                if params.get("prompt") == "none" and set(scopes) <= self._consents.get(user, set()):
                    return self._issue_code(user, scopes, redirect_uri, given is not None, state)
                return self._consent_page(user, scopes, params)
            decision = params.get("decision")
            if decision == "cancel":
                return _redirect(redirect_uri, state, error="access_denied", error_description=ACCESS_DENIED)
            if decision != "authorize":
                return _page("Invalid request", "Choose Authorize or Cancel.", status=400)
            self._consents.setdefault(user, set()).update(scopes)
            return self._issue_code(user, scopes, redirect_uri, given is not None, state)

    def _issue_code(
        self, user: str, scopes: list[str], redirect_uri: str, redirect_given: bool, state: str | None
    ) -> Response:
        code = secrets.token_urlsafe(22)
        self._codes[code] = {
            "user": user,
            "scopes": scopes,
            "redirect_uri": redirect_uri,
            "redirect_given": redirect_given,
            "expires_at": self.clock() + CODE_TTL,
            "used": False,
            "family": None,
        }
        return _redirect(redirect_uri, state, code=code)

    def _consent_page(self, user: str, scopes: list[str], params: dict[str, str]) -> Response:
        app_name = html.escape(self.roles[self.bot_role]["name"])
        lines = "".join(
            f'<li data-scope="{html.escape(s)}">{html.escape(SCOPES[s])} ({html.escape(s)})</li>' for s in scopes
        )
        keep = ("client_id", "response_type", "scope", "state", "redirect_uri", "prompt")
        hidden = "".join(
            f'<input type="hidden" name="{k}" value="{html.escape(params[k], quote=True)}">'
            for k in keep
            if k in params
        )
        body = (
            f"<p>Signed in as <strong>{html.escape(self.users[user]['username'])}</strong></p>"
            f"<p>{app_name} wants to:</p><ul>{lines}</ul>"
            f'<form method="post" action="{AUTHORIZE_PATH}">{hidden}'
            '<button name="decision" value="authorize">Authorize</button>'
            '<button name="decision" value="cancel">Cancel</button></form>'
        )
        return _page("An external application wants to access your Discord account", body, raw=True)

    # ---- OAuth2: token endpoint ----------------------------------------------------------------------------------

    def _client_auth(self, request: Request, form: dict[str, list[str]]) -> Response | None:
        """HTTP Basic (``client_id:client_secret``, each form-urlencoded, RFC 6749 §2.3.1) or the two form fields."""
        header = request.headers.get("authorization") or ""
        scheme, _, value = header.partition(" ")
        field_id, field_secret = (form.get("client_id") or [None])[0], (form.get("client_secret") or [None])[0]
        if scheme.lower() == "basic":
            unauthorized = _oauth_error(401, "invalid_client", headers={"WWW-Authenticate": 'Basic realm="discord"'})
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return unauthorized
            basic_id, sep, basic_secret = decoded.partition(":")
            basic_id, basic_secret = unquote_plus(basic_id), unquote_plus(basic_secret)
            if not sep or basic_id != self.client_id or not secrets.compare_digest(basic_secret, self.client_secret):
                return unauthorized
            if field_id not in (None, basic_id) or field_secret not in (None, basic_secret):
                return unauthorized
            return None
        if (
            field_id != self.client_id
            or field_secret is None
            or not secrets.compare_digest(field_secret, self.client_secret)
        ):
            return _oauth_error(401, "invalid_client")
        return None

    def _issue_tokens(self, user: str, scopes: list[str], family: str) -> dict[str, Any]:
        access, refresh = secrets.token_urlsafe(22), secrets.token_urlsafe(22)
        self._access[access] = {
            "access_token": access,
            "user": user,
            "scopes": list(scopes),
            "family": family,
            "expires_at": self.clock() + ACCESS_TTL,
        }
        self._refresh[refresh] = {"user": user, "scopes": list(scopes), "family": family}
        self._issued += [access, refresh]
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": ACCESS_TTL,
            "refresh_token": refresh,
            "scope": " ".join(scopes),
        }

    def _revoke_family(self, family: str | None) -> None:
        if family is None:
            return
        for store in (self._access, self._refresh):
            for key in [k for k, v in store.items() if v["family"] == family]:
                del store[key]

    async def _token(self, request: Request) -> Response:
        form = self._form(request)
        with self._lock:
            self.token_requests += 1
            if any(len(values) > 1 for values in form.values()):
                return _oauth_error(400, "invalid_request", "Parameters may not be repeated.")
            unauthorized = self._client_auth(request, form)
            if unauthorized is not None:
                return unauthorized
            params = {k: v[0] for k, v in form.items()}
            grant_type = params.get("grant_type")
            ok = {"Cache-Control": "no-store", "Pragma": "no-cache"}
            if grant_type == "authorization_code":
                if not params.get("code"):
                    return _oauth_error(400, "invalid_request", 'Missing "code" in request.')
                code = self._codes.get(params["code"])
                if code is None or self.clock() >= code["expires_at"]:
                    return _oauth_error(400, "invalid_grant", 'Invalid "code" in request.')
                if code["used"]:
                    self._revoke_family(code["family"])  # RFC 6749 §4.1.2: a replayed code revokes its tokens
                    return _oauth_error(400, "invalid_grant", 'Invalid "code" in request.')
                sent = params.get("redirect_uri")
                if (code["redirect_given"] or sent is not None) and sent != code["redirect_uri"]:
                    return _oauth_error(400, "invalid_grant", 'Invalid "redirect_uri" in request.')
                code["used"], code["family"] = True, secrets.token_hex(8)
                return JSONResponse(self._issue_tokens(code["user"], code["scopes"], code["family"]), headers=ok)
            if grant_type == "refresh_token":
                if not params.get("refresh_token"):
                    return _oauth_error(400, "invalid_request", 'Missing "refresh_token" in request.')
                refresh = self._refresh.get(params["refresh_token"])
                if refresh is None:
                    return _oauth_error(400, "invalid_grant", 'Invalid "refresh_token" in request.')
                scopes = refresh["scopes"]
                if params.get("scope"):
                    asked = params["scope"].split()
                    if any(s not in scopes for s in asked):  # RFC 6749 §6: never wider than the original grant
                        return _oauth_error(400, "invalid_scope", INVALID_SCOPE)
                    scopes = list(dict.fromkeys(asked))
                del self._refresh[params["refresh_token"]]  # rotation: the old refresh token stops working
                return JSONResponse(self._issue_tokens(refresh["user"], scopes, refresh["family"]), headers=ok)
            return _oauth_error(400, "unsupported_grant_type")

    async def _revoke(self, request: Request) -> Response:
        """RFC 7009. Discord: revoking either token revokes every token of that authorization."""
        form = self._form(request)
        with self._lock:
            unauthorized = self._client_auth(request, form)
            if unauthorized is not None:
                return unauthorized
            token = (form.get("token") or [""])[0]
            if not token:
                return _oauth_error(400, "invalid_request", 'Missing "token" in request.')
            found = self._access.get(token) or self._refresh.get(token)
            if found is not None:
                self._revoke_family(found["family"])
                self._consents.pop(found["user"], None)
            return JSONResponse({})

    # ---- Bearer routes -------------------------------------------------------------------------------------------

    @staticmethod
    def _token_of(request: Request) -> dict[str, Any] | None:
        return request.scope.get("state", {}).get("token")

    async def _me(self, request: Request) -> Response:
        token = self._token_of(request)
        with self._lock:
            if token is None:  # the bot token
                return JSONResponse(self._bot_user())
            if "identify" not in token["scopes"]:
                return _error(401, 0, "401: Unauthorized")
            user = self._public_user(token["user"])
            if "email" in token["scopes"]:
                user.update(email=self.users[token["user"]]["email"], verified=True)
            return JSONResponse(user)

    async def _oauth_me(self, request: Request) -> Response:
        token = self._token_of(request)
        assert token is not None  # the guard answers 401 without one
        with self._lock:
            answer: dict[str, Any] = {
                "application": {
                    "id": self.client_id,
                    "name": self.roles[self.bot_role]["name"],
                    "icon": None,
                    "description": "",
                    "type": None,
                    "bot_public": False,
                    "bot_require_code_grant": False,
                    "verify_key": "0" * 64,
                    "flags": 0,
                },
                "scopes": list(token["scopes"]),
                "expires": _iso(token["expires_at"]),
            }
            if "identify" in token["scopes"]:
                answer["user"] = self._public_user(token["user"])
            return JSONResponse(answer)

    async def _role_connection(self, request: Request) -> Response:
        token = self._token_of(request)
        assert token is not None
        body = request.scope.get("state", {}).get("body")
        with self._lock:
            if "role_connections.write" not in token["scopes"]:
                return _error(403, 50026, "Missing required OAuth2 scope")
            if request.path_params["app"] != self.client_id:
                return _error(404, 10002, "Unknown Application")
            user = token["user"]
            empty = {"platform_name": None, "platform_username": None, "metadata": {}}
            if request.method == "GET":
                return JSONResponse(self._role_connections.get(user, empty))
            if request.method == "DELETE":
                self._role_connections.pop(user, None)
                return Response(status_code=204)
            if not isinstance(body, dict):
                return _form_error(_field_error("DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType"))
            errors = self._role_connection_problems(body)
            if errors:
                return _form_error(errors)
            # values are stored stringified, as Python's str() does it: ``true`` becomes "True" (discord-api-docs#5755)
            metadata = {k: str(v) for k, v in (body.get("metadata") or {}).items()}
            self._role_connections[user] = {
                "platform_name": body.get("platform_name"),
                "platform_username": body.get("platform_username"),
                "metadata": metadata,
            }
            return JSONResponse(self._role_connections[user])

    def _role_connection_problems(self, body: dict[str, Any]) -> dict[str, Any]:
        errors: dict[str, Any] = {}
        for field, most in (("platform_name", 50), ("platform_username", 100)):
            value = body.get(field)
            if value is not None and not isinstance(value, str):
                errors[field] = _field_error("BASE_TYPE_STRING", "Must be a string.")
            elif value is not None and len(value) > most:
                errors[field] = _field_error("BASE_TYPE_MAX_LENGTH", f"Must be {most} or fewer in length.")
        metadata = body.get("metadata")
        if metadata is None:
            return errors
        if not isinstance(metadata, dict):
            errors["metadata"] = _field_error("DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
            return errors
        if len(metadata) > 5:
            errors["metadata"] = _field_error("BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
            return errors
        known = {r["key"] for r in self.metadata_records}
        problems: dict[str, Any] = {}
        for key, value in metadata.items():
            if key not in known:
                problems[key] = _field_error(
                    "APPLICATION_ROLE_CONNECTION_METADATA_KEY_INVALID",
                    f"Metadata key {key!r} is not registered for this application.",
                )
            elif not isinstance(value, (str, int)) or not 1 <= len(str(value)) <= 100:
                problems[key] = _field_error("BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        if problems:
            errors["metadata"] = problems
        return errors


def _page(title: str, body: str, status: int = 200, raw: bool = False) -> HTMLResponse:
    content = body if raw else f"<p>{html.escape(body)}</p>"
    return HTMLResponse(
        f'<!doctype html><html><head><meta charset="utf-8"><title>Sandbox Discord — '
        f"{html.escape(title)}</title></head><body><h1>Sandbox Discord — {html.escape(title)}</h1>"
        f"{content}</body></html>",
        status_code=status,
    )


def _redirect(redirect_uri: str, state: str | None, **params: str) -> Response:
    if state is not None:
        params["state"] = state
    return RedirectResponse(redirect_uri + ("&" if "?" in redirect_uri else "?") + urlencode(params), status_code=302)


def _pings_everyone(body: dict[str, Any]) -> bool:
    allowed = body.get("allowed_mentions")
    parsed = allowed is None or "everyone" in (allowed.get("parse") or [])
    return "@everyone" in (body.get("content") or "") and parsed


def _metadata_problems(record: Any, seen: set[str]) -> dict[str, Any]:
    if not isinstance(record, dict):
        return _field_error("DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
    problems: dict[str, Any] = {}
    kind = record.get("type")
    if isinstance(kind, bool) or not isinstance(kind, int) or not 1 <= kind <= 8:
        problems["type"] = _field_error("ENUM_TYPE_COERCE", f'Value "{kind}" is not a valid enum value.')
    key = record.get("key")
    if not isinstance(key, str) or not METADATA_KEY.match(key):
        problems["key"] = _field_error("BASE_TYPE_REGEX", "Must be 1-50 characters of a-z, 0-9 or _.")
    elif key in seen:
        problems["key"] = _field_error("DUPLICATE_KEY", "Keys must be unique.")
    for field, most in (("name", 100), ("description", 200)):
        value = record.get(field)
        if not isinstance(value, str) or not 1 <= len(value) <= most:
            problems[field] = _field_error("BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {most} in length.")
    return problems


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
