"""Shop reviews as Discord forum threads: one thread per product (a message per review) or one thread per review.

Per product, the thread's starter message introduces the product and each review is a message in it; per review, the
thread's starter message (same id as the thread) is the review. Edits patch the message, unarchiving the thread first
when Discord says it is archived (50083) and archiving it again after. Only the author may edit a message, so
moderators cannot change what CardBridge wrote; a message or thread a moderator deleted becomes a conflict. Every
message is sent with ``allowed_mentions: {"parse": []}`` and embeds suppressed.

Messages and threads have no external id: after a crash a review is found again by the marker line its message ends
with (per product) or by its thread's name (per review). A product's thread is remembered before it is created: the
time CardBridge set out to create it is stored, and its name ends with `` · #p<product id>``; if the process dies
before the thread's id is stored (or the answer to the POST is lost), the next attempt looks for the bot's thread with
that name among the guild's active threads, then among the forum's archived public threads archived since that time,
and only creates one when there is none. Without that remembered time no request is spent looking.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from adapters.base import Action, IdCache, Outcome
from adapters.communities.discord_client import DiscordClient, error_code
from adapters.communities.discord_constants import NO_PINGS, SUPPRESS_EMBEDS
from connector.core.http import RemoteError
from connector.core.payloads import DiscordPost
from mappings.discord_posts import product_marker, product_thread_name

#: :class:`IdCache` kinds: a product's thread id, and when CardBridge set out to create it (until its id is stored).
THREAD, CREATING = "thread", "thread_creating"
#: Archived threads are looked at back to this long before the remembered time: Discord's clock and ours may differ.
CLOCK_SKEW = 3600.0
#: At most this many pages (100 threads each) of a forum's archived threads are read looking for a product's thread.
ARCHIVED_PAGES = 20


class Refused(Exception):
    """A review action that cannot work with this configuration (reported, parked as dead)."""


class ReviewThreads:
    """Writes review payloads to a guild's forum channels with the bot's client."""

    def __init__(
        self, client: DiscordClient, guild: str, cache: IdCache | None, clock: Callable[[], float] = time.time
    ) -> None:
        self.client = client
        self.guild = guild
        #: Remembers a product's thread before and the moment it exists, so a failure before the pass records it
        #: makes no twin.
        self.cache = cache
        self.clock = clock
        self._tags: dict[str, dict[str, str]] = {}
        self._me: str | None = None

    def apply(self, action: Action, post: DiscordPost) -> Outcome:
        if not post.forum_channel:
            return Outcome(action.id, False, permanent=True, error="no [reviews] forum_channel for this community")
        try:
            if action.op == "create":
                return self._create(action, post, post.forum_channel)
            if action.op == "edit":
                return self._edit(action, post)
            return self._delete(action, post)
        except Refused as refused:
            return Outcome(action.id, False, permanent=True, error=str(refused))

    # ---- writes --------------------------------------------------------------------------------------------------

    def _message(self, content: str) -> dict[str, Any]:
        return {"content": content, "allowed_mentions": NO_PINGS, "flags": SUPPRESS_EMBEDS}

    def _tag_ids(self, forum_id: str, names: Sequence[str]) -> list[str]:
        """Tag names (config) → ids from the forum's ``available_tags``, read once per forum and process."""
        if not names:
            return []
        tags = self._tags.get(forum_id, {})
        if forum_id not in self._tags or any(name not in tags for name in names):
            # Read again when a name is missing: an admin may have added the tag since.
            forum = self.client.channel(forum_id)
            tags = self._tags[forum_id] = {
                str(t.get("name")): str(t.get("id")) for t in forum.get("available_tags") or []
            }
        missing = [name for name in names if name not in tags]
        if missing:
            raise Refused(
                f"tag {', '.join(map(repr, missing))} is not one of the forum's tags "
                f"({', '.join(sorted(tags)) or 'it has none'}); fix [reviews] tags"
            )
        return [tags[name] for name in names]

    @staticmethod
    def _reason(action: Action) -> str:
        return f"CardBridge: shop review {action.target}"

    def _product_thread(self, post: DiscordPost) -> str | None:
        """The product's thread: stored, remembered, or (when a creation was begun and never recorded) found."""
        if post.topic_id:
            return post.topic_id
        if self.cache is None:
            return None
        known = self.cache.get(THREAD, post.product_id)
        if known:
            return known
        begun = self.cache.get(CREATING, post.product_id)
        if begun is None or not post.forum_channel:
            return None
        try:
            since = float(begun) - CLOCK_SKEW
        except ValueError:
            since = 0.0  # unreadable: look as far back as the page bound allows
        found = self._find_thread(post.forum_channel, product_marker(post.product_id), since)
        if found is not None:
            self._remember(post.product_id, found)
        return found

    def _remember(self, product_id: str, thread_id: str) -> None:
        if self.cache is not None:
            self.cache.set(THREAD, product_id, thread_id)
            self.cache.set(CREATING, product_id, None)

    def _find_thread(self, forum: str, suffix: str, since: float) -> str | None:
        """The bot's thread in ``forum`` whose name ends with ``suffix``: among the guild's active threads (one
        request), then the forum's archived public threads, newest archived first, back to ``since`` (a thread's
        ``archive_timestamp`` is set when it is created and moves when it is archived or unarchived, so a thread
        created after ``since`` was archived after it) and at most :data:`ARCHIVED_PAGES` pages."""
        me = self._bot_id()

        def ours(thread: dict[str, Any]) -> bool:
            # The owner check: a member's post named like ours is not ours.
            return (
                str(thread.get("parent_id")) == forum
                and str(thread.get("name", "")).endswith(suffix)
                and str(thread.get("owner_id")) == me
            )

        for thread in self.client.active_threads(self.guild):
            if ours(thread):
                return str(thread["id"])
        before: str | None = None
        for _ in range(ARCHIVED_PAGES):
            page = self.client.archived_threads(forum, before)
            threads = [t for t in page.get("threads") or [] if isinstance(t, dict)]
            for thread in threads:
                if ours(thread):
                    return str(thread["id"])
            stamps = [str((t.get("thread_metadata") or {}).get("archive_timestamp") or "") for t in threads]
            oldest = min(stamps, key=_seconds, default="")
            if not page.get("has_more") or not oldest or oldest == before or _seconds(oldest) < since:
                break
            before = oldest
        return None

    def _bot_id(self) -> str:
        if self._me is None:
            self._me = str(self.client.current_user()["id"])
        return self._me

    def _create(self, action: Action, post: DiscordPost, forum: str) -> Outcome:
        if post.thread_per == "review":
            tags = list(post.tags) + ([post.verified_tag] if post.verified_tag and post.verified else [])
            thread = self.client.start_thread(
                forum, post.thread_name, self._message(post.raw), self._tag_ids(forum, tags), self._reason(action)
            )
            own = str(thread["id"])
            return Outcome(
                action.id,
                True,
                ref=own,
                data={"post_id": own, "thread_id": own, "content_hash": post.hash, "state": "posted"},
            )
        data: dict[str, Any] = {}
        thread_id = self._product_thread(post)
        if thread_id is None:
            tags = self._tag_ids(forum, list(post.tags))
            if self.cache is not None and self.cache.get(CREATING, post.product_id) is None:
                # Before the POST: from here until the id is stored, a thread may exist that only its name finds.
                self.cache.set(CREATING, post.product_id, f"{self.clock():.0f}")
            thread = self.client.start_thread(
                forum,
                product_thread_name(post.topic_title, post.product_id),
                self._message(post.topic_intro),
                tags,
                f"CardBridge: reviews of product {post.product_id}",
            )
            thread_id = str(thread["id"])
            self._remember(post.product_id, thread_id)
        data["topic_id"] = in_thread = thread_id
        try:
            message = self._unarchived(in_thread, lambda: self.client.send_message(in_thread, self._message(post.raw)))
        except RemoteError as error:
            if error.status == 404 and error_code(error) == 10003:
                return Outcome(
                    action.id, True, data=data, conflict="the product's review thread was deleted on Discord"
                )
            raise
        data.update(post_id=str(message["id"]), thread_id=thread_id, content_hash=post.hash, state="posted")
        return Outcome(action.id, True, ref=str(message["id"]), data=data)

    def _edit(self, action: Action, post: DiscordPost) -> Outcome:
        thread, message = str(post.thread_id), str(post.post_id)
        try:
            self._unarchived(thread, lambda: self.client.edit_message(thread, message, self._message(post.raw)))
        except RemoteError as error:
            if error.status == 404 and error_code(error) in (10003, 10008):
                return Outcome(action.id, True, conflict="the review's message was deleted on Discord by a moderator")
            raise
        return Outcome(action.id, True, data={"content_hash": post.hash, "state": "posted"})

    def _delete(self, action: Action, post: DiscordPost) -> Outcome:
        thread, message = str(post.thread_id), str(post.post_id)
        try:
            if post.thread_per == "review":
                # The review is the thread; deleting a thread needs Manage Threads in the forum.
                self.client.delete_channel(thread, self._reason(action))
            else:
                self.client.delete_message(thread, message)  # its own message: no extra permission needed
        except RemoteError as error:
            if error.status != 404:
                raise
        return Outcome(action.id, True, data={"state": "deleted"})

    def _unarchived(self, thread_id: str, call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Run ``call``; if Discord says the thread is archived (50083), unarchive it, retry, and archive it again."""
        try:
            return call()
        except RemoteError as error:
            if error_code(error) != 50083:
                raise
        self.client.edit_thread(thread_id, {"archived": False}, "CardBridge: update a shop review")
        try:
            return call()
        finally:
            self.client.edit_thread(thread_id, {"archived": True}, "CardBridge: leave the thread as it was")

    # ---- after a crash -------------------------------------------------------------------------------------------

    def verify(self, action: Action, post: DiscordPost) -> Outcome | None:
        """Is the review's message already there? Edits and deletes are idempotent: sending them again is harmless."""
        if action.op != "create":
            return None
        if post.thread_per == "review":
            # The thread's name ends with the review id; a fresh thread is active (not archived) for days.
            suffix = " · " + post.thread_name.rsplit(" · ", 1)[-1]  # " · #12", not matching "#112"
            for thread in self.client.active_threads(self.guild):
                if thread.get("parent_id") == str(post.forum_channel) and str(thread.get("name", "")).endswith(suffix):
                    own = str(thread["id"])
                    return Outcome(
                        action.id,
                        True,
                        ref=own,
                        data={
                            "post_id": own,
                            "thread_id": own,
                            "content_hash": post.hash,
                            "state": "posted",
                        },
                    )
            return None
        thread_id = self._product_thread(post)
        if thread_id:
            # Newest first: a message sent just before the crash is among the latest 100.
            for message in self.client.messages(thread_id):
                if post.marker and str(message.get("content", "")).endswith(post.marker):
                    return Outcome(
                        action.id,
                        True,
                        ref=str(message["id"]),
                        data={
                            "topic_id": thread_id,
                            "post_id": str(message["id"]),
                            "thread_id": thread_id,
                            "content_hash": post.hash,
                            "state": "posted",
                        },
                    )
        return None


def _seconds(stamp: str) -> float:
    """An ISO8601 timestamp as epoch seconds; an unreadable one as 0 (the oldest: it ends the look-up)."""
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return 0.0
