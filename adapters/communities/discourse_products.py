"""Product cards and announcements on Discourse.

The card is the first post of the product's topic (the review topic, found by its ``external_id``; opened with the
card when the product has none yet). It is edited in place with ``bypass_bump`` so the topic does not rise in Latest
for a price change, and a card a moderator edited is a conflict, as a review post is. An announcement is a topic of
its own in the configured category, with an external id made from the event's id: a retry or a crash finds it again
instead of announcing twice.
"""

from __future__ import annotations

from adapters.base import Action, Outcome
from adapters.communities.discourse_posts import ForumContent, content_hash
from connector.core.http import RemoteError
from connector.core.payloads import Announcement, ProductCard
from mappings.reviews import unique_topic_title

#: The edit reason on the card's revisions (shown in its edit history).
CARD_EDIT_REASON = "Updated from the shop"


class ForumProducts:
    def __init__(self, content: ForumContent) -> None:
        self.content = content
        self.client = content.client

    # ---- cards ---------------------------------------------------------------------------------------------------

    def card(self, action: Action, p: ProductCard) -> Outcome:
        if p.post_id:
            return self._edit(action, p, int(p.post_id), p.topic_id)
        found = self._topic(p)
        if found is None:
            category = self.content.category_id(p.category, p.category_color, p.category_text_color)
            created = self._open(p, category)
            if isinstance(created, Outcome):
                return Outcome(action.id, True, conflict=created.error)
            return _written(action, p, str(created["topic_id"]), str(created["id"]))
        # The review topic exists already (opened by the reviews with their intro): its first post becomes the card.
        post_ids = self.client.topic_post_ids(found)
        if not post_ids:
            return Outcome(action.id, True, conflict=f"the topic of product {p.product_id} has no first post to edit")
        first = self.content.read_post(str(post_ids[0]))
        me = self.content.api_username.lower()
        if first is None or first.deleted:
            return Outcome(action.id, True, conflict=f"the first post of product {p.product_id}'s topic was deleted")
        if first.last_editor and first.last_editor.lower() != me:
            return Outcome(action.id, True, conflict=f"the first post was edited on the forum by {first.last_editor}")
        post = self.client.edit_post(post_ids[0], p.raw, CARD_EDIT_REASON, bypass_bump=True)
        return _written(action, p, str(found), str(post["id"]))

    def _topic(self, p: ProductCard) -> int | None:
        if p.topic_id:
            return int(p.topic_id)
        found = self.client.topic_by_external_id(p.external_id)
        return int(found["id"]) if found is not None else None

    def _open(self, p: ProductCard, category: int) -> dict[str, object] | Outcome:
        refused: RemoteError | None = None
        for title in (p.topic_title, unique_topic_title(p.topic_title, p.product_id)):
            try:
                return self.client.create_topic(title, p.raw, category, p.external_id)
            except RemoteError as error:
                if error.status != 422:
                    raise
                refused = error
        return Outcome(0, False, error=f"the forum refused to open the topic of product {p.product_id}: {refused}")

    def _edit(self, action: Action, p: ProductCard, post_id: int, topic_id: str | None) -> Outcome:
        post = self.content.read_post(str(post_id))
        if post is None or post.deleted:
            return Outcome(action.id, True, conflict="the product card was deleted on the forum")
        if content_hash(post.raw) != p.written_hash:
            editor = post.last_editor or "someone"
            return Outcome(action.id, True, conflict=f"the product card was edited on the forum by {editor}")
        edited = self.client.edit_post(post_id, p.raw, CARD_EDIT_REASON, bypass_bump=True)
        return _written(action, p, topic_id, str(edited["id"]))

    def verify_card(self, action: Action, p: ProductCard) -> Outcome | None:
        """After a crash: the card reads as the payload's text (the write happened), or None (write again)."""
        post_id = p.post_id
        topic_id = p.topic_id
        if not post_id:
            topic = self._topic(p)
            ids = self.client.topic_post_ids(topic) if topic is not None else None
            if not ids:
                return None
            topic_id, post_id = str(topic), str(ids[0])
        post = self.content.read_post(post_id)
        if post is not None and not post.deleted and content_hash(post.raw) == p.hash:
            return _written(action, p, topic_id, post_id)
        return None

    # ---- announcements -------------------------------------------------------------------------------------------

    def announce(self, action: Action, p: Announcement) -> Outcome:
        found = self.client.topic_by_external_id(p.external_id)
        if found is not None:  # announced before a crash or a retry: once is enough
            return Outcome(action.id, True, ref=str(found["id"]))
        category = self.content.category_id(p.category or "Announcements", "0088CC", "FFFFFF")
        refused: RemoteError | None = None
        for title in (p.title, unique_topic_title(p.title, str(p.event_id))):
            try:
                created = self.client.create_topic(title, p.raw, category, p.external_id)
                return Outcome(action.id, True, ref=str(created["topic_id"]))
            except RemoteError as error:
                if error.status != 422:
                    raise
                refused = error
        return Outcome(action.id, False, permanent=True, error=f"the forum refused the announcement: {refused}")

    def verify_announcement(self, action: Action, p: Announcement) -> Outcome | None:
        found = self.client.topic_by_external_id(p.external_id)
        return Outcome(action.id, True, ref=str(found["id"])) if found is not None else None


def _written(action: Action, p: ProductCard, topic_id: str | None, post_id: str) -> Outcome:
    return Outcome(
        action.id,
        True,
        ref=post_id,
        data={"topic_id": topic_id or "", "post_id": post_id, "content_hash": p.hash},
    )
