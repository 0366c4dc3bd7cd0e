"""``GET /applications/@me`` (bot token): the application object of the bot's application (discord/discord-api-docs
developers/resources/application.mdx:248-252 "Get Current Application"; the object's fields at :18-52, among them
``redirect_uris``, the OAuth2 redirects registered under OAuth2 > Redirects, :42; example at :54-)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox.discord.common import API
from sandbox.discord.state import DiscordState


class Application:
    def __init__(self, discord: DiscordState) -> None:
        self.discord = discord

    def routes(self) -> list[BaseRoute]:
        return [Route(f"{API}/applications/@me", self.me, methods=["GET"])]

    async def me(self, request: Request) -> Response:
        discord = self.discord
        with discord.lock:
            return JSONResponse(
                {
                    "id": discord.client_id,
                    "name": "CardBridge",
                    "icon": None,
                    "description": "",
                    "bot_public": False,
                    "bot_require_code_grant": False,
                    "bot": discord.bot_user(),
                    # application.mdx: "verify_key: hex encoded key for verification in interactions"
                    "verify_key": discord.public_key,
                    "team": None,
                    "flags": 0,
                    "flags_new": "0",
                    "redirect_uris": sorted(discord.redirect_uris),
                    "interactions_endpoint_url": discord.interactions_endpoint_url,
                    "role_connections_verification_url": None,
                    "owner": {"id": discord.owner_id, "username": "owner", "discriminator": "0", "avatar": None},
                }
            )
