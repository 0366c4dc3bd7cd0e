"""``cardbridge check`` for a Discord guild: read-only bot-token requests that tell whether a pass can do its work.

In the order an operator fixes things (discord/discord-api-docs):

- ``GET /users/@me``: the bot token is accepted (401 ``{"code": 0}`` otherwise); its ``id`` is the bot's user id.
- ``GET /guilds/{id}``: the bot is in the guild (403 50001 "Missing access" for a guild it is not in, 404 10004 for
  an unknown one; developers/topics/opcodes-and-status-codes.mdx:144,259). The guild object carries its ``roles``
  and ``owner_id`` (developers/resources/guild.mdx:29,39).
- ``GET /guilds/{id}/members/{bot id}``: the bot's roles. A bot grants only roles below its highest role
  (developers/topics/permissions.mdx:110-113), and needs MANAGE_ROLES (``1 << 28``) or ADMINISTRATOR (``1 << 3``,
  :46,71) from its roles.
- ``GET /channels/{forum}``: the review forum exists (404 10003), the bot sees it (403 50001), it is a forum (type
  15), and the bot's permissions there, computed as permissions.mdx:119-189 "Permission Overwrites" documents, hold
  VIEW_CHANNEL, SEND_MESSAGES (creates posts in a forum), SEND_MESSAGES_IN_THREADS and MANAGE_THREADS (:53-81).
- ``GET /applications/@me``: the bot's application (developers/resources/application.mdx:248-252) with
  ``redirect_uris`` (:42), where ``[link]``'s ``<public_url>/link/callback`` must be listed, and, with
  ``public_key`` set (slash commands), ``verify_key`` (the key interactions are signed with) and
  ``interactions_endpoint_url`` (where Discord sends them).

The OAuth2 client secret is not tested: the only calls that take it (``POST /oauth2/token``, ``/oauth2/token/revoke``)
issue or revoke tokens, which a check never does.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import httpx

from adapters.checks import Check, CheckContext, failed, passed, unreachable
from adapters.communities.discord_client import DiscordClient, error_code
from connector.core.http import RemoteError

ADMINISTRATOR = 1 << 3
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_ROLES = 1 << 28
MANAGE_THREADS = 1 << 34
SEND_MESSAGES_IN_THREADS = 1 << 38
ALL = (1 << 64) - 1
#: What review threads need in the forum channel, with the names the server settings show.
FORUM_NEEDS = {
    VIEW_CHANNEL: "View Channel",
    SEND_MESSAGES: "Send Messages and Create Posts",
    SEND_MESSAGES_IN_THREADS: "Send Messages in Threads and Posts",
    MANAGE_THREADS: "Manage Threads and Posts",
}
FORUM = 15


def base_permissions(
    guild: Mapping[str, Any], roles: Mapping[str, Mapping[str, Any]], member: Sequence[str], user: str
) -> int:
    """``compute_base_permissions`` (permissions.mdx:137-150): the owner has all; @everyone's, OR the member's roles';
    ADMINISTRATOR is all."""
    if str(guild.get("owner_id")) == user:
        return ALL
    everyone = roles.get(str(guild["id"]), {})
    permissions = int(everyone.get("permissions", "0"))
    for role in member:
        permissions |= int(roles.get(role, {}).get("permissions", "0"))
    return ALL if permissions & ADMINISTRATOR else permissions


def channel_permissions(base: int, guild_id: str, member: Sequence[str], user: str, channel: Mapping[str, Any]) -> int:
    """``compute_overwrites`` (permissions.mdx:152-182): @everyone's overwrite, then the member's roles' together,
    then the member's own."""
    if base & ADMINISTRATOR:
        return ALL
    overwrites = {str(o["id"]): o for o in channel.get("permission_overwrites") or []}
    permissions = base
    everyone = overwrites.get(guild_id)
    if everyone:
        permissions = (permissions & ~int(everyone["deny"])) | int(everyone["allow"])
    allow = deny = 0
    for role in member:
        if role in overwrites:
            allow |= int(overwrites[role]["allow"])
            deny |= int(overwrites[role]["deny"])
    permissions = (permissions & ~deny) | allow
    own = overwrites.get(user)
    if own:
        permissions = (permissions & ~int(own["deny"])) | int(own["allow"])
    return permissions


class GuildCheck:
    """The checks of one guild; ``run()`` yields them."""

    def __init__(
        self,
        name: str,
        client: DiscordClient,
        guild_id: str,
        api_base: str,
        application_id: str,
        roles: Mapping[str, str],
        public_key: str = "",
    ) -> None:
        self.name, self.client, self.guild_id, self.api_base = name, client, guild_id, api_base
        self.application_id, self.public_key = application_id, public_key
        self._app: dict[str, Any] | None = None
        #: role id → where it is named (a rule's name, or a points tier)
        self.roles = dict(roles)

    def key(self, setting: str) -> str:
        return f"communities.{self.name}.{setting}"

    def get(self, path: str) -> Any:
        return self.client.http.request("GET", path).json()

    def run(self, context: CheckContext) -> Iterator[Check]:
        try:
            yield from self._run(context)
        except httpx.HTTPError as error:
            yield unreachable(
                "Discord answers", error, self.api_base, f"check the network, or {self.key('api_base')} if it is set"
            )
        except RemoteError as error:
            yield failed("Discord answers", str(error), "Discord answered an error; try again later")

    def _run(self, context: CheckContext) -> Iterator[Check]:
        try:
            me = self.get("/users/@me")
        except RemoteError as error:
            if error.status == 401:
                yield failed(
                    "bot token accepted",
                    "Discord refused the bot token (401)",
                    f"set {self.key('bot_token')} to the bot's token (Developer Portal → Bot → Reset Token)",
                )
                return
            raise
        bot = str(me["id"])
        yield passed("bot token accepted", f"bot {me.get('username', '?')} ({bot})")
        try:
            guild = self.get(f"/guilds/{self.guild_id}")
        except RemoteError as error:
            if error.status in (403, 404):
                yield failed(
                    "bot is in the guild",
                    f"guild {self.guild_id}: {error.status} (code {error_code(error)}): the bot is not a member, or the "
                    "id is not a server's",
                    f"invite the bot (https://discord.com/oauth2/authorize?client_id={bot}&scope=bot&permissions="
                    f"{MANAGE_ROLES | MANAGE_THREADS | SEND_MESSAGES | SEND_MESSAGES_IN_THREADS | VIEW_CHANNEL}) "
                    f"or set {self.key('guild_id')} to the server's id",
                )
                return
            raise
        yield passed("bot is in the guild", str(guild.get("name", self.guild_id)))
        roles = {str(r["id"]): r for r in guild.get("roles", [])}
        member = [str(r) for r in self.get(f"/guilds/{self.guild_id}/members/{bot}").get("roles", [])]
        base = base_permissions(guild, roles, member, bot)
        if self.roles:
            yield from self._roles(roles, member, base)
        if context.review is not None and context.review.forum_channel:
            yield from self._forum(context.review.forum_channel, member, base, bot)
        if context.link_redirect_uri is not None:
            yield from self._link(context.link_redirect_uri)
        if self.public_key:
            yield from self._interactions()

    def _application(self) -> dict[str, Any]:
        if self._app is None:
            self._app = dict(self.get("/applications/@me"))
        return self._app

    def _interactions(self) -> Iterator[Check]:
        """Slash commands: interactions are signed with the application's ``verify_key`` (application.mdx:36), which
        must be ``public_key``; the endpoint URL is the one Discord sends them to."""
        app = self._application()
        verify_key = str(app.get("verify_key") or "").lower()
        if verify_key and verify_key != self.public_key.lower():
            yield failed(
                "interactions public key",
                f"{self.key('public_key')} is not the application's public key",
                f"set {self.key('public_key')} to {verify_key} (Developer Portal → General Information → Public Key)",
            )
            return
        yield passed("interactions public key", "the application's public key" if verify_key else "not returned")
        url = app.get("interactions_endpoint_url")
        if url:
            yield passed("interactions endpoint", f"Discord sends slash commands to {url}")
        else:
            yield failed(
                "interactions endpoint",
                "the application has no Interactions Endpoint URL: /points and /redeem reach nobody",
                "set it in the Developer Portal → General Information to the daemon's interactions URL",
            )

    def _roles(self, roles: Mapping[str, Mapping[str, Any]], member: Sequence[str], base: int) -> Iterator[Check]:
        top = max(member, key=lambda r: (int(roles.get(r, {}).get("position", 0)), int(r)), default=None)
        held = roles.get(top or "")
        top_name = str(held["name"]) if held else "@everyone"
        top_position = int(held["position"]) if held else 0
        if base & MANAGE_ROLES:
            yield passed("bot may manage roles", f"through its roles (highest: {top_name})")
        else:
            yield failed(
                "bot may manage roles",
                "none of the bot's roles has Manage Roles",
                f"give the bot's role {top_name!r} Manage Roles (Server Settings → Roles)",
            )
        for role_id, named in sorted(self.roles.items()):
            role = roles.get(role_id)
            if role is None:
                yield failed(
                    f"role {role_id}",
                    f"named by {named}: no such role in this server",
                    f"set {named}'s role to a role id of this server (Server Settings → Roles → Copy Role ID)",
                )
            elif role.get("managed"):
                yield failed(
                    f"role {role['name']!r}",
                    f"named by {named}: managed by an integration; nobody can grant it",
                    f"name a role you created in {named}",
                )
            elif (int(role["position"]), int(role_id)) >= (top_position, int(top or 0)):
                yield failed(
                    f"role {role['name']!r}",
                    f"named by {named}: at or above the bot's highest role {top_name!r}",
                    f"drag the bot's role {top_name!r} above {role['name']!r} (Server Settings → Roles)",
                )
            else:
                yield passed(f"role {role['name']!r}", f"named by {named}: below the bot's role {top_name!r}")

    def _forum(self, channel_id: str, member: Sequence[str], base: int, bot: str) -> Iterator[Check]:
        what = f"review forum {channel_id}"
        fix_key = f"reviews.communities.{self.name}.forum_channel"
        try:
            channel = self.get(f"/channels/{channel_id}")
        except RemoteError as error:
            if error.status == 404:
                yield failed(what, "no such channel (404)", f"set {fix_key} to the forum channel's id")
                return
            if error.status == 403:
                yield failed(
                    what,
                    f"the bot cannot see it (403, code {error_code(error)})",
                    "allow View Channel for the bot's role on that channel (Edit Channel → Permissions)",
                )
                return
            raise
        what = f"review forum #{channel.get('name', channel_id)}"
        if str(channel.get("guild_id")) != self.guild_id:
            yield failed(what, "belongs to another server", f"set {fix_key} to a forum channel of this server")
            return
        if channel.get("type") != FORUM:
            yield failed(what, f"is not a forum channel (type {channel.get('type')})", f"set {fix_key} to a forum's id")
            return
        allowed = channel_permissions(base, self.guild_id, member, bot, channel)
        missing = [label for bit, label in FORUM_NEEDS.items() if not allowed & bit]
        if missing:
            yield failed(
                what,
                "the bot lacks " + ", ".join(missing),
                "allow them for the bot's role on that channel (Edit Channel → Permissions), or remove the "
                "overwrite that denies them",
            )
        else:
            yield passed(what, "a forum where the bot may post, reply and manage its threads")

    def _link(self, redirect_uri: str) -> Iterator[Check]:
        app = self._application()
        if self.application_id and str(app.get("id")) != self.application_id:
            yield failed(
                "application id",
                f"{self.key('application_id')} is not the bot's application ({app.get('id')})",
                f"set {self.key('application_id')} to {app.get('id')} (Developer Portal → General Information)",
            )
        uris = app.get("redirect_uris")
        if not isinstance(uris, list):
            yield passed("OAuth2 redirect", "not checked: Discord did not return the application's redirect_uris")
        elif redirect_uri in uris:
            yield passed("OAuth2 redirect", f"{redirect_uri} is registered")
        else:
            yield failed(
                "OAuth2 redirect",
                f"{redirect_uri} is not among the application's redirects",
                "add it under OAuth2 → Redirects in the Developer Portal (or fix [link] public_url)",
            )
        yield passed(
            "OAuth2 client secret",
            "not tested: the only calls that take it issue or revoke tokens; the first member link tests it",
        )


def check_guild(
    name: str,
    client: DiscordClient,
    guild_id: str,
    api_base: str,
    application_id: str,
    roles: Mapping[str, str],
    context: CheckContext,
    public_key: str = "",
) -> Iterator[Check]:
    """The guild's checks (see the module docstring); ``roles``: role id → where the config names it."""
    if context.points is not None and context.points.mode == "tiers":
        roles = {**{r: f"[points] tier {t}" for t, r in context.points.tier_roles()}, **roles}
    return GuildCheck(name, client, guild_id, api_base, application_id, roles, public_key).run(context)
