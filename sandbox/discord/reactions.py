"""Reaction routes: who reacted to a message with an emoji, and reacting as the bot or as a member.

discord/discord-api-docs developers/resources/message.mdx (commit c98d64bc):

- ``:1123-1127`` Create Reaction, ``PUT …/reactions/{emoji}/@me``: 204; the emoji is URL-encoded unicode or
  ``name:id`` for a custom emoji, else ``10014`` Unknown Emoji.
- ``:1129-1133`` Delete Own Reaction, ``DELETE …/reactions/{emoji}/@me``: 204.
- ``:1141-1162`` Get Reactions: user objects, ``limit`` 1-100 (default 25), ``after`` a user id, ``type`` 0 normal /
  1 super (burst) reactions. Listed by user id, ascending: discord.py ``reaction.py`` pages with ``after`` = the last
  user of a page.
- ``:461-485`` the message's ``reactions`` summary (``count`` including super reactions, ``count_details``, ``me``,
  ``emoji``): :meth:`DiscordState.render_message`.
- opcodes-and-status-codes.mdx:208: at most 20 different emojis on a message (``30010``); threads.mdx: no reactions
  in an archived thread (``50083``, as editing there).

Members react with their Discord client's token (``Authorization: <token>``, no prefix; the sandbox hands one out
with ``DiscordSandbox.client_token``); the bot with its bot token. A deleted message answers ``10008``.
"""

from __future__ import annotations

import unicodedata

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox.discord.common import API, error
from sandbox.discord.state import DiscordState, Row

MAX_EMOJIS = 20
_KEYCAP_BASES = set("#*0123456789")


def is_unicode_emoji(text: str) -> bool:
    """A unicode emoji as a client sends it: pictographs, flags (regional indicators), keycaps, with joiners, variation
    selectors and skin tones; no letters, no spaces."""
    if not text or len(text) > 16:
        return False
    chars = list(text)
    if chars[0] in _KEYCAP_BASES:
        return len(chars) >= 2 and chars[-1] == "\u20e3"
    for char in chars:
        if char in ("\u200d", "\ufe0f", "\u20e3"):
            continue
        symbol = unicodedata.category(char) in ("So", "Sk")
        flag_or_tone = 0x1F1E6 <= ord(char) <= 0x1F1FF or 0x1F3FB <= ord(char) <= 0x1F3FF  # regional, skin tones
        if not symbol and not flag_or_tone:
            return False
    return True


class Reactions:
    def __init__(self, discord: DiscordState) -> None:
        self.discord = discord

    def routes(self) -> list[BaseRoute]:
        base = f"{API}/channels/{{channel}}/messages/{{message}}/reactions/{{emoji}}"
        return [
            Route(base, self.users, methods=["GET"]),
            Route(f"{base}/@me", self.own, methods=["PUT", "DELETE"]),
        ]

    def _emoji(self, key: str) -> Row | None:
        """``{"id", "name"}`` for an emoji path segment, or None (10014)."""
        if ":" in key:
            name, _, emoji_id = key.partition(":")
            if self.discord.emojis.get(emoji_id) == name:
                return {"id": emoji_id, "name": name}
            return None
        return {"id": None, "name": key} if is_unicode_emoji(key) else None

    def _message(self, request: Request) -> tuple[Row | None, Row | None, Response | None]:
        discord = self.discord
        channel = discord.channels.get(request.path_params["channel"])
        if channel is None:
            return None, None, error(404, 10003, "Unknown Channel")
        message = discord.messages.get(request.path_params["message"])
        if message is None or message["channel_id"] != channel["id"]:
            return channel, None, error(404, 10008, "Unknown Message")
        return channel, message, None

    async def users(self, request: Request) -> Response:
        discord = self.discord
        with discord.lock:
            _, message, refused = self._message(request)
            if refused is not None or message is None:
                return refused or error(404, 10008, "Unknown Message")
            emoji = self._emoji(request.path_params["emoji"])
            if emoji is None:
                return error(400, 10014, "Unknown Emoji")
            query = request.query_params
            try:
                limit = int(query.get("limit", "25"))
                kind = int(query.get("type", "0"))
                after = int(query["after"]) if query.get("after") else 0
            except ValueError:
                return error(400, 50035, "Invalid Form Body")
            if not 1 <= limit <= 100 or kind not in (0, 1):
                return error(400, 50035, "Invalid Form Body")
            key = _key(emoji)
            entry = discord.reactions.get(message["id"], {}).get(key)
            users = sorted(int(u) for u in (entry or {}).get("burst" if kind else "normal", []))
            page = [u for u in users if u > after][:limit]
            return JSONResponse([self._user(str(u)) for u in page])

    def _user(self, user_id: str) -> Row:
        if user_id == self.discord.client_id:
            return self.discord.bot_user()
        return self.discord.public_user(user_id)

    async def own(self, request: Request) -> Response:
        discord = self.discord
        with discord.lock:
            channel, message, refused = self._message(request)
            if refused is not None or message is None or channel is None:
                return refused or error(404, 10008, "Unknown Message")
            emoji = self._emoji(request.path_params["emoji"])
            if emoji is None:
                return error(400, 10014, "Unknown Emoji")
            user = request.scope.get("state", {}).get("user") or discord.client_id
            reactions = discord.reactions.setdefault(message["id"], {})
            key = _key(emoji)
            if request.method == "DELETE":
                entry = reactions.get(key)
                if entry is not None and user in entry["normal"]:
                    entry["normal"].remove(user)
                return Response(status_code=204)
            if (channel.get("thread_metadata") or {}).get("archived"):
                return error(400, 50083, "Thread is archived")
            if key not in reactions and len([e for e in reactions.values() if e["normal"] or e["burst"]]) >= MAX_EMOJIS:
                return error(400, 30010, "Maximum number of reactions reached (20)")
            entry = reactions.setdefault(key, {"emoji": emoji, "normal": [], "burst": []})
            if user not in entry["normal"]:
                entry["normal"].append(user)
            return Response(status_code=204)


def _key(emoji: Row) -> str:
    return f"{emoji['name']}:{emoji['id']}" if emoji["id"] else str(emoji["name"])
