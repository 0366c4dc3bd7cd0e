"""Product cards and announcements on Discord.

The card is the starter message of the product's thread in the ``[reviews]`` forum channel (thread per product): a
forum post's starter message has the thread's id. The thread is found as the reviews find it
(:class:`~adapters.communities.discord_reviews.ReviewThreads`), or opened with the card; the card is pinned once and
edited in place (an edit of a message bumps nothing on Discord). Only its author can edit a Discord message, so a
moderator's change is a deletion: a conflict. Every message goes with ``allowed_mentions: {"parse": []}``.
"""

from __future__ import annotations

from adapters.base import Action, Outcome
from adapters.communities.discord_client import error_code
from adapters.communities.discord_reviews import ReviewThreads
from connector.core.http import RemoteError
from connector.core.payloads import Announcement, DiscordPost, ProductCard
from mappings.discord_posts import product_thread_name


class ProductThreads:
    def __init__(self, threads: ReviewThreads) -> None:
        self.threads = threads
        self.client = threads.client

    def card(self, action: Action, p: ProductCard) -> Outcome:
        forum = p.forum_channel
        if not forum:
            return Outcome(action.id, False, permanent=True, error="no [reviews] forum_channel for this community")
        thread_id = self.threads.product_thread(_probe(p, forum))
        reason = f"CardBridge: product card of {p.product_id}"
        if thread_id is None:
            tags = self.threads.tag_ids(forum, list(p.tags))
            thread = self.client.start_thread(
                forum, product_thread_name(p.thread_name, p.product_id), self.threads.message(p.raw), tags, reason
            )
            thread_id = str(thread["id"])
            self.threads.remember(p.product_id, thread_id, forum, thread)
            self.client.pin_message(thread_id, thread_id, reason)
            return _written(action, p, thread_id)
        try:
            self.threads.unarchived(
                thread_id, lambda: self.client.edit_message(thread_id, thread_id, self.threads.message(p.raw))
            )
        except RemoteError as error:
            if error.status == 404 and error_code(error) in (10003, 10008):
                return Outcome(action.id, True, conflict="the product card was deleted on Discord by a moderator")
            raise
        if not p.post_id:  # the reviews opened the thread: its starter message becomes the card, pinned once
            self.client.pin_message(thread_id, thread_id, reason)
        return _written(action, p, thread_id)

    def announce(self, action: Action, p: Announcement) -> Outcome:
        if not p.channel:
            return Outcome(action.id, False, permanent=True, error="no [products.announce] channel for this community")
        message = self.threads.message(p.raw)
        # Discord drops a second message with the same nonce sent within minutes (enforce_nonce): a retry after a
        # lost answer does not announce twice (message.mdx, Create Message ``nonce``/``enforce_nonce``).
        message.update(nonce=f"cb-announce-{p.event_id}"[:25], enforce_nonce=True)
        sent = self.client.send_message(p.channel, message)
        return Outcome(action.id, True, ref=str(sent["id"]))


def _probe(p: ProductCard, forum: str) -> DiscordPost:
    """The product as the review threads look a product's thread up (by stored id, cache, or its name's marker)."""
    return DiscordPost(
        raw="",
        hash=None,
        marker="",
        forum_channel=forum,
        thread_per="product",
        tags=p.tags,
        verified_tag=None,
        verified=False,
        post_id=None,
        thread_id=None,
        topic_id=p.topic_id,
        thread_name=p.thread_name,
        topic_title=p.thread_name,
        topic_intro="",
        product_id=p.product_id,
    )


def _written(action: Action, p: ProductCard, thread_id: str) -> Outcome:
    return Outcome(
        action.id, True, ref=thread_id, data={"topic_id": thread_id, "post_id": thread_id, "content_hash": p.hash}
    )
