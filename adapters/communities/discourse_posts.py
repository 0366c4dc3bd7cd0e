"""Shop reviews as Discourse posts, and points as gamification score events or a user field.

One topic per product, found again by its ``external_id`` (created in the configured category on first use); one
post per review, written by the API user. A post a moderator edited or deleted is not overwritten: the edit returns a
conflict (the forum's raw text no longer hashes to what CardBridge last wrote); so does a topic a moderator deleted,
for the whole product (``TOPIC_CONFLICT``). After a crash, a created post is found
by the marker line it carries; score events are found by :mod:`adapters.communities.discourse_points`.
"""

from __future__ import annotations

import hashlib

from adapters.base import Action, IdCache, Outcome, RemotePost, settled_payload, wrong_payload
from adapters.communities.discourse_client import DiscourseClient
from adapters.communities.discourse_points import ForumPoints
from connector.core.http import RemoteError, describe_body
from connector.core.payloads import DiscoursePost, PointsTotal, ScoreEvent
from mappings.reviews import unique_topic_title

#: In a conflict's ``data``: the product whose whole topic the conflict is about (deleted, or refused), rather than one
#: review's post.
TOPIC_CONFLICT = "topic_conflict"


class ForumContent:
    """Writes review, points and points-total payloads; remote errors are left to the adapter to judge."""

    def __init__(self, client: DiscourseClient, cache: IdCache, api_username: str) -> None:
        self.client = client
        self.cache = cache
        self.api_username = api_username
        self.points = ForumPoints(client)

    def apply(self, action: Action) -> Outcome:
        settled = settled_payload(action)
        if settled is not None:
            return settled
        p = action.payload
        if action.kind == "review":
            if not isinstance(p, DiscoursePost):
                return wrong_payload(action, DiscoursePost)
            if action.op == "create":
                return self._create_review(action, p)
            if action.op == "edit":
                return self._edit_review(action, p)
            return self._delete_review(action, p)
        if action.kind == "points":
            if not isinstance(p, ScoreEvent):
                return wrong_payload(action, ScoreEvent)
            return self.points.award(action, p)
        if not isinstance(p, PointsTotal):
            return wrong_payload(action, PointsTotal)
        if p.field_id is None:
            return Outcome(action.id, False, permanent=True, error="no user_field_id for this community's points")
        self.client.set_user_field(action.username, p.field_id, str(p.total))
        return Outcome(action.id, True, ref=str(p.total))

    # ---- reviews -------------------------------------------------------------------------------------------------

    def category_id(self, name: str, color: str, text_color: str) -> int:
        cached = self.cache.get("category", name)
        if cached:
            return int(cached)
        category_id = self.client.category_id(name) or self.client.create_category(name, color, text_color)
        self.cache.set("category", name, str(category_id))
        return category_id

    def _topic_id(self, p: DiscoursePost) -> int:
        """The product's topic: the stored id, else the live topic with the external id, else a new topic.

        A 422 on creation is retried once with the title made unique by the product id (another topic may hold the
        same title: ``allow_duplicate_topic_titles`` is false); a second 422 is :class:`TopicRefused`. Its likely
        cause is an external id still held by a topic a moderator deleted: Discourse's uniqueness check sees trashed
        topics while the external-id lookup does not (app/models/topic.rb ``validates :external_id``)."""
        if p.topic_id:
            return int(p.topic_id)
        found = self.client.topic_by_external_id(p.external_id)
        if found is not None:
            return int(found["id"])
        category = self.category_id(p.category, p.category_color, p.category_text_color)
        refused: RemoteError | None = None
        for title in (p.topic_title, unique_topic_title(p.topic_title, p.product_id)):
            try:
                created = self.client.create_topic(title, p.topic_intro, category, p.external_id)
            except RemoteError as error:
                if error.status != 422:
                    raise
                refused = error
                continue
            return int(created["topic_id"])
        raise TopicRefused(p.product_id, p.external_id, refused)

    def _create_review(self, action: Action, p: DiscoursePost) -> Outcome:
        try:
            topic_id = self._topic_id(p)
        except TopicRefused as refused:
            return Outcome(action.id, True, conflict=str(refused), data={TOPIC_CONFLICT: p.product_id})
        try:
            post = self.client.create_post(topic_id, p.raw)
        except RemoteError as error:
            # A deleted topic takes no reply (PostCreator: ``topic_not_found``, 422); decided by reading it back.
            if error.status in (404, 422) and self.client.topic_gone(topic_id):
                reason = f"the review topic of product {p.product_id} (topic {topic_id}) was deleted on the forum"
                return Outcome(action.id, True, conflict=reason, data={TOPIC_CONFLICT: p.product_id})
            raise
        return Outcome(
            action.id,
            True,
            ref=str(post["id"]),
            data={
                "topic_id": str(topic_id),
                "post_id": str(post["id"]),
                "version": int(post.get("version") or 1),
                "content_hash": p.hash,
                "state": "posted",
            },
        )

    def _edit_review(self, action: Action, p: DiscoursePost) -> Outcome:
        changed_by = _changed_by_someone(self.read_post(str(p.post_id)), p)
        if changed_by:
            return Outcome(action.id, True, conflict=changed_by)
        # A post of a deleted topic still reads as live, and an admin may still edit it, invisibly: ask the topic.
        if p.topic_id and self.client.topic_gone(int(p.topic_id)):
            reason = f"the review topic of product {p.product_id} (topic {p.topic_id}) was deleted on the forum"
            return Outcome(action.id, True, conflict=reason, data={TOPIC_CONFLICT: p.product_id})
        post = self.client.edit_post(int(str(p.post_id)), p.raw, "Updated in the shop")
        return Outcome(
            action.id,
            True,
            ref=str(post["id"]),
            data={"version": int(post.get("version") or 0), "content_hash": p.hash, "state": "posted"},
        )

    def _delete_review(self, action: Action, p: DiscoursePost) -> Outcome:
        try:
            self.client.delete_post(int(str(p.post_id)))
        except RemoteError as error:
            if error.status not in (403, 404):  # already deleted (a moderator did it): the goal holds
                raise
        return Outcome(action.id, True, data={"state": "deleted"})

    def read_post(self, post_id: str) -> RemotePost | None:
        """The post as the forum has it (a deleted post can still be read by an admin: ``deleted``); None if gone."""
        if not post_id.isdigit():
            return None  # not a Discourse post id: there is no such post
        post = self.client.post(int(post_id))
        if post is None:
            return None
        version = post.get("version")
        return RemotePost(
            post_id=post_id,
            raw=str(post.get("raw") or ""),
            version=int(version) if version is not None else None,
            deleted=bool(post.get("deleted_at")),
            last_editor=str(post.get("last_editor_username") or "") or None,
        )

    # ---- after a crash -------------------------------------------------------------------------------------------

    def verify(self, action: Action) -> Outcome | None:
        p = action.payload
        if isinstance(p, DiscoursePost) and action.kind == "review":
            return self._verify_create(action, p) if action.op == "create" else self._verify_change(action, p)
        if isinstance(p, ScoreEvent) and action.kind == "points":
            return self.points.verify(action, p)
        return None  # points_total: setting a field twice is harmless; other payloads write nothing

    def _verify_create(self, action: Action, p: DiscoursePost) -> Outcome | None:
        found = self.client.topic_by_external_id(p.external_id)
        if found is None:
            return None
        for post_id in reversed(found.get("post_stream", {}).get("stream", [])[-20:]):
            post = self.client.post(int(post_id))
            if post and post.get("username") == self.api_username and p.marker in (post.get("raw") or ""):
                return Outcome(
                    action.id,
                    True,
                    ref=str(post_id),
                    data={
                        "topic_id": str(found["id"]),
                        "post_id": str(post_id),
                        "version": int(post.get("version") or 1),
                        "content_hash": p.hash,
                        "state": "posted",
                    },
                )
        return None

    def _verify_change(self, action: Action, p: DiscoursePost) -> Outcome | None:
        post = self.read_post(str(p.post_id))
        if action.op == "delete" and (post is None or post.deleted):
            return Outcome(action.id, True, data={"state": "deleted"})
        if action.op == "edit" and post and content_hash(post.raw) == p.hash:
            return Outcome(
                action.id, True, data={"version": post.version or 0, "content_hash": p.hash, "state": "posted"}
            )
        return None


class TopicRefused(Exception):
    """The forum refused (422) to open a product's review topic, with both titles tried."""

    def __init__(self, product_id: str, external_id: str, error: RemoteError | None) -> None:
        said = describe_body(error.body)[:300] if error is not None else "422"
        super().__init__(
            f"the forum refused to open the review topic of product {product_id} (external id {external_id}): "
            f"{said}; a deleted topic may hold that external id"
        )


def content_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def _changed_by_someone(post: RemotePost | None, payload: DiscoursePost) -> str | None:
    """Why the forum's copy is no longer what the connector wrote (a moderator edited or deleted it), or None."""
    if post is None or post.deleted:
        return "the post was deleted on the forum"
    if content_hash(post.raw) != payload.post_hash:
        return f"the post was edited on the forum by {post.last_editor or 'someone'} (version {post.version})"
    return None
