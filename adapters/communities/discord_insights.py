"""Demand threads on Discord (:class:`~adapters.insights.TopicSource`): a forum channel's posts that carry a tag.

discord-api-docs (``developers/resources/channel.mdx``, ``developers/topics/threads.mdx``):

- ``GET /channels/{forum}``: the forum's ``available_tags`` (``{id, name, …}``); a thread's ``applied_tags`` holds tag
  ids, so the configured tag name is looked up here, case-insensitively.
- ``GET /guilds/{guild}/threads/active`` (every unarchived thread of the guild, one answer) and
  ``GET /channels/{forum}/threads/archived/public?before=&limit=100`` (archived ones, newest ``archive_timestamp``
  first, ``has_more``): the forum's threads, filtered on ``parent_id`` and the tag.
- A thread's ``message_count`` counts its messages "not including the initial message or deleted messages" (channel
  object; created before 2022-07-01 it stops at 50): the replies. Its ``thread_metadata.create_timestamp`` (or its id,
  a snowflake) is when it was opened; ``last_message_id`` (a snowflake) when it was last bumped.
- Likes are reactions on the starter message, whose id is the thread's (threads.mdx, "Forum and media channels"):
  ``GET /channels/{thread}/messages/{thread}``, its ``reactions[].count`` summed (one request a listed thread, so at
  most ``limit`` of them). Discord has no view counter (0), and the list names only the thread's owner as a
  participant (reading every message for the others would cost a request per 100 messages).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from adapters.communities.discord_client import DiscordClient
from adapters.communities.discord_contributions import snowflake_time
from adapters.insights import Topic
from connector.core.http import RemoteError
from connector.core.logs import log

#: Archived-thread pages read per forum at most (100 threads a page).
ARCHIVED_PAGES = 3


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


class DemandThreads:
    def __init__(self, client: DiscordClient, guild_id: str) -> None:
        self.client = client
        self.guild_id = guild_id

    def demand_topics(self, category: str | None, tag: str | None, limit: int) -> list[Topic]:
        if not category or not tag:
            return []
        forum = self.client.channel(category)
        names = {
            str(t.get("id")): str(t.get("name"))
            for t in forum.get("available_tags") or []
            if isinstance(t, dict) and t.get("id") is not None
        }
        wanted = {tag_id for tag_id, name in names.items() if name.lower() == tag.lower()}
        if not wanted:
            log.warning("demand tag not found on the forum channel", channel=category, tag=tag)
            return []
        threads: dict[str, dict[str, Any]] = {}
        for thread in self.client.active_threads(self.guild_id):
            if isinstance(thread, dict) and str(thread.get("parent_id")) == category:
                threads.setdefault(str(thread.get("id")), thread)
        before: str | None = None
        for _ in range(ARCHIVED_PAGES):
            page = self.client.archived_threads(category, before)
            rows = [t for t in page.get("threads") or [] if isinstance(t, dict) and "id" in t]
            for thread in rows:
                threads.setdefault(str(thread["id"]), thread)
            if not page.get("has_more") or not rows:
                break
            before = (rows[-1].get("thread_metadata") or {}).get("archive_timestamp")
            if not isinstance(before, str):
                break
        tagged = [t for t in threads.values() if wanted & {str(x) for x in t.get("applied_tags") or []}]
        topics = [topic for topic in (self._topic(t, names, category) for t in tagged) if topic is not None]
        topics.sort(key=lambda t: (t.bumped_at, t.topic_id), reverse=True)
        return [self._with_likes(topic) for topic in topics[:limit]]

    @staticmethod
    def _topic(thread: dict[str, Any], names: dict[str, str], forum: str) -> Topic | None:
        thread_id = str(thread.get("id"))
        metadata = thread.get("thread_metadata") or {}
        created = _time(metadata.get("create_timestamp")) or snowflake_time(thread_id)
        if created is None:
            return None
        last = thread.get("last_message_id")
        bumped = (snowflake_time(str(last)) if last else None) or created
        owner = thread.get("owner_id")
        name = thread.get("name")
        return Topic(
            topic_id=thread_id,
            title=name[:100] if isinstance(name, str) else "",
            category=forum,
            tags=tuple(names[str(x)] for x in thread.get("applied_tags") or [] if str(x) in names),
            like_count=0,
            reply_count=_count(thread.get("message_count")),
            views=0,
            created_at=created,
            bumped_at=max(bumped, created),
            participants=(str(owner),) if owner else (),
        )

    def _with_likes(self, topic: Topic) -> Topic:
        try:
            starter = self.client.http.request("GET", f"/channels/{topic.topic_id}/messages/{topic.topic_id}").json()
        except RemoteError as error:  # the starter was deleted (10008): the thread stays, without likes
            log.info("demand thread's starter message not read", thread=topic.topic_id, error=str(error))
            return topic
        reactions = starter.get("reactions") if isinstance(starter, dict) else None
        likes = sum(_count(r.get("count")) for r in reactions or [] if isinstance(r, dict))
        return replace(topic, like_count=likes)
