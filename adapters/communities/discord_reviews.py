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
and only creates one when there is none. A product thread (or a review's own thread) this state store does not know
at all (a lost or a second state store) is looked for among all the bot's threads of the forum, read once per process
(:data:`INDEX_TTL_SECONDS`), and a review's message in a product thread this process did not open is looked for by
its marker in the whole thread (read once, 100 messages a page) before anything is sent.
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
from mappings.reviews import content_hash

#: :class:`IdCache` kinds: a product's thread id, and when CardBridge set out to create it (until its id is stored).
THREAD, CREATING = "thread", "thread_creating"
#: Archived threads are looked at back to this long before the remembered time: Discord's clock and ours may differ.
CLOCK_SKEW = 3600.0
#: At most this many pages (100 threads each) of a forum's archived threads are read looking for a product's thread.
ARCHIVED_PAGES = 20
#: How long one read of a forum's threads, or of a thread's messages, serves later reviews in this process.
INDEX_TTL_SECONDS = 300.0
#: At most this many pages (100 messages each) of a product thread are read looking for reviews' markers.
MESSAGE_PAGES = 100
#: The line a review message ends with: ``-# <marker>`` (mappings/discord_posts.py ``render_review``).
MARKER_PREFIX = "-# "


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
        #: forum id -> (read at, the bot's threads in it: active and archived public)
        self._threads: dict[str, tuple[float, list[dict[str, Any]]]] = {}
        #: thread id -> (read at, marker -> (message id, content)) of the bot's messages in it
        self._marks: dict[str, tuple[float, dict[str, tuple[str, str]]]] = {}

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
        if not post.forum_channel:
            return None
        if begun is None:
            # Never begun by this store: another store (or this one, before it was lost) may have opened it.
            found = self._known_thread(post.forum_channel, product_marker(post.product_id))
            if found is not None:
                self._remember(post.product_id, found)
            return found
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

    def _bot_threads(self, forum: str) -> list[dict[str, Any]]:
        """The bot's threads in ``forum``: the guild's active threads, then every page (at most
        :data:`ARCHIVED_PAGES`) of the forum's archived public threads; kept :data:`INDEX_TTL_SECONDS`."""
        cached = self._threads.get(forum)
        now = time.monotonic()
        if cached is not None and now - cached[0] < INDEX_TTL_SECONDS:
            return cached[1]
        me = self._bot_id()

        def ours(thread: Any) -> bool:  # a member's thread named like ours is not ours
            return (
                isinstance(thread, dict) and str(thread.get("parent_id")) == forum and str(thread.get("owner_id")) == me
            )

        found = [t for t in self.client.active_threads(self.guild) if ours(t)]
        before: str | None = None
        for _ in range(ARCHIVED_PAGES):
            page = self.client.archived_threads(forum, before)
            threads = [t for t in page.get("threads") or [] if isinstance(t, dict)]
            found += [t for t in threads if ours(t)]
            stamps = [str((t.get("thread_metadata") or {}).get("archive_timestamp") or "") for t in threads]
            oldest = min(stamps, key=_seconds, default="")
            if not page.get("has_more") or not oldest or oldest == before:
                break
            before = oldest
        self._threads[forum] = (now, found)
        return found

    def _note_thread(self, forum: str, thread: dict[str, Any]) -> None:
        """A thread the bot just opened joins the forum's index, if one is held."""
        cached = self._threads.get(forum)
        if cached is not None:
            cached[1].append(thread)

    def _known_thread(self, forum: str, suffix: str) -> str | None:
        """The bot's thread in ``forum`` whose name ends with ``suffix``, from :meth:`_bot_threads`."""
        for thread in self._bot_threads(forum):
            if str(thread.get("name", "")).endswith(suffix):
                return str(thread["id"])
        return None

    def _thread_marks(self, thread_id: str, fresh: bool = False) -> dict[str, tuple[str, str]]:
        """The bot's messages in a thread by the marker their last line carries, the whole thread read newest first
        (at most :data:`MESSAGE_PAGES` pages); kept :data:`INDEX_TTL_SECONDS`. Of two with one marker, the oldest."""
        cached = self._marks.get(thread_id)
        now = time.monotonic()
        if cached is not None and not fresh and now - cached[0] < INDEX_TTL_SECONDS:
            return cached[1]
        me = self._bot_id()
        marks: dict[str, tuple[str, str]] = {}
        before: str | None = None
        for _ in range(MESSAGE_PAGES):
            page = [m for m in self.client.messages_before(thread_id, before) if isinstance(m, dict)]
            for message in page:  # newest first: an older message with the same marker replaces a newer one
                content = str(message.get("content") or "")
                last = content.rsplit("\n", 1)[-1]
                if str((message.get("author") or {}).get("id")) == me and last.startswith(MARKER_PREFIX):
                    marks[last[len(MARKER_PREFIX) :]] = (str(message["id"]), content)
            if len(page) < 100 or str(page[-1].get("id")) == before:
                break
            before = str(page[-1].get("id"))
        self._marks[thread_id] = (now, marks)
        return marks

    def _bot_id(self) -> str:
        if self._me is None:
            self._me = str(self.client.current_user()["id"])
        return self._me

    def _create(self, action: Action, post: DiscordPost, forum: str) -> Outcome:
        if post.thread_per == "review":
            adopted = self._review_thread(action, post, forum)
            if adopted is not None:
                return adopted
            tags = list(post.tags) + ([post.verified_tag] if post.verified_tag and post.verified else [])
            thread = self.client.start_thread(
                forum, post.thread_name, self._message(post.raw), self._tag_ids(forum, tags), self._reason(action)
            )
            own = str(thread["id"])
            self._note_thread(forum, thread)
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
            self._note_thread(forum, thread)
            self._marks[thread_id] = (time.monotonic(), {})  # opened just now: no review in it yet
        data["topic_id"] = in_thread = thread_id
        found = self._thread_marks(thread_id).get(post.marker)
        if found is not None:  # posted by another state store, or by this one before it was lost
            message_id, content = found
            data.update(post_id=message_id, thread_id=thread_id, content_hash=content_hash(content), state="posted")
            return Outcome(action.id, True, ref=message_id, data=data)
        try:
            message = self._unarchived(in_thread, lambda: self.client.send_message(in_thread, self._message(post.raw)))
        except RemoteError as error:
            if error.status == 404 and error_code(error) == 10003:
                return Outcome(
                    action.id, True, data=data, conflict="the product's review thread was deleted on Discord"
                )
            raise
        data.update(post_id=str(message["id"]), thread_id=thread_id, content_hash=post.hash, state="posted")
        cached = self._marks.get(thread_id)
        if cached is not None:
            cached[1][post.marker] = (str(message["id"]), post.raw)
        return Outcome(action.id, True, ref=str(message["id"]), data=data)

    def _review_thread(self, action: Action, post: DiscordPost, forum: str) -> Outcome | None:
        """The review's own thread when the bot already opened it (its name ends with `` · #<review id>``)."""
        suffix = " · " + post.thread_name.rsplit(" · ", 1)[-1]  # " · #12", not matching "#112"
        own = self._known_thread(forum, suffix)
        if own is None:
            return None
        return Outcome(
            action.id,
            True,
            ref=own,
            data={"post_id": own, "thread_id": own, "content_hash": post.hash, "state": "posted"},
        )

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

    # ---- shared with the product cards (adapters.communities.discord_products) -------------------------------------

    def product_thread(self, post: DiscordPost) -> str | None:
        """The product's thread, found as a review finds it; None when it has none yet."""
        return self._product_thread(post)

    def tag_ids(self, forum_id: str, names: Sequence[str]) -> list[str]:
        return self._tag_ids(forum_id, names)

    def message(self, content: str) -> dict[str, Any]:
        """A message body that pings nobody and shows no link previews."""
        return self._message(content)

    def remember(self, product_id: str, thread_id: str, forum: str, thread: dict[str, Any]) -> None:
        """A product thread opened just now (by its card): the reviews post into it."""
        self._remember(product_id, thread_id)
        self._note_thread(forum, thread)
        self._marks[thread_id] = (time.monotonic(), {})

    def unarchived(self, thread_id: str, call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        return self._unarchived(thread_id, call)

    # ---- after a crash -------------------------------------------------------------------------------------------

    def verify(self, action: Action, post: DiscordPost) -> Outcome | None:
        """Is the review's message already there? Edits and deletes are idempotent: sending them again is harmless."""
        if action.op != "create":
            return None
        if post.thread_per == "review":
            self._threads.pop(str(post.forum_channel), None)  # read afresh: the thread may be minutes old
            return self._review_thread(action, post, str(post.forum_channel)) if post.forum_channel else None
        thread_id = self._product_thread(post)
        if not thread_id:
            return None
        found = self._thread_marks(thread_id, fresh=True).get(post.marker)
        if found is None:
            return None
        message_id, content = found
        data = {
            "topic_id": thread_id,
            "post_id": message_id,
            "thread_id": thread_id,
            "content_hash": content_hash(content),
            "state": "posted",
        }
        return Outcome(action.id, True, ref=message_id, data=data)


def _seconds(stamp: str) -> float:
    """An ISO8601 timestamp as epoch seconds; an unreadable one as 0 (the oldest: it ends the look-up)."""
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return 0.0
