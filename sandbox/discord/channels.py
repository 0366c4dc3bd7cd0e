"""Channel routes (bot token): channels and forum threads, messages, the guild's active threads and a channel's
archived public threads.

A forum takes posts only (40058); ``REQUIRE_TAG`` forums need a tag (40067); editing in an archived thread is 50083;
sending in an archived thread unarchives it unless it is locked. Messages that would ping (``@everyone``, user or
role mentions without ``allowed_mentions: {"parse": []}``) are recorded in ``pings``. A thread's ``owner_id`` is its
creator (the bot) and its ``archive_timestamp`` moves when it is created, archived or unarchived (discord-api-docs
``developers/topics/threads.mdx`` §Thread Fields, "archive_timestamp is changed when creating, archiving, or unarchiving a
thread"), which is the order archived threads are listed in."""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox.discord.common import API, body_of, error, iso
from sandbox.discord.permissions import READ_MESSAGE_HISTORY, VIEW_CHANNEL
from sandbox.discord.state import DiscordState, Row

MENTION = re.compile(r"@everyone|@here|<@&?!?\d+>")
REQUIRE_TAG = 1 << 4  # channel flag on forum/media channels
#: The message flags kept from a request: SUPPRESS_EMBEDS (1 << 2) and SUPPRESS_NOTIFICATIONS (1 << 12), the two a
#: forum post's message may set (discord-api-docs ``developers/resources/channel.mdx`` §Start Thread in Forum or
#: Media Channel; ``developers/resources/message.mdx`` §Create Message also allows voice and components-v2 flags,
#: which the sandbox does not model).
SETTABLE_FLAGS = (1 << 2) | (1 << 12)


def _flags(value: Any) -> int:
    return value & SETTABLE_FLAGS if isinstance(value, int) else 0


def _pings_everyone(body: dict[str, Any]) -> bool:
    allowed = body.get("allowed_mentions")
    parsed = allowed is None or "everyone" in (allowed.get("parse") or [])
    return "@everyone" in (body.get("content") or "") and parsed


class Channels:
    def __init__(self, discord: DiscordState) -> None:
        self.discord = discord

    def routes(self) -> list[BaseRoute]:
        return [
            Route(f"{API}/channels/{{channel}}", self.channel, methods=["GET", "PATCH", "DELETE"]),
            Route(f"{API}/channels/{{channel}}/threads", self.create_thread, methods=["POST"]),
            Route(f"{API}/channels/{{channel}}/messages", self.create_message, methods=["POST"]),
            Route(f"{API}/channels/{{channel}}/messages", self.list_messages, methods=["GET"]),
            Route(f"{API}/guilds/{{guild}}/threads/active", self.active_threads, methods=["GET"]),
            Route(f"{API}/channels/{{channel}}/threads/archived/public", self.archived_threads, methods=["GET"]),
            Route(f"{API}/channels/{{channel}}/messages/pins/{{message}}", self.pin, methods=["PUT", "DELETE"]),
            Route(f"{API}/channels/{{channel}}/messages/{{message}}", self.message, methods=["GET", "PATCH", "DELETE"]),
        ]

    async def channel(self, request: Request) -> Response:
        discord = self.discord
        body = body_of(request)
        with discord.lock:
            channel = discord.channels.get(request.path_params["channel"])
            if channel is None:
                return error(404, 10003, "Unknown Channel")
            if "permission_overwrites" in channel and not (
                discord.bot_in_guild and discord.bot_permissions(channel["id"]) & VIEW_CHANNEL
            ):
                return error(403, 50001, "Missing Access")  # a channel the bot cannot see
            if request.method == "GET":
                return JSONResponse(channel)
            if request.method == "DELETE":
                del discord.channels[channel["id"]]
                return JSONResponse(channel)
            meta = channel.get("thread_metadata")
            if meta is None:
                return error(400, 50024, "Cannot execute action on this channel type")
            if "archived" in body and bool(body["archived"]) != meta.get("archived"):
                meta["archive_timestamp"] = iso(discord.clock())
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
            return error(
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
            self.discord.pings.append({"content": content, "allowed_mentions": allowed})
        return None

    def _new_message(self, message_id: str, channel_id: str, body: dict[str, Any]) -> Row:
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
            "flags": _flags(body.get("flags")),
            "components": [],
            "timestamp": iso(self.discord.clock()),
            "edited_timestamp": None,
            "author": self.discord.bot_user(),
        }

    async def create_thread(self, request: Request) -> Response:
        discord = self.discord
        body = body_of(request)
        with discord.lock:
            forum = discord.channels.get(request.path_params["channel"])
            if forum is None:
                return error(404, 10003, "Unknown Channel")
            if forum["type"] != 15:
                return error(400, 50024, "Cannot execute action on this channel type")
            name = str(body.get("name") or "")
            message = body.get("message")
            if not 1 <= len(name) <= 100 or not isinstance(message, dict):
                return error(
                    400, 50035, "Invalid Form Body", errors={"name": {"_errors": [{"code": "BASE_TYPE_REQUIRED"}]}}
                )
            invalid = self._check_message(message)
            if invalid is not None:
                return invalid
            tag_ids = {t["id"] for t in forum["available_tags"]}
            tags = [t for t in body.get("applied_tags") or [] if t in tag_ids]
            if forum.get("flags", 0) & REQUIRE_TAG and not tags:
                return error(400, 40067, "A tag is required to create a forum post in this channel")
            thread_id = discord.new_id()
            thread = {
                "id": thread_id,
                "type": 11,
                "guild_id": discord.guild_id,
                "parent_id": forum["id"],
                "name": name,
                "applied_tags": tags,
                # channel.mdx, channel object: "number of messages (not including the initial message or deleted
                # messages) in a thread".
                "message_count": 0,
                "owner_id": discord.bot_user()["id"],  # channel.mdx: "id of the creator of the group DM or thread"
                "thread_metadata": {
                    "archived": False,
                    "locked": False,
                    "auto_archive_duration": 10080,
                    "archive_timestamp": iso(discord.clock()),
                    "create_timestamp": iso(discord.clock()),
                },
            }
            discord.channels[thread_id] = thread
            discord.messages[thread_id] = self._new_message(thread_id, thread_id, message)
            return JSONResponse({**thread, "message": discord.messages[thread_id]}, status_code=201)

    async def create_message(self, request: Request) -> Response:
        """Create Message in a thread or text channel. A forum takes posts only (40058). Sending in an archived thread
        unarchives it unless it is locked (docs ``threads.mdx`` §Active & Archived Threads), then 50083."""
        discord = self.discord
        body = body_of(request)
        with discord.lock:
            channel = discord.channels.get(request.path_params["channel"])
            if channel is None:
                return error(404, 10003, "Unknown Channel")
            if channel["type"] in (15, 16):
                return error(400, 40058, "Cannot send a message in a forum channel")
            if not (body.get("content") or body.get("embeds")):
                return error(400, 50006, "Cannot send an empty message")
            meta = channel.get("thread_metadata")
            if meta is not None and meta.get("archived") and meta.get("locked"):
                return error(400, 50083, "Thread is archived")
            invalid = self._check_message(body)
            if invalid is not None:
                return invalid
            if meta is not None:
                if meta.get("archived"):
                    meta["archive_timestamp"] = iso(discord.clock())
                meta["archived"] = False
                channel["message_count"] = channel.get("message_count", 0) + 1
            message = self._new_message(discord.new_id(), channel["id"], body)
            discord.messages[message["id"]] = message
            channel["last_message_id"] = message["id"]
            return JSONResponse(message)

    async def list_messages(self, request: Request) -> Response:
        """Get Channel Messages: newest first, ``limit`` 1..100 (default 50), ``before`` / ``after`` a message id
        (discord-api-docs developers/resources/message.mdx:893-914, "from newest to oldest"; ``around`` is not
        played), with each message's ``reactions`` summary; without Read Message History, an empty list."""
        discord = self.discord
        with discord.lock:
            channel = discord.channels.get(request.path_params["channel"])
            if channel is None:
                return error(404, 10003, "Unknown Channel")
            try:
                limit = int(request.query_params.get("limit", "50"))
            except ValueError:
                limit = 0
            if not 1 <= limit <= 100:
                return error(400, 50035, "Invalid Form Body")
            before, after = request.query_params.get("before"), request.query_params.get("after")
            if before is not None and after is not None:
                return error(400, 50035, "Invalid Form Body")  # message.mdx:903: mutually exclusive
            if any(v is not None and not v.isdigit() for v in (before, after)):
                return error(400, 50035, "Invalid Form Body")
            if "permission_overwrites" in channel or channel.get("parent_id"):
                seen_from = channel.get("parent_id") or channel["id"]  # a thread has its parent's overwrites
                if not discord.bot_permissions(seen_from) & VIEW_CHANNEL:
                    return error(403, 50001, "Missing Access")
                if not discord.bot_permissions(seen_from) & READ_MESSAGE_HISTORY:
                    return JSONResponse([])  # message.mdx:899: "no messages will be returned"
            found = [
                m
                for m in discord.messages.values()
                if m["channel_id"] == channel["id"]
                and (before is None or int(m["id"]) < int(before))
                and (after is None or int(m["id"]) > int(after))
            ]
            # ``after``: the oldest ``limit`` messages above it, still listed newest first (discord.py abc.py
            # ``_after_strategy`` takes the next ``after`` from the page's first entry).
            found.sort(key=lambda m: int(m["id"]))
            page = found[:limit] if after is not None else found[-limit:]
            return JSONResponse([discord.render_message(m) for m in reversed(page)])

    async def active_threads(self, request: Request) -> Response:
        """List Active Guild Threads: every unarchived thread of the guild, ``{"threads": [...], "members": []}``."""
        discord = self.discord
        with discord.lock:
            if request.path_params["guild"] != discord.guild_id:
                return error(404, 10004, "Unknown Guild")
            threads = [
                dict(c)
                for c in discord.channels.values()
                if c.get("thread_metadata") is not None and not c["thread_metadata"].get("archived")
            ]
            return JSONResponse({"threads": threads, "members": []})

    async def archived_threads(self, request: Request) -> Response:
        """List Public Archived Threads (discord-api-docs ``developers/resources/channel.mdx`` §List Public Archived
        Threads): the channel's archived threads "ordered by archive_timestamp, in descending order", ``before`` an
        ISO8601 timestamp ("threads archived before this timestamp"), ``limit`` 2..100 (the OpenAPI spec's bounds;
        the docs give no default, 50 here), ``{"threads", "members", "has_more"}``."""
        discord = self.discord
        with discord.lock:
            channel = discord.channels.get(request.path_params["channel"])
            if channel is None:
                return error(404, 10003, "Unknown Channel")
            if channel.get("thread_metadata") is not None:
                return error(400, 50024, "Cannot execute action on this channel type")
            try:
                limit = int(request.query_params.get("limit", "50"))
                raw_before = request.query_params.get("before")
                before = datetime.fromisoformat(raw_before) if raw_before else None
            except ValueError:
                return error(400, 50035, "Invalid Form Body")
            if not 2 <= limit <= 100:
                return error(400, 50035, "Invalid Form Body")
            archived = [
                (datetime.fromisoformat(c["thread_metadata"]["archive_timestamp"]), c)
                for c in discord.channels.values()
                if c.get("parent_id") == channel["id"]
                and c.get("thread_metadata", {}).get("archived")
                and c.get("type") == 11
            ]
            found = sorted(
                ((at, c) for at, c in archived if before is None or at < before), key=lambda t: t[0], reverse=True
            )
            threads = [dict(c) for _, c in found[:limit]]
            return JSONResponse({"threads": threads, "members": [], "has_more": len(found) > limit})

    async def pin(self, request: Request) -> Response:
        """``create_pin`` / ``delete_pin``: 204 (openapi.json ``/channels/{channel_id}/messages/pins/{message_id}``)."""
        discord = self.discord
        with discord.lock:
            channel = discord.channels.get(request.path_params["channel"])
            message = discord.messages.get(request.path_params["message"])
            if channel is None:
                return error(404, 10003, "Unknown Channel")
            if message is None or message["channel_id"] != channel["id"]:
                return error(404, 10008, "Unknown Message")
            message["pinned"] = request.method == "PUT"
            return Response(status_code=204)

    async def message(self, request: Request) -> Response:
        discord = self.discord
        body = body_of(request)
        with discord.lock:
            channel = discord.channels.get(request.path_params["channel"])
            message = discord.messages.get(request.path_params["message"])
            if channel is None:
                return error(404, 10003, "Unknown Channel")
            if message is None or message["channel_id"] != channel["id"]:
                return error(404, 10008, "Unknown Message")
            if request.method == "GET":
                return JSONResponse(discord.render_message(message))
            if request.method == "DELETE":
                del discord.messages[message["id"]]
                discord.reactions.pop(message["id"], None)
                if "message_count" in channel and message["id"] != channel["id"]:  # the starter was never counted
                    channel["message_count"] = max(0, channel["message_count"] - 1)
                return Response(status_code=204)
            if channel.get("thread_metadata", {}).get("archived"):
                return error(400, 50083, "Thread is archived")
            invalid = self._check_message(body)
            if invalid is not None:
                return invalid
            for key in ("content", "embeds"):
                if key in body:
                    message[key] = body[key]
            if "flags" in body:  # message.mdx §Edit Message: SUPPRESS_EMBEDS "can be both set and unset"
                message["flags"] = (message["flags"] & ~(1 << 2)) | (_flags(body["flags"]) & (1 << 2))
            message["edited_timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
            return JSONResponse(message)
