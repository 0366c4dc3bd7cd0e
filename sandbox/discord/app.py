"""The Discord sandbox's front door: logs every request (before answering, so a client that has its answer always
finds its request in the log), authenticates ``Authorization: Bot <token>`` (401 ``{"message": "401: Unauthorized",
"code": 0}``) or a Bearer token on the Bearer routes, applies the rate limits, adds the ``X-RateLimit-*`` headers to
the answer and counts the 401/403/429 answers Discord's invalid-request limit is built on. The OAuth2 consent page
and token endpoints authenticate the client themselves."""

from __future__ import annotations

import re
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from sandbox.discord.application import Application
from sandbox.discord.channels import Channels
from sandbox.discord.common import API, AUTHORIZE_PATH, BEARER_ROUTE, REVOKE_PATHS, TOKEN_PATHS, error, parse_json
from sandbox.discord.guild import Guild
from sandbox.discord.interactions import Interactions
from sandbox.discord.oauth2 import OAuth2, bearer_token
from sandbox.discord.rate_limit import RateLimiter, bucket_of
from sandbox.discord.reactions import Reactions
from sandbox.discord.role_connections import RoleConnections
from sandbox.discord.state import DiscordState

CONTROLLERS = (Guild, Channels, Reactions, RoleConnections, OAuth2, Application, Interactions)
#: Interaction webhooks: the token in the path is the credential (webhook.mdx:10); not bound by the global limit
#: (receiving-and-responding.mdx:436-437), limited per webhook and token (rate-limits.mdx:14-16).
WEBHOOK_ROUTE = re.compile(rf"^{re.escape(API)}/webhooks/(\d+)/([^/]+)(/.*)?$")
#: Routes a member's own Discord client may call (``Authorization: <client token>``): reacting.
MEMBER_ROUTE = re.compile(rf"^{re.escape(API)}/channels/\d+/messages/\d+/reactions/[^/]+/@me$")


class DiscordApp:
    """The ASGI app: the front door above a Starlette app holding every controller's routes."""

    def __init__(self, discord: DiscordState, limiter: RateLimiter) -> None:
        self.discord = discord
        self.limiter = limiter
        self.starlette = Starlette(routes=[r for controller in CONTROLLERS for r in controller(discord).routes()])

        async def unknown(request: Request, exc: Exception) -> Response:
            return error(404, 0, "404: Not Found")

        self.starlette.add_exception_handler(404, unknown)
        self.starlette.add_exception_handler(405, unknown)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        discord, app = self.discord, self.starlette
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        request = Request(scope, receive)
        raw = await request.body()
        path = request.url.path
        record = {
            "method": request.method,
            "path": path,
            "body": parse_json(raw),
            "status": 0,
            "time": time.time(),
            "user_agent": request.headers.get("user-agent", ""),
            "audit_reason": request.headers.get("x-audit-log-reason"),
        }
        state: dict[str, Any] = {"body": record["body"], "raw": raw}
        bucket, major = bucket_of(request.method, path)
        auth = request.headers.get("authorization") or ""
        is_bot = auth == f"Bot {discord.bot_token}"
        response: Response | None = None
        headers: dict[str, str] = {}
        with discord.lock:
            # logged before answering, so a client that has its answer always finds its request in the log
            discord.requests.append(record)
            webhook = WEBHOOK_ROUTE.match(path)
            member = discord.client_tokens.get(auth) if auth and MEMBER_ROUTE.match(path) else None
            if path.rstrip("/") in (AUTHORIZE_PATH, *TOKEN_PATHS, *REVOKE_PATHS):
                pass  # the consent page and the token endpoint authenticate the client themselves
            elif webhook is not None:
                # One bucket per route (the token is not part of its name), counted per webhook and token.
                route = bucket_of(request.method, path.replace(webhook.group(2), "token", 1))[0]
                response, headers = self.limiter.limit(
                    route,
                    f"{webhook.group(1)}:{webhook.group(2)}",
                    discord.clock(),
                    gate=f"webhook:{webhook.group(2)}",
                )
            elif member is not None:
                state["user"] = member
                response, headers = self.limiter.limit(bucket, major, discord.clock(), gate=f"user:{member}")
            elif BEARER_ROUTE.match(path) and not (is_bot and path.rstrip("/") == f"{API}/users/@me"):
                token = bearer_token(discord, auth)
                if token is None:
                    response = error(401, 0, "401: Unauthorized")
                else:
                    state["token"] = token
                    response, headers = self.limiter.limit(
                        bucket, f"bearer:{token['access_token']}", discord.clock(), gate=f"bearer:{token['user']}"
                    )
            elif not is_bot:
                response = error(401, 0, "401: Unauthorized")
            else:
                response, headers = self.limiter.limit(bucket, major, discord.clock())
        if response is None:

            async def replay() -> Message:
                return {"type": "http.request", "body": raw, "more_body": False}

            async def capture(message: Message) -> None:
                if message["type"] == "http.response.start":
                    record["status"] = message["status"]
                    message = {
                        **message,
                        "headers": list(message.get("headers", []))
                        + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
                    }
                    if message["status"] in (401, 403, 429):
                        with discord.lock:
                            discord.invalid_requests += 1
                await send(message)

            scope["state"] = state
            await app(scope, replay, capture)
        else:
            record["status"] = response.status_code
            with discord.lock:
                # A 429 of the ``shared`` scope is not the caller's fault and does not count toward the invalid-request
                # limit (discord/discord-api-docs developers/topics/rate-limits.mdx:138).
                shared = response.headers.get("x-ratelimit-scope") == "shared"
                if response.status_code in (401, 403) or (response.status_code == 429 and not shared):
                    discord.invalid_requests += 1
            await response(scope, receive, send)
