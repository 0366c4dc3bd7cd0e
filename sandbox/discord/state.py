"""The Discord world: one guild (roles, members, channels and threads, messages), one OAuth2 application (its Discord
accounts, codes, tokens, consents, role connections) and the logs the tests read. Guarded by ``DiscordState.lock``;
callers hold it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox.discord.permissions import ADMINISTRATOR, ALL, BOT_DEFAULT, EVERYONE_DEFAULT

Row = dict[str, Any]


@dataclass(eq=False)
class DiscordState:
    bot_token: str
    guild_id: str
    client_id: str
    client_secret: str
    clock: Callable[[], float]
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    snowflake: int = 900000000000000000
    # ---- the guild
    roles: dict[str, Row] = field(default_factory=dict)
    members: dict[str, set[str]] = field(default_factory=dict)
    nicks: dict[str, str] = field(default_factory=dict)
    channels: dict[str, Row] = field(default_factory=dict)
    messages: dict[str, Row] = field(default_factory=dict)
    bot_role: str = ""
    #: The bot was invited to the guild (``False``: every guild route answers 403 50001 Missing Access).
    bot_in_guild: bool = True
    #: The guild's owner (a person, not the bot: the owner has every permission).
    owner_id: str = "600000000000000001"
    # ---- what the tests read: every request, every message that would ping, the 401/403/429 count
    requests: list[Row] = field(default_factory=list)
    pings: list[Row] = field(default_factory=list)
    invalid_requests: int = 0
    # ---- the OAuth2 application
    redirect_uris: set[str] = field(default_factory=set)
    users: dict[str, Row] = field(default_factory=dict)
    browser_user: str | None = None
    metadata_records: list[Row] = field(default_factory=list)
    token_requests: int = 0
    codes: dict[str, Row] = field(default_factory=dict)
    access: dict[str, Row] = field(default_factory=dict)
    refresh: dict[str, Row] = field(default_factory=dict)
    consents: dict[str, set[str]] = field(default_factory=dict)
    role_connections: dict[str, Row] = field(default_factory=dict)
    issued: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.roles[self.guild_id] = {
            "id": self.guild_id,
            "name": "@everyone",
            "position": 0,
            "managed": False,
            "permissions": str(EVERYONE_DEFAULT),
        }
        self.bot_role = self.add_role("CardBridge", position=10, managed=True)
        self.roles[self.bot_role]["permissions"] = str(BOT_DEFAULT)

    def new_id(self) -> str:
        self.snowflake += 1
        return str(self.snowflake)

    def add_role(self, name: str, position: int = 1, managed: bool = False) -> str:
        role_id = self.new_id()
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

    def above_bot(self, role_id: str) -> bool:
        """A role at or above the bot's highest role: the bot may not grant or remove it (50013)."""
        return bool(self.roles[role_id]["position"] >= self.roles[self.bot_role]["position"])

    def bot_permissions(self, channel_id: str | None = None) -> int:
        """The bot's permissions in the guild, or in ``channel_id`` after its overwrites, as Discord documents them
        (discord/discord-api-docs developers/topics/permissions.mdx:119-189, "Permission Overwrites": @everyone's
        permissions OR the bot's roles'; ADMINISTRATOR is everything; then the channel's overwrites for @everyone, for
        its roles together, for the bot itself)."""
        roles = self.roles
        mine = [self.bot_role] if self.bot_role in roles else []
        base = int(roles[self.guild_id].get("permissions", "0"))
        for role in mine:
            base |= int(roles[role].get("permissions", "0"))
        if base & ADMINISTRATOR:
            return ALL
        channel = self.channels.get(channel_id or "")
        if channel is None:
            return base
        overwrites = {o["id"]: o for o in channel.get("permission_overwrites", [])}
        permissions = base
        everyone = overwrites.get(self.guild_id)
        if everyone:
            permissions = (permissions & ~int(everyone["deny"])) | int(everyone["allow"])
        allow = deny = 0
        for role in mine:
            if role in overwrites:
                allow |= int(overwrites[role]["allow"])
                deny |= int(overwrites[role]["deny"])
        permissions = (permissions & ~deny) | allow
        member = overwrites.get(self.client_id)
        if member:
            permissions = (permissions & ~int(member["deny"])) | int(member["allow"])
        return permissions

    # ---- objects as the API renders them -------------------------------------------------------------------------

    def public_user(self, user_id: str) -> Row:
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

    def bot_user(self) -> Row:
        return {
            "id": self.client_id,
            "username": self.roles[self.bot_role]["name"],
            "global_name": None,
            "discriminator": "0",
            "avatar": None,
            "bot": True,
        }

    def member_object(self, user_id: str) -> Row:
        if user_id == self.client_id:  # the bot's own member: its managed role
            return {**self._member_fields(), "user": self.bot_user(), "roles": [self.bot_role], "nick": None}
        return {
            **self._member_fields(),
            "user": self.public_user(user_id),
            "roles": sorted(self.members[user_id]),
            "nick": self.nicks.get(user_id),
        }

    def _member_fields(self) -> Row:
        return {"joined_at": "2026-01-01T00:00:00+00:00", "deaf": False, "mute": False}
