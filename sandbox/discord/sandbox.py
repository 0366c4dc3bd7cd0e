"""``DiscordSandbox``: one guild and one OAuth2 application (state, controllers, HTTP app) and the in-process helpers
tests and the demo use to set them up and look at them."""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Callable
from typing import Any

from sandbox.discord.app import DiscordApp
from sandbox.discord.channels import REQUIRE_TAG
from sandbox.discord.common import iso
from sandbox.discord.outgoing import Outgoing
from sandbox.discord.rate_limit import RateLimiter
from sandbox.discord.state import DiscordState, snowflake_at
from sandbox.faults import FaultInjector, Knobs
from sandbox.forward import Forwarded


class _Default(enum.Enum):
    """``add_user``'s email when none is given: ``<username>@users.discord.invalid`` (``None`` means no email)."""

    EMAIL = "derived"


class DiscordSandbox:
    """One guild, its roles and members, its forum channels, and one OAuth2 application with its Discord accounts."""

    bot_token = Forwarded[str]("state")
    guild_id = Forwarded[str]("state")
    client_id = Forwarded[str]("state")
    client_secret = Forwarded[str]("state")
    clock = Forwarded[Callable[[], float]]("state")
    bot_role = Forwarded[str]("state")
    #: ``False``: the bot was never invited (or was kicked): guild routes answer 403 50001.
    bot_in_guild = Forwarded[bool]("state")
    roles = Forwarded[dict[str, dict[str, Any]]]("state")
    members = Forwarded[dict[str, set[str]]]("state")
    channels = Forwarded[dict[str, dict[str, Any]]]("state")
    messages = Forwarded[dict[str, dict[str, Any]]]("state")
    #: Every request (``method``, ``path``, ``body``, ``status``, ``time``, ``user_agent``, ``audit_reason``), every
    #: message that would have pinged someone, and how many answers were 401/403/429.
    requests = Forwarded[list[dict[str, Any]]]("state")
    pings = Forwarded[list[dict[str, Any]]]("state")
    invalid_requests = Forwarded[int]("state")
    # ---- OAuth2 application state
    redirect_uris = Forwarded[set[str]]("state")
    users = Forwarded[dict[str, dict[str, Any]]]("state")
    #: The Discord account signed in in "the browser" that opens the consent page (``None``: nobody, a login page).
    browser_user = Forwarded[str | None]("state")
    metadata_records = Forwarded[list[dict[str, Any]]]("state")
    token_requests = Forwarded[int]("state")
    # ---- rate limits
    route_limit = Forwarded[int]("limiter")
    route_window = Forwarded[float]("limiter")
    global_per_second = Forwarded[int]("limiter")

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
        self.state = DiscordState(
            bot_token=bot_token, guild_id=guild_id, client_id=client_id, client_secret=client_secret, clock=clock
        )
        self.limiter = RateLimiter(route_limit, route_window, global_per_second)
        self.knobs = knobs or Knobs()
        self._lock = self.state.lock
        self.app = FaultInjector(DiscordApp(self.state, self.limiter), self.knobs)
        self._outgoing = Outgoing(self.state)

    # ---- in-process helpers --------------------------------------------------------------------------------------

    def add_role(self, name: str, position: int = 1, managed: bool = False) -> str:
        with self._lock:
            return self.state.add_role(name, position, managed)

    def add_member(self, user_id: str | None = None) -> str:
        with self._lock:
            user_id = user_id or self.state.new_id()
            self.state.members[user_id] = set()
            return user_id

    def remove_member(self, user_id: str) -> None:
        with self._lock:
            self.state.members.pop(user_id, None)

    def roles_of(self, user_id: str) -> set[str]:
        with self._lock:
            return set(self.state.members.get(user_id, set()))

    def add_forum(self, name: str = "reviews", tags: tuple[str, ...] = (), require_tag: bool = False) -> str:
        with self._lock:
            new_id = self.state.new_id
            channel_id = new_id()
            self.state.channels[channel_id] = {
                "id": channel_id,
                "type": 15,
                "guild_id": self.state.guild_id,
                "name": name,
                "flags": REQUIRE_TAG if require_tag else 0,
                "permission_overwrites": [],
                "available_tags": [
                    {"id": new_id(), "name": tag, "moderated": False, "emoji_id": None, "emoji_name": None}
                    for tag in tags
                ],
            }
            return channel_id

    def add_text_channel(self, name: str = "general") -> str:
        with self._lock:
            channel_id = self.state.new_id()
            self.state.channels[channel_id] = {
                "id": channel_id,
                "type": 0,
                "guild_id": self.state.guild_id,
                "name": name,
                "flags": 0,
                "last_message_id": None,
                "permission_overwrites": [],
            }
            return channel_id

    def overwrite(self, channel_id: str, target: str, allow: int = 0, deny: int = 0, member: bool = False) -> None:
        """An admin set a channel permission overwrite for a role (``target`` a role id; the guild id is @everyone)
        or a member (``member=True``), as ``{"id", "type": 0 role | 1 member, "allow", "deny"}`` strings."""
        with self._lock:
            overwrites = self.state.channels[channel_id].setdefault("permission_overwrites", [])
            overwrites[:] = [o for o in overwrites if o["id"] != target]
            overwrites.append({"id": target, "type": 1 if member else 0, "allow": str(allow), "deny": str(deny)})

    def archive(self, thread_id: str, locked: bool = False) -> None:
        """Discord archives the thread (inactivity, or the guild nearing its active-thread cap)."""
        with self._lock:
            meta = self.state.channels[thread_id]["thread_metadata"]
            if not meta["archived"]:
                meta["archive_timestamp"] = iso(self.state.clock())
            meta["archived"] = True
            if locked:
                self.state.channels[thread_id]["thread_metadata"]["locked"] = True

    def threads_of(self, forum_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(c) for c in self.state.channels.values() if c.get("parent_id") == forum_id]

    def writes(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.state.requests if r["method"] != "GET"]

    def reset_log(self) -> None:
        with self._lock:
            self.state.requests.clear()

    def add_user(
        self,
        username: str,
        user_id: str | None = None,
        email: str | _Default | None = _Default.EMAIL,
        verified: bool | None = None,
    ) -> str:
        """A Discord account (not necessarily a guild member: ``add_member`` is guild membership).

        ``email``: the account's address (default ``<username>@users.discord.invalid``); ``None``: the account has
        none (a phone sign-up). ``verified``: whether Discord has verified that address (default: yes when there is
        one); an account can carry an address its owner never confirmed. ``GET /users/@me`` with the ``email`` scope
        answers both as stored."""
        address = f"{username}@users.discord.invalid" if isinstance(email, _Default) else email
        with self._lock:
            user_id = user_id or self.state.new_id()
            self.state.users[user_id] = {
                "id": user_id,
                "username": username,
                "global_name": username,
                "discriminator": "0",
                "avatar": None,
                "email": address,
                "verified": address is not None if verified is None else verified,
            }
            return user_id

    def expire_tokens(self) -> None:
        """Every access token issued so far is now expired (refresh tokens keep working)."""
        with self._lock:
            now = self.state.clock()
            for token in self.state.access.values():
                token["expires_at"] = min(token["expires_at"], now)

    def issued_tokens(self) -> list[str]:
        """Every access and refresh token handed out so far, including expired, rotated and revoked ones."""
        with self._lock:
            return list(self.state.issued)

    def role_connection(self, user_id: str) -> dict[str, Any] | None:
        with self._lock:
            stored = self.state.role_connections.get(user_id)
            return None if stored is None else json.loads(json.dumps(stored))

    # ---- interactions over HTTP --------------------------------------------------------------------------------------

    @property
    def public_key(self) -> str:
        """The application's Ed25519 public key, 64 hex characters (the Developer Portal's "Public Key";
        ``verify_key`` of ``GET /applications/@me``): the ``public_key`` of CardBridge's config."""
        return self.state.public_key

    def verify_endpoint(self, url: str) -> bool:
        """Save ``url`` as the Interactions Endpoint URL, as the Developer Portal does: a signed PING must get a PONG
        and a PING signed by another key a 401. True if the URL was accepted."""
        return self._outgoing.verify_endpoint(url)

    def send_interaction(
        self,
        url: str,
        command: str,
        user_id: str,
        options: dict[str, Any] | None = None,
        *,
        sign: bool = True,
        tamper: bool = False,
        in_dm: bool = False,
    ) -> tuple[int, Any]:
        """Member ``user_id`` runs ``/command`` (a registered guild command; ``options`` such as ``{"points": 500}``
        are checked as Discord's client does): the signed interaction is POSTed to ``url``. Returns the status and
        the JSON answer. ``sign=False`` sends no signature headers, ``tamper=True`` changes the body after signing."""
        return self._outgoing.send_interaction(url, command, user_id, options, sign=sign, tamper=tamper, in_dm=in_dm)

    def interactions_sent(self) -> list[dict[str, Any]]:
        """Every interaction sent (``payload``, ``status``, ``answer``) and endpoint check (``check``, ``ok``)."""
        with self._lock:
            return json.loads(json.dumps(self.state.interaction_log))

    def reply_of(self, token: str) -> dict[str, Any] | None:
        """The first reply to an interaction as the member sees it now (``content``, ``flags``), or None."""
        with self._lock:
            found = self.state.interactions.get(token)
            return None if found is None or found["original"] is None else dict(found["original"])

    def reply_edits(self, token: str) -> list[dict[str, Any]]:
        """Every edit of an interaction's first reply (``content``, ``allowed_mentions``), oldest first."""
        with self._lock:
            found = self.state.interactions.get(token)
            return [] if found is None else [dict(e) for e in found["edits"]]

    def commands(self) -> list[dict[str, Any]]:
        """The application's guild commands as Discord has them."""
        with self._lock:
            return json.loads(json.dumps(list(self.state.commands.values())))

    @property
    def command_creates(self) -> int:
        """How many commands Discord had to create today (200 a day per guild)."""
        with self._lock:
            return self.state.command_creates

    # ---- members' posts and reactions --------------------------------------------------------------------------------

    def snowflake(self, at: float) -> str:
        """A snowflake made at unix time ``at`` (an account made then: ``add_member(sandbox.snowflake(t))``)."""
        with self._lock:
            self.state.snowflake += 1
            return str(snowflake_at(at, self.state.snowflake))

    def client_token(self, user_id: str) -> str:
        """The token of the member's own Discord client (``Authorization: <token>``): they react with it."""
        with self._lock:
            for token, owner in self.state.client_tokens.items():
                if owner == user_id:
                    return token
            token = f"mfa.{user_id}.{len(self.state.client_tokens)}"
            self.state.client_tokens[token] = user_id
            return token

    def add_emoji(self, name: str) -> str:
        """A custom emoji of the guild; react with ``name:id``."""
        with self._lock:
            emoji_id = self.state.new_id()
            self.state.emojis[emoji_id] = name
            return emoji_id

    def start_post(self, forum_id: str, user_id: str, name: str, content: str, tags: tuple[str, ...] = ()) -> str:
        """Member ``user_id`` opens a post (thread) in a forum, with the forum's tags named ``tags``; its starter
        message has the thread's id."""
        with self._lock:
            available = {t["name"]: t["id"] for t in self.state.channels[forum_id].get("available_tags", [])}
            thread_id = self.state.new_id()
            self.state.channels[thread_id] = {
                "id": thread_id,
                "type": 11,
                "guild_id": self.state.guild_id,
                "parent_id": forum_id,
                "name": name,
                "applied_tags": [available[tag] for tag in tags],
                # channel.mdx, channel object: "number of messages (not including the initial message or deleted
                # messages) in a thread" (the official client does the same: disnake PR #747 mirrors it).
                "message_count": 0,
                "owner_id": user_id,
                "last_message_id": thread_id,
                "thread_metadata": {
                    "archived": False,
                    "locked": False,
                    "auto_archive_duration": 10080,
                    "archive_timestamp": iso(self.state.clock()),
                    "create_timestamp": iso(self.state.clock()),
                },
            }
            self.state.messages[thread_id] = self._member_message(thread_id, thread_id, user_id, content)
            return thread_id

    def post_message(self, channel_id: str, user_id: str, content: str, *, reply_to: str | None = None) -> str:
        """Member ``user_id`` writes in a thread (type 19 REPLY with ``reply_to``, else 0 DEFAULT)."""
        with self._lock:
            message_id = self.state.new_id()
            message = self._member_message(message_id, channel_id, user_id, content)
            if reply_to:
                message |= {"type": 19, "message_reference": {"message_id": reply_to, "channel_id": channel_id}}
            self.state.messages[message_id] = message
            channel = self.state.channels[channel_id]
            channel["last_message_id"] = message_id
            channel["message_count"] = channel.get("message_count", 0) + 1
            return message_id

    def _member_message(self, message_id: str, channel_id: str, user_id: str, content: str) -> dict[str, Any]:
        return {
            "id": message_id,
            "type": 0,
            "channel_id": channel_id,
            "content": content,
            "embeds": [],
            "attachments": [],
            "mentions": [],
            "mention_roles": [],
            "mention_everyone": False,
            "pinned": False,
            "tts": False,
            "flags": 0,
            "components": [],
            "timestamp": iso(self.state.clock()),
            "edited_timestamp": None,
            "author": self.state.public_user(user_id),
        }

    def react(self, channel_id: str, message_id: str, user_id: str, emoji: str, *, burst: bool = False) -> None:
        """Member ``user_id`` reacts (``burst``: a super reaction, which the HTTP API cannot make)."""
        with self._lock:
            custom = ":" in emoji
            entry = self.state.reactions.setdefault(message_id, {}).setdefault(
                emoji,
                {
                    "emoji": {"id": emoji.split(":")[1], "name": emoji.split(":")[0]}
                    if custom
                    else {"id": None, "name": emoji},
                    "normal": [],
                    "burst": [],
                },
            )
            kind = entry["burst" if burst else "normal"]
            if user_id not in kind:
                kind.append(user_id)

    def delete_message(self, channel_id: str, message_id: str) -> None:
        """A moderator (or the author) deletes a message. A forum post's starter message goes alone: the thread stays
        and its other messages with it (the Discord client shows "Original message was deleted")."""
        with self._lock:
            message = self.state.messages.get(message_id)
            if message is not None and message["channel_id"] == channel_id:
                del self.state.messages[message_id]
                self.state.reactions.pop(message_id, None)
