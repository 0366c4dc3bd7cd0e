"""Personal messages to the API user (:class:`~adapters.contributions.PrivateInbox` for Discourse): members write
to CardBridge's forum account to redeem points, and get their answer in the same message.

Routes (discourse/discourse):

- ``GET /topics/private-messages/{username}.json?page=N``: ``ListController#private_messages``
  (``TopicQuery#list_private_messages``), every PM the user takes part in, newest ``bumped_at`` first, 30 a page.
  A new post bumps its PM, so the poll stops at the first topic bumped before the cursor.
- ``GET /t/{id}.json``: the topic's title, ``archetype``, ``details.allowed_users`` and its post ``stream``;
  ``GET /t/{id}/posts.json?post_ids[]=…&include_raw=true`` for the posts' ``raw`` (100 ids a request).
- ``GET /posts/{id}.json``: one post (``raw`` included), for a ``post_created`` webhook.
- ``POST /posts.json`` with ``topic_id`` and ``raw``: the reply (an API creation: memoized 120 s by
  ``PostsController#create``, so the same reply sent twice within that time is one post).

The cursor is ``v1:<post id>:<bumped_at>``: the newest post id already handed out and the newest topic bump read.
Topics bumped after it are read; their posts with a larger id than the cursor's are new. A poll reads at most
``max_topics`` topics (the oldest bumped first); when more wait, the cursor keeps its post id and moves its time
only past the topics read, so the rest come on the next poll and nothing is skipped. A message may then come twice:
its ``message_id`` (the post id) is the key callers deduplicate on.

CardBridge's own posts, bots' posts (user id ≤ 0), posts that are not regular (``post_type`` 1) and deleted posts
are never messages. Member text is untrusted: title and body are cut at :data:`TITLE_MAX` / :data:`BODY_MAX`
characters and never logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from adapters.communities.discourse_client import POST_IDS_PER_READ, DiscourseClient
from adapters.communities.discourse_contributions import REGULAR, parse_time
from adapters.contributions import InboxMessage
from connector.core.http import RemoteError
from connector.core.logs import log

#: ``TopicQuery`` page size.
TOPICS_PAGE = 30
#: ``max_topic_title_length`` and ``max_post_length`` defaults (config/site_settings.yml): nothing longer is a PM.
TITLE_MAX = 255
BODY_MAX = 32_000
PRIVATE_MESSAGE = "private_message"


@dataclass(frozen=True)
class Cursor:
    post_id: int
    bumped_at: str

    def __str__(self) -> str:
        return f"v1:{self.post_id}:{self.bumped_at}"

    @classmethod
    def parse(cls, text: str | None) -> Cursor | None:
        if not text:
            return None
        parts = text.split(":", 2)
        if len(parts) != 3 or parts[0] != "v1" or not parts[1].isdigit() or parse_time(parts[2]) is None:
            log.warning("inbox cursor not understood; reading the newest page only")
            return None
        return cls(int(parts[1]), parts[2])


def _id(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 20:
        return int(value)
    return None


class ForumInbox:
    """The API user's PMs, read and answered with the adapter's client (its budget and retries)."""

    def __init__(self, client: DiscourseClient, api_username: str, max_topics: int = 30, max_pages: int = 5) -> None:
        self.client = client
        self.me = api_username.lower()
        self.max_topics = max_topics
        self.max_pages = max_pages

    # ---- polling -------------------------------------------------------------------------------------------------------

    def messages_since(self, cursor: str | None) -> tuple[list[InboxMessage], str | None]:
        after = Cursor.parse(cursor)
        since = parse_time(after.bumped_at) if after else None
        waiting = self._bumped_topics(since)
        waiting.sort(key=lambda topic: (topic[1], topic[0]))  # oldest bump first
        read, left = waiting[: self.max_topics], waiting[self.max_topics :]
        newest_id = after.post_id if after else 0
        messages: list[InboxMessage] = []
        for topic_id, _bumped in read:
            found, highest = self._new_posts(topic_id, after.post_id if after else 0)
            messages.extend(found)
            newest_id = max(newest_id, highest)
        messages.sort(key=lambda m: (m.created_at, int(m.message_id)))
        if not read:
            return messages, cursor
        last_bump = read[-1][1]
        if left:
            # More wait than one poll reads: keep the post id, move the time past the topics read only.
            log.info("inbox poll read part of the waiting messages", read=len(read), waiting=len(left))
            return messages, str(Cursor(after.post_id if after else 0, last_bump.isoformat()))
        return messages, str(Cursor(newest_id, last_bump.isoformat()))

    def _bumped_topics(self, since: datetime | None) -> list[tuple[int, datetime]]:
        """(topic id, bumped at) of the inbox's PMs bumped at or after ``since`` (None: the newest page only)."""
        found: dict[int, datetime] = {}
        pages = self.max_pages if since is not None else 1
        for page in range(pages):
            body = self.client.http.request(
                "GET", f"/topics/private-messages/{quote(self.me, safe='')}.json", params={"page": page}
            ).json()
            topics = (body.get("topic_list") or {}).get("topics") if isinstance(body, dict) else None
            topics = [t for t in topics if isinstance(t, dict)] if isinstance(topics, list) else []
            for topic in topics:
                topic_id, bumped = _id(topic.get("id")), parse_time(topic.get("bumped_at"))
                if topic_id is None or bumped is None:
                    continue
                if since is not None and bumped < since:
                    return list(found.items())
                found.setdefault(topic_id, bumped)
            if len(topics) < TOPICS_PAGE:
                return list(found.items())
        if since is not None:
            log.warning("inbox poll stopped at its page limit; older waiting messages are not read", pages=pages)
        return list(found.items())

    def _new_posts(self, topic_id: int, after_id: int) -> tuple[list[InboxMessage], int]:
        """Members' posts in the PM with a larger id than ``after_id``, and the largest post id seen."""
        topic = self._topic(topic_id)
        if topic is None:
            return [], 0
        stream_body = topic.get("post_stream")
        listed = stream_body.get("stream") if isinstance(stream_body, dict) else None
        stream = [i for i in (_id(x) for x in listed) if i is not None] if isinstance(listed, list) else []
        new = [i for i in stream if i > after_id]
        found: list[InboxMessage] = []
        for start in range(0, len(new), POST_IDS_PER_READ):
            for post in self.client.topic_posts(topic_id, new[start : start + POST_IDS_PER_READ]):
                message = self._message(post, topic)
                if message is not None:
                    found.append(message)
        return found, max(stream, default=0)

    # ---- one message ---------------------------------------------------------------------------------------------------

    def message(self, message_id: str) -> InboxMessage | None:
        """The post if it is a member's post in a PM CardBridge takes part in; None otherwise (a public topic, a PM
        between others that the admin key could read, CardBridge's own reply, a deleted post)."""
        post_id = _id(message_id)
        if post_id is None:
            return None
        try:
            post = self.client.post(post_id)
        except RemoteError as error:
            if error.status != 403:  # a PM the key's user may not see (a non-admin API user)
                raise
            return None
        topic_id = _id(post.get("topic_id")) if post else None
        if post is None or topic_id is None:
            return None
        topic = self._topic(topic_id)
        return self._message(post, topic) if topic is not None else None

    def _topic(self, topic_id: int) -> dict[str, Any] | None:
        """The PM topic if CardBridge is among its allowed users; None for anything else."""
        try:
            body = self.client.http.request("GET", f"/t/{topic_id}.json").json()
        except RemoteError as error:
            if error.status in (403, 404, 410):
                return None
            raise
        if not isinstance(body, dict) or body.get("archetype") != PRIVATE_MESSAGE or body.get("deleted_at"):
            return None
        details = body.get("details")
        allowed = details.get("allowed_users") if isinstance(details, dict) else None
        names = {str(u.get("username", "")).lower() for u in allowed or [] if isinstance(u, dict)}
        return body if self.me in names else None

    def _message(self, post: dict[str, Any], topic: dict[str, Any]) -> InboxMessage | None:
        post_id, user_id = _id(post.get("id")), post.get("user_id")
        username, raw = post.get("username"), post.get("raw")
        created = parse_time(post.get("created_at"))
        if post_id is None or not isinstance(user_id, int) or not isinstance(username, str) or created is None:
            return None
        if username.lower() == self.me or user_id <= 0 or not isinstance(raw, str):
            return None
        if post.get("deleted_at") or post.get("post_type") not in (None, REGULAR):
            return None
        if _id(post.get("topic_id")) not in (None, _id(topic.get("id"))):
            return None
        return InboxMessage(
            message_id=str(post_id),
            conversation_id=str(topic.get("id")),
            sender_id=str(user_id),
            sender_username=username[:60],
            # The title belongs to the first post only: a later "thanks" in the same conversation must not repeat
            # the command its title holds.
            title=str(topic.get("title") or "")[:TITLE_MAX] if post.get("post_number") == 1 else "",
            body=raw[:BODY_MAX],
            created_at=created,
        )

    # ---- answering -----------------------------------------------------------------------------------------------------

    def reply(self, conversation_id: str, text: str) -> str:
        topic_id = _id(conversation_id)
        if topic_id is None:
            raise ValueError("a Discourse conversation id is a topic id")
        post = self.client.create_post(topic_id, text)
        return str(post["id"])

    def replied(self, conversation_id: str, marker: str) -> str | None:
        """CardBridge's live post in the PM that contains ``marker`` (read back: every post id, then their raw)."""
        topic_id = _id(conversation_id)
        if topic_id is None or not marker:
            return None
        try:
            post_ids = self.client.topic_post_ids(topic_id) or []
        except RemoteError as error:
            if error.status in (403, 404, 410):
                return None
            raise
        for start in range(0, len(post_ids), POST_IDS_PER_READ):
            for post in self.client.topic_posts(topic_id, post_ids[start : start + POST_IDS_PER_READ]):
                mine = str(post.get("username") or "").lower() == self.me
                if mine and not post.get("deleted_at") and marker in str(post.get("raw") or ""):
                    return str(post["id"])
        return None
