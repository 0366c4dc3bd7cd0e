"""Guild routes (bot token): Get and Add Guild Member, add/remove a member's role, list and create roles.

Error codes: 10004 (unknown guild), 10007 (unknown member), 10011 (unknown role), 50013 (a role at or above the bot's
highest role); Add Guild Member answers 201 with the new member, 204 (``roles`` and ``nick`` ignored) for an existing
one, 50025 for a bad OAuth2 token and 50026 for a token without ``guilds.join``. A bot that is not in the guild
(``bot_in_guild = False``) gets 403 50001 Missing Access on every guild route (Discord answers a guild it cannot see
so: 50001 "Missing access", discord/discord-api-docs developers/topics/opcodes-and-status-codes.mdx:259).

``GET /guilds/{id}`` answers the guild object with its ``roles`` and ``owner_id`` (developers/resources/guild.mdx:745,
"Get Guild"; the object's fields at :29-39); ``GET /guilds/{id}/members/{bot id}`` the bot's own member, holding its managed role."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox.discord.common import API, body_of, error, field_error, form_error
from sandbox.discord.state import DiscordState


class Guild:
    def __init__(self, discord: DiscordState) -> None:
        self.discord = discord

    def routes(self) -> list[BaseRoute]:
        return [
            Route(f"{API}/guilds/{{guild}}", self.guild, methods=["GET"]),
            Route(f"{API}/guilds/{{guild}}/members/{{user}}", self.member, methods=["GET", "PUT"]),
            Route(
                f"{API}/guilds/{{guild}}/members/{{user}}/roles/{{role}}", self.member_role, methods=["PUT", "DELETE"]
            ),
            Route(f"{API}/guilds/{{guild}}/roles", self.roles, methods=["GET", "POST"]),
        ]

    def _unseen(self, guild: str) -> Response | None:
        if guild != self.discord.guild_id:
            return error(404, 10004, "Unknown Guild")
        if not self.discord.bot_in_guild:
            return error(403, 50001, "Missing Access")
        return None

    async def guild(self, request: Request) -> Response:
        discord = self.discord
        with discord.lock:
            unseen = self._unseen(request.path_params["guild"])
            if unseen is not None:
                return unseen
            return JSONResponse(
                {
                    "id": discord.guild_id,
                    "name": "Sandbox Shop",
                    "icon": None,
                    "owner_id": discord.owner_id,
                    "roles": sorted(discord.roles.values(), key=lambda r: r["position"]),
                    "emojis": [],
                    "features": [],
                    "verification_level": 1,
                    "premium_tier": 0,
                }
            )

    async def member(self, request: Request) -> Response:
        if request.method == "PUT":
            return self._add_member(request)
        discord = self.discord
        with discord.lock:
            user = request.path_params["user"]
            unseen = self._unseen(request.path_params["guild"])
            if unseen is not None:
                return unseen
            if user == discord.client_id:
                return JSONResponse(discord.member_object(user))
            if user not in discord.members:
                return error(404, 10007, "Unknown Member")
            return JSONResponse(discord.member_object(user))

    def _add_member(self, request: Request) -> Response:
        """Add Guild Member: 201 + member when new, 204 (and ``roles``/``nick`` not applied) when already a member."""
        discord = self.discord
        body = body_of(request)
        with discord.lock:
            user = request.path_params["user"]
            if request.path_params["guild"] != discord.guild_id:
                return error(404, 10004, "Unknown Guild")
            access_token = body.get("access_token")
            if not isinstance(access_token, str) or not access_token:
                return form_error({"access_token": field_error("BASE_TYPE_REQUIRED", "This field is required")})
            roles = body.get("roles") or []
            nick = body.get("nick")
            if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
                return form_error({"roles": field_error("BASE_TYPE_BAD_TYPE", "Must be an array of snowflakes.")})
            if nick is not None and (not isinstance(nick, str) or len(nick) > 32):
                return form_error({"nick": field_error("BASE_TYPE_MAX_LENGTH", "Must be 32 or fewer in length.")})
            token = discord.access.get(access_token)
            if token is None or discord.clock() >= token["expires_at"] or token["user"] != user:
                return error(403, 50025, "Invalid OAuth2 access token")
            if "guilds.join" not in token["scopes"]:
                return error(403, 50026, "Missing required OAuth2 scope")
            if user in discord.members:
                return Response(status_code=204)  # documented: an existing member gets neither roles nor nick
            for role in roles:
                if role not in discord.roles:
                    return error(404, 10011, "Unknown Role")
                if discord.above_bot(role):
                    return error(403, 50013, "Missing Permissions")
            discord.members[user] = {r for r in roles if r != discord.guild_id}
            if nick:
                discord.nicks[user] = nick
            return JSONResponse(discord.member_object(user), status_code=201)

    async def member_role(self, request: Request) -> Response:
        discord = self.discord
        with discord.lock:
            user, role = request.path_params["user"], request.path_params["role"]
            if request.path_params["guild"] != discord.guild_id:
                return error(404, 10004, "Unknown Guild")
            if role not in discord.roles:
                return error(404, 10011, "Unknown Role")
            if user not in discord.members:
                return error(404, 10007, "Unknown Member")
            if discord.above_bot(role):
                return error(403, 50013, "Missing Permissions")
            if request.method == "PUT":
                discord.members[user].add(role)
            else:
                discord.members[user].discard(role)
            return Response(status_code=204)

    async def roles(self, request: Request) -> Response:
        discord = self.discord
        body = body_of(request)
        with discord.lock:
            unseen = self._unseen(request.path_params["guild"])
            if unseen is not None:
                return unseen
            if request.method == "GET":
                return JSONResponse(sorted(discord.roles.values(), key=lambda r: r["position"]))
            role_id = discord.add_role(str(body.get("name") or "new role"), position=1)
            return JSONResponse(discord.roles[role_id])
