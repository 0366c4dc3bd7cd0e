"""The Discord world: one guild (roles, members, channels and threads, messages), one OAuth2 application (its Discord
accounts, codes, tokens, consents, role connections) and the logs the tests read. Guarded by ``DiscordState.lock``;
callers hold it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from sandbox.discord.permissions import ADMINISTRATOR, ALL, BOT_DEFAULT, EVERYONE_DEFAULT

#: Discord's epoch, 2015-01-01T00:00:00Z, in milliseconds: a snowflake's top 42 bits count from it
#: (discord/discord-api-docs developers/reference.mdx:134-151, "Snowflakes").
DISCORD_EPOCH_MS = 1_420_070_400_000


def snowflake_at(ts: float, sequence: int = 0) -> int:
    """The snowflake Discord would make at unix time ``ts`` (worker, process 0; ``sequence`` in the low 12 bits)."""
    return (max(int(ts * 1000) - DISCORD_EPOCH_MS, 0) << 22) | (sequence & 0xFFF)


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
    # ---- interactions over HTTP (sandbox.discord.interactions)
    #: The application's Ed25519 key pair: Discord signs what it sends to the interactions endpoint with the private
    #: key; the Developer Portal shows the public key (``verify_key``).
    signing_key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate, repr=False)
    interactions_endpoint_url: str | None = None
    #: Interaction token → what Discord keeps of it (``id``, ``created``, ``acknowledged``, ``original``, ``edits``).
    interactions: dict[str, Row] = field(default_factory=dict)
    #: Every interaction sent (``payload``, ``status``, ``answer``) and every endpoint check (``check``, ``ok``).
    interaction_log: list[Row] = field(default_factory=list)
    #: The application's guild commands by name, and how many Discord had to create (200 a day per guild).
    commands: dict[str, Row] = field(default_factory=dict)
    command_creates: int = 0
    # ---- reactions: message id → emoji key (``🔥`` or ``name:id``) → {"emoji", "normal": [user ids], "burst": [...]}
    reactions: dict[str, dict[str, Row]] = field(default_factory=dict)
    #: Custom emoji of the guild: id → name.
    emojis: dict[str, str] = field(default_factory=dict)
    #: Discord client tokens of members (``Authorization: <token>``, no prefix): token → user id.
    client_tokens: dict[str, str] = field(default_factory=dict)

    @property
    def public_key(self) -> str:
        return self.signing_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()

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
        """A snowflake of the sandbox's clock (so its time can be read back, as Discord's can), always increasing."""
        self.snowflake = max(self.snowflake + 1, snowflake_at(self.clock()))
        return str(self.snowflake)

    def render_message(self, message: Row) -> Row:
        """A message as the API answers it: with its ``reactions`` summary when it has any (message.mdx:461-485;
        ``me`` is the bot's own reaction), in the order the emojis were first used."""
        summary = []
        for entry in self.reactions.get(message["id"], {}).values():
            normal, burst = entry["normal"], entry["burst"]
            if not normal and not burst:
                continue
            summary.append(
                {
                    "count": len(normal) + len(burst),
                    "count_details": {"burst": len(burst), "normal": len(normal)},
                    "me": self.client_id in normal,
                    "me_burst": self.client_id in burst,
                    "emoji": dict(entry["emoji"]),
                    "burst_colors": ["#ffffff"] if burst else [],
                }
            )
        return {**message, "reactions": summary} if summary else dict(message)

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
