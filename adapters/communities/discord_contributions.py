"""Contributions from reactions in Discord forum channels (:class:`~adapters.contributions.ContributionSource`).

For each configured forum channel: its threads that may hold messages made since ``since`` (the guild's active
threads under that forum, then its archived public threads, newest archived first, until one was archived before
``since``: a thread cannot take messages or reactions while archived, developers/topics/threads.mdx "Active &
Archived Threads"), and in each the messages made since then (the starter message, whose id is the thread's, and the
replies), oldest first, read with ``after`` = the snowflake of ``since``. Every member who reacted to a message, with
any emoji, normal or super reaction, is one :class:`~adapters.contributions.Liker` of it: a member who used three
emojis liked it once. ``joined_at`` is the account's creation time, read from its snowflake (developers/reference.mdx
"Snowflakes": milliseconds since 2015-01-01 in the top 42 bits).

Left out, as they are no member's post: system messages (only types 0 DEFAULT and 19 REPLY are read), messages by
bots and webhooks (CardBridge's own review posts among them), and reactions by bots. A deleted message (or thread) is
not listed by Discord any more, so it is simply absent: ``removed`` is never set, and the caller, which knows what it
credited, takes an absent post's points back, but only after a pass that was not cut short (:attr:`complete`).

Bounded: at most ``max_threads`` threads, ``max_messages`` messages and ``max_requests`` requests a pass (the newest
threads first: active ones by their last message, then archived ones by archive time), 100 messages a request; a
message's reactions are read only when its ``reactions`` summary lists some (``count`` per emoji,
message.mdx:461-485), 100 users a request, at most :data:`MAX_REACTORS` per emoji. Requests go through the bot's client, so its per-route buckets and global gate pace
them. A thread or message that vanishes while it is read (404) is skipped, and the walk goes on.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from adapters.communities.discord_client import DiscordClient
from adapters.contributions import Contribution, Liker
from connector.core.http import RemoteError

#: Discord's epoch (2015-01-01T00:00:00Z) in milliseconds (developers/reference.mdx, "Snowflakes").
DISCORD_EPOCH_MS = 1_420_070_400_000
#: Message types that are a member's post: DEFAULT and REPLY (developers/resources/message.mdx, Message Types).
MEMBER_MESSAGE_TYPES = frozenset({0, 19})
#: The most users read for one emoji on one message (10 pages).
MAX_REACTORS = 1000
#: Archived-thread pages read per forum at most (100 threads a page).
MAX_ARCHIVE_PAGES = 50
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def snowflake_time(snowflake: str) -> datetime | None:
    """When a snowflake (a message, a user) was made; None if it is not one."""
    if not snowflake.isdigit() or len(snowflake) > 20:
        return None
    return datetime.fromtimestamp(((int(snowflake) >> 22) + DISCORD_EPOCH_MS) / 1000, UTC)


def snowflake_at(moment: datetime) -> str:
    """The smallest snowflake of ``moment``: messages after it were made at or after that time."""
    ms = int(moment.timestamp() * 1000) - DISCORD_EPOCH_MS
    return str(max(ms, 0) << 22)


class ReactionContributions:
    """Reads members' posts in forum channels and who reacted to them, within per-pass caps."""

    def __init__(
        self,
        client: DiscordClient,
        guild_id: str,
        max_threads: int = 200,
        max_messages: int = 5000,
        max_requests: int = 2000,
    ) -> None:
        self.client, self.guild_id = client, guild_id
        self.max_threads, self.max_messages, self.max_requests = max_threads, max_messages, max_requests
        self._requests = 0
        #: False when the last :meth:`contributions` stopped at a cap: an absent post may then simply be unread.
        self.complete = True

    def contributions(self, places: Sequence[str], since: datetime) -> Iterator[Contribution]:
        self.complete, self._requests = True, 0
        try:
            yield from self._walk(places, since)
        except _OutOfRequests:
            self.complete = False

    def _spend(self) -> None:
        """One more request this pass, or the walk ends here (the posts read so far are kept)."""
        if self._requests >= self.max_requests:
            raise _OutOfRequests
        self._requests += 1

    def _walk(self, places: Sequence[str], since: datetime) -> Iterator[Contribution]:
        forums = [place for place in dict.fromkeys(places) if place.isdigit()]
        if not forums:
            return
        after = snowflake_at(since)
        threads = self._threads(forums, since)
        messages = 0
        for thread in threads:
            for message in self._messages(thread["id"], after):
                if messages >= self.max_messages:
                    self.complete = False
                    return
                messages += 1
                post = self._contribution(thread, message)
                if post is not None:
                    yield post

    # ---- threads ---------------------------------------------------------------------------------------------------

    def _threads(self, forums: list[str], since: datetime) -> list[dict[str, Any]]:
        wanted = set(forums)
        self._spend()
        active = [t for t in self.client.active_threads(self.guild_id) if str(t.get("parent_id")) in wanted]
        active.sort(key=lambda t: int(str(t.get("last_message_id") or t.get("id") or 0)), reverse=True)
        found: dict[str, dict[str, Any]] = {str(t["id"]): t for t in active if "id" in t}
        for forum in forums:
            before: str | None = None
            for _ in range(MAX_ARCHIVE_PAGES):
                if len(found) >= self.max_threads:
                    break
                self._spend()
                try:
                    page = self.client.archived_threads(forum, before)
                except RemoteError as error:
                    if error.status in (403, 404):
                        break  # a channel that is gone or hidden: nothing to read there
                    raise
                threads = [t for t in page.get("threads", []) if isinstance(t, dict) and "id" in t]
                oldest: tuple[datetime, str] | None = None
                for thread in threads:
                    stamp = str((thread.get("thread_metadata") or {}).get("archive_timestamp") or "")
                    archived = _parse_time(stamp)
                    if archived is None:
                        continue
                    if oldest is None or archived < oldest[0]:
                        oldest = (archived, stamp)
                    if archived >= since:
                        found.setdefault(str(thread["id"]), thread)
                # Newest archived first: a page that reaches before ``since`` is the last one worth reading.
                if not page.get("has_more") or oldest is None or oldest[0] < since or oldest[1] == before:
                    break
                before = oldest[1]
        threads = list(found.values())
        if len(threads) > self.max_threads:
            self.complete = False
        return threads[: self.max_threads]

    # ---- messages --------------------------------------------------------------------------------------------------

    def _messages(self, thread_id: str, after: str) -> Iterator[dict[str, Any]]:
        """The thread's messages after ``after``, oldest first; a thread gone meanwhile yields nothing."""
        cursor = after
        while True:
            self._spend()
            try:
                page = self.client.messages_after(thread_id, cursor)
            except RemoteError as error:
                if error.status in (403, 404):
                    return
                raise
            page = sorted((m for m in page if isinstance(m, dict) and str(m.get("id", "")).isdigit()), key=_id)
            page = [m for m in page if _id(m) > int(cursor)]
            yield from page
            if len(page) < 100:
                return
            cursor = str(page[-1]["id"])

    def _contribution(self, thread: dict[str, Any], message: dict[str, Any]) -> Contribution | None:
        author = message.get("author")
        if (
            message.get("type") not in MEMBER_MESSAGE_TYPES
            or not isinstance(author, dict)
            or author.get("bot")
            or message.get("webhook_id")
            or not str(author.get("id", "")).isdigit()
        ):
            return None
        created = snowflake_time(str(message["id"]))
        if created is None:
            return None
        return Contribution(
            post_id=str(message["id"]),
            author_id=str(author["id"]),
            author_username=_CONTROL.sub("", str(author.get("username") or ""))[:32],
            where=str(thread.get("parent_id") or thread["id"]),
            created_at=created,
            likers=self._likers(str(thread["id"]), message),
        )

    def _likers(self, channel_id: str, message: dict[str, Any]) -> tuple[Liker, ...]:
        reactions = message.get("reactions")
        if not isinstance(reactions, list):
            return ()
        likers: dict[str, Liker] = {}
        for reaction in reactions[:20]:  # a message holds at most 20 different emojis (30010)
            if not isinstance(reaction, dict) or not isinstance(reaction.get("emoji"), dict):
                continue
            emoji = _emoji_path(reaction["emoji"])
            details = reaction.get("count_details")
            details = details if isinstance(details, dict) else {}
            kinds = [False] + ([True] if int(details.get("burst") or 0) > 0 else [])
            if emoji is None or int(reaction.get("count") or 0) <= 0:
                continue
            for burst in kinds:
                for user in self._reactors(channel_id, str(message["id"]), emoji, burst):
                    user_id = str(user.get("id", ""))
                    if user_id.isdigit() and not user.get("bot") and user_id not in likers:
                        likers[user_id] = Liker(user_id, snowflake_time(user_id))
        return tuple(likers.values())

    def _reactors(self, channel_id: str, message_id: str, emoji: str, burst: bool) -> Iterator[dict[str, Any]]:
        after: str | None = None
        read = 0
        while read < MAX_REACTORS:
            self._spend()
            try:
                page = self.client.reaction_users(channel_id, message_id, emoji, after, burst)
            except RemoteError as error:
                if error.status in (403, 404):
                    return  # the message (or the emoji) went away while it was read
                raise
            users = [u for u in page if isinstance(u, dict) and str(u.get("id", "")).isdigit()]
            yield from users
            read += len(users)
            if len(page) < 100 or not users or str(users[-1]["id"]) == after:
                return
            after = str(users[-1]["id"])


class _OutOfRequests(Exception):
    """The pass's request budget for reading contributions is spent."""


def _id(message: dict[str, Any]) -> int:
    return int(str(message["id"]))


def _emoji_path(emoji: dict[str, Any]) -> str | None:
    """How Get Reactions names an emoji: the unicode emoji itself, or ``name:id`` for a custom one."""
    name, emoji_id = emoji.get("name"), emoji.get("id")
    if emoji_id:
        return f"{name or '_'}:{emoji_id}" if str(emoji_id).isdigit() else None
    return name if isinstance(name, str) and 0 < len(name) <= 32 else None


def _parse_time(stamp: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
